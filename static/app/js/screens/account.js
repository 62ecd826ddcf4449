// Account: who you are, change password, API keys (created — the key shown once —,
// listed, revoked) and deleting the account. Changing the password or deleting the
// account ends every session, this one included, so both lead back to sign-in.

import { api, attemptKey, signOut } from '../api.js';
import { t } from '../i18n.js';
import { day } from '../format.js';
import { notice } from '../notice.js';

export async function render(main, ctx) {
  main.innerHTML = `
    <h1 data-i18n="account.title"></h1>
    <div id="account-status" class="notice" role="status" aria-live="polite"></div>
    <section class="panel" aria-labelledby="me-title">
      <h2 id="me-title" data-i18n="account.you"></h2>
      <p id="me"></p>
    </section>
    <form id="password-form" class="panel" novalidate>
      <h2 data-i18n="account.password"></h2>
      <div class="field"><label for="current-password" data-i18n="field.currentPassword"></label>
        <input id="current-password" name="current" type="password" autocomplete="current-password"></div>
      <div class="field"><label for="new-password" data-i18n="field.newPassword"></label>
        <p class="hint" id="new-password-hint" data-i18n="hint.password"></p>
        <input id="new-password" name="next" type="password" autocomplete="new-password" aria-describedby="new-password-hint"></div>
      <button class="button" type="submit" data-i18n="account.changePassword"></button>
    </form>
    <section class="panel" aria-labelledby="keys-title">
      <h2 id="keys-title" data-i18n="account.keys"></h2>
      <p class="hint" data-i18n="account.keysHint"></p>
      <form id="key-form" class="inline" novalidate>
        <div class="field"><label for="key-name" data-i18n="field.keyName"></label>
          <input id="key-name" name="name" type="text" maxlength="64" value="laptop"></div>
        <div class="field"><button class="button" type="submit" data-i18n="account.createKey"></button></div>
      </form>
      <div id="new-key" class="notice success" hidden>
        <p data-i18n="account.keyOnce"></p>
        <code class="secret" id="new-key-value"></code>
      </div>
      <ul class="cards" id="keys"></ul>
    </section>
    <section class="panel" aria-labelledby="feed-title">
      <h2 id="feed-title" data-i18n="account.feed"></h2>
      <p class="hint" data-i18n="account.feedHint"></p>
      <button type="button" class="button secondary" id="new-feed" data-i18n="account.newFeed"></button>
      <div id="feed" class="notice success" hidden>
        <p data-i18n="account.feedOnce"></p>
        <code class="secret" id="feed-url"></code>
      </div>
    </section>
    <form id="delete-form" class="panel" novalidate>
      <h2 data-i18n="account.delete"></h2>
      <p data-i18n="account.deleteWarning"></p>
      <div class="field"><label for="delete-password" data-i18n="field.password"></label>
        <input id="delete-password" name="password" type="password" autocomplete="current-password"></div>
      <button class="button warning" type="submit" data-i18n="account.deleteButton"></button>
    </form>`;
  const $ = (id) => main.querySelector(`#${id}`);
  const { say, failure } = notice($('account-status'));
  const me = ctx.me;
  $('me').textContent = t('account.summary', { name: me.username, email: me.email, role: t(`role.${me.role}`) });

  async function keys() {
    try {
      const page = await api('/api/secure/api-keys');
      const items = page.items || page;
      $('keys').replaceChildren(...items.map((k) => {
        const li = document.createElement('li');
        li.className = 'card';
        const p = document.createElement('p');
        p.textContent = t('account.key', {
          name: k.name, prefix: k.prefix, created: day(Date.parse(k.created_at)),
          used: k.last_used_at ? day(Date.parse(k.last_used_at)) : t('account.never'),
        });
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'button warning';
        b.textContent = t('account.revoke');
        b.setAttribute('aria-label', t('account.revokeNamed', { name: k.name }));
        b.addEventListener('click', async () => {
          b.disabled = true;
          try {
            await api(`/api/secure/api-keys/${k.id}`, { method: 'DELETE' });
            say(t('account.revoked', { name: k.name }), 'success');
            await keys();
          } catch (e) { failure(e); b.disabled = false; }
        });
        li.append(p, b);
        return li;
      }));
    } catch (e) { failure(e); }
  }

  $('password-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { current_password: $('current-password').value, new_password: $('new-password').value };
    try {
      await api('/api/secure/me/password', { method: 'POST', body });
      await signOut();
      ctx.me = null;
      await ctx.refreshMe();
      ctx.flash = t('account.passwordChanged');
      ctx.navigate('/app/sign-in');
    } catch (err) { failure(err); }
  });
  $('key-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const created = await api('/api/secure/api-keys', { method: 'POST', key: attemptKey(), body: { name: $('key-name').value.trim() || 'default' } });
      $('new-key-value').textContent = created.key;
      $('new-key').hidden = false;
      await keys();
    } catch (err) { failure(err); }
  });
  $('new-feed').addEventListener('click', async () => {
    try {
      const feed = await api('/api/secure/calendar-feed', { method: 'POST' });
      $('feed-url').textContent = feed.url;
      $('feed').hidden = false;
    } catch (err) { failure(err); }
  });
  $('delete-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('/api/secure/me', { method: 'DELETE', body: { password: $('delete-password').value } });
      await signOut();
      ctx.me = null;
      await ctx.refreshMe();
      ctx.flash = t('account.deleted');
      ctx.navigate('/app/sign-in');
    } catch (err) { failure(err); }
  });
  await keys();
  main.dataset.screen = 'account';
}
