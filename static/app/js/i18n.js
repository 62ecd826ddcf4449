// Two languages, English and Bahasa Indonesia: every visible string has a key in both
// dictionaries (a test compares them). The choice is remembered in localStorage — a
// preference, never a credential.

const STORAGE_KEY = 'pica.language';
const LANGUAGES = ['en', 'id'];
let dictionary = {};
let current = 'en';

export function language() { return current; }

/** The locale for Intl formatting. */
export function locale() { return current === 'id' ? 'id-ID' : 'en-GB'; }

export async function loadLanguage(wanted) {
  const stored = localStorage.getItem(STORAGE_KEY);
  const browser = (navigator.language || 'en').slice(0, 2);
  const pick = [wanted, stored, browser].find((l) => LANGUAGES.includes(l)) || 'en';
  const response = await fetch(`/app/i18n/${pick}.json`);
  dictionary = await response.json();
  current = pick;
  localStorage.setItem(STORAGE_KEY, pick);
  document.documentElement.lang = pick;
  return pick;
}

/** The string for `key`, with `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = dictionary[key];
  if (text === undefined) {
    console.warn(`missing string: ${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (values[name] ?? `{${name}}`));
}

/** Fills elements marked `data-i18n` (text) and `data-i18n-<attribute>` under `root`. */
export function translate(root = document) {
  root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll('[data-i18n-aria-label]').forEach((el) => {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  });
}
