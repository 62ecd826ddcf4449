// A screen's status line: a plain message, a success, or what went wrong in the words
// the server gave (every refusal carries a `detail`), or a generic apology.

import { ApiError } from './api.js';
import { t } from './i18n.js';

/** The words of an API refusal, or a generic apology. */
export const explain = (e) => (e instanceof ApiError && e.body.detail ? e.body.detail : t('error.generic'));

/** `say(text, kind)` and `failure(error)` writing into `element`. */
export function notice(element) {
  const say = (text, kind = '') => {
    element.textContent = text;
    element.className = `notice ${kind}`;
  };
  return { say, failure: (e) => say(explain(e), 'failure') };
}
