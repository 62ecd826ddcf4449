// Medicine finder: names are suggested from the reference list as the member types;
// the partner service (MediMatch) then recommends similar medicines with their
// composition, best match first. When the partner does not answer, the page says so.

import { api, apiText, ApiError, refreshSession } from '../api.js';
import { t } from '../i18n.js';
import { notice } from '../notice.js';

/** The `[key, value]` pairs of the object `field` in JSON `text`, in the order sent
 *  (JavaScript objects would reorder the numeric product ids). */
export function orderedEntries(text, field) {
  const start = text.indexOf(`"${field}"`);
  if (start < 0) return [];
  let i = text.indexOf('{', start) + 1;
  const out = [];
  const readString = () => {
    let j = i + 1;
    while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    const value = JSON.parse(text.slice(i, j + 1));
    i = j + 1;
    return value;
  };
  const skip = () => { while (/[\s,:]/.test(text[i])) i += 1; };
  skip();
  while (text[i] === '"') {
    const key = readString();
    skip();
    const value = readString();
    out.push([key, value]);
    skip();
  }
  return out;
}

export async function render(main, ctx) {
  main.innerHTML = `
    <h1 data-i18n="medicines.title"></h1>
    <p data-i18n="medicines.intro"></p>
    <form id="medicine-form" class="panel" novalidate>
      <div class="field">
        <label for="drug" data-i18n="medicines.name"></label>
        <p class="hint" id="drug-hint" data-i18n="medicines.hint"></p>
        <input id="drug" name="drug" type="text" list="drug-suggestions" autocomplete="off" maxlength="100" aria-describedby="drug-hint">
        <datalist id="drug-suggestions"></datalist>
      </div>
      <button class="button" type="submit" data-i18n="medicines.find"></button>
    </form>
    <div id="medicine-status" class="notice" role="status" aria-live="polite"></div>
    <ol class="cards" id="medicine-results"></ol>`;
  const $ = (id) => main.querySelector(`#${id}`);
  const { say, failure } = notice($('medicine-status'));
  let typing = 0;
  $('drug').addEventListener('input', () => {
    clearTimeout(typing);
    const q = $('drug').value.trim();
    if (q.length < 2) return;
    typing = setTimeout(async () => {
      try {
        const page = await api(`/api/public/drugs?${new URLSearchParams({ q, limit: '8' })}`);
        $('drug-suggestions').replaceChildren(...page.items.map((d) => Object.assign(document.createElement('option'), { value: d.name })));
      } catch { /* suggestions are a help, not a must */ }
    }, 200);
  });
  $('medicine-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('drug').value.trim();
    $('medicine-results').replaceChildren();
    if (!name) { say(t('medicines.empty'), 'failure'); return; }
    if (!ctx.signedIn()) {
      ctx.flash = t('medicines.signIn');
      ctx.navigate('/app/sign-in?next=/app/medicines');
      return;
    }
    say(t('medicines.searching'));
    const request = { method: 'POST', body: { drug_name: name, top_n: 5 } };
    try {
      let text;
      try {
        text = await apiText('/api/secure/recommend-drugs', request);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 401 || !(await refreshSession())) throw err;
        text = await apiText('/api/secure/recommend-drugs', request);
      }
      const names = orderedEntries(text, 'name');
      const compositions = new Map(orderedEntries(text, 'combined_composition'));
      $('medicine-results').replaceChildren(...names.map(([id, drug]) => {
        const li = document.createElement('li');
        li.className = 'card';
        const div = document.createElement('div');
        const h = document.createElement('h3');
        h.textContent = drug;
        const p = document.createElement('p');
        p.textContent = t('medicines.composition', { composition: compositions.get(id) || '–' });
        div.append(h, p);
        li.appendChild(div);
        return li;
      }));
      say(names.length ? t('medicines.found', { n: names.length, name }) : t('medicines.none', { name }), names.length ? 'success' : '');
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) say(t('medicines.none', { name }), 'failure');
      else if (err instanceof ApiError && [502, 503, 504].includes(err.status)) say(t('medicines.partnerDown'), 'failure');
      else failure(err);
    }
  });
  main.dataset.screen = 'medicines';
}
