// Sign in, or create an account and sign in. Errors are said in plain words beside the
// field they concern, with a summary at the top linking to each (GOV.UK pattern).

import { api, ApiError, signIn } from '../api.js';
import { t } from '../i18n.js';

function showErrors(form, errors) {
  form.querySelectorAll('.field').forEach((f) => {
    f.classList.remove('has-error');
    f.querySelector('.error-message')?.remove();
    f.querySelector('input')?.removeAttribute('aria-invalid');
  });
  const summary = form.querySelector('.error-summary');
  summary.hidden = errors.length === 0;
  const list = summary.querySelector('ul');
  list.replaceChildren();
  for (const { field, message } of errors) {
    const item = document.createElement('li');
    const input = field && form.querySelector(`[name="${field}"]`);
    if (input) {
      const link = document.createElement('a');
      link.href = `#${input.id}`;
      link.textContent = message;
      item.appendChild(link);
      const wrap = input.closest('.field');
      wrap.classList.add('has-error');
      const p = document.createElement('p');
      p.className = 'error-message';
      p.id = `${input.id}-error`;
      p.textContent = message;
      input.before(p);
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', p.id);
    } else {
      item.textContent = message;
    }
    list.appendChild(item);
  }
  if (errors.length) summary.focus();
}

/** Which field a server error is about, from its words. */
function fieldOf(detail, fields) {
  const lower = (detail || '').toLowerCase();
  return fields.find((f) => lower.includes(f)) || null;
}

function form(id, legendKey, fields, buttonKey) {
  return `
    <form id="${id}" class="panel" novalidate>
      <div class="error-summary" tabindex="-1" hidden role="alert">
        <h2 data-i18n="form.problem"></h2><ul></ul>
      </div>
      <h2 data-i18n="${legendKey}"></h2>
      ${fields.map(([name, type, auto, hint]) => `
        <div class="field">
          <label for="${id}-${name}" data-i18n="field.${name}"></label>
          ${hint ? `<p class="hint" id="${id}-${name}-hint" data-i18n="${hint}"></p>` : ''}
          <input id="${id}-${name}" name="${name}" type="${type}" autocomplete="${auto}" required
            ${hint ? `aria-describedby="${id}-${name}-hint"` : ''}>
        </div>`).join('')}
      <button class="button" type="submit" data-i18n="${buttonKey}"></button>
    </form>`;
}

export async function render(main, ctx) {
  const next = new URLSearchParams(location.search).get('next') || '/app/';
  main.innerHTML = `
    <h1 data-i18n="signIn.title"></h1>
    <div id="sign-in-status" class="notice" role="status"></div>
    <div class="booking">
      ${form('sign-in', 'signIn.existing', [['username', 'text', 'username'], ['password', 'password', 'current-password']], 'signIn.submit')}
      ${form('sign-up', 'signIn.new', [['username', 'text', 'username', 'hint.username'], ['email', 'email', 'email'], ['password', 'password', 'new-password', 'hint.password']], 'signIn.create')}
    </div>`;
  const status = main.querySelector('#sign-in-status');
  if (ctx.flash) { status.textContent = ctx.flash; ctx.flash = null; }
  const done = async () => {
    await ctx.refreshMe();
    ctx.navigate(next.startsWith('/app') ? next : '/app/');
  };

  const signInForm = main.querySelector('#sign-in');
  signInForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const username = signInForm.username.value.trim();
    const password = signInForm.password.value;
    const errors = [];
    if (!username) errors.push({ field: 'username', message: t('error.usernameMissing') });
    if (!password) errors.push({ field: 'password', message: t('error.passwordMissing') });
    showErrors(signInForm, errors);
    if (errors.length) return;
    try {
      await signIn(username, password);
      await done();
    } catch (err) {
      const message = err.status === 401 ? t('error.wrongCredentials')
        : err.status === 429 ? t('error.tooManyAttempts') : (err.body?.detail || t('error.generic'));
      showErrors(signInForm, [{ field: err.status === 401 ? 'password' : null, message }]);
    }
  });

  const signUpForm = main.querySelector('#sign-up');
  signUpForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {
      username: signUpForm.username.value.trim(),
      email: signUpForm.email.value.trim(),
      password: signUpForm.password.value,
    };
    const errors = [];
    if (!/^[A-Za-z0-9_.-]{3,32}$/.test(body.username)) errors.push({ field: 'username', message: t('hint.username') });
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(body.email)) errors.push({ field: 'email', message: t('error.emailInvalid') });
    if (body.password.length < 8) errors.push({ field: 'password', message: t('hint.password') });
    showErrors(signUpForm, errors);
    if (errors.length) return;
    try {
      await api('/api/public/register', { method: 'POST', body });
      await signIn(body.username, body.password);
      await done();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const message = err.status === 409 ? t('error.usernameTaken') : (err.body.detail || t('error.generic'));
      showErrors(signUpForm, [{ field: err.status === 409 ? 'username' : fieldOf(err.body.detail, ['username', 'email', 'password']), message }]);
    }
  });
  main.dataset.screen = 'sign-in';
}
