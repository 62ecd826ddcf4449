// Talking to the Pica API from the page. The session lives in HttpOnly cookies the
// page cannot read: a request the server answers 401 (access token expired) is retried
// once after rotating the session, and if that fails the page is told the member is
// signed out. Each creating request carries an Idempotency-Key chosen per attempt, so
// a double click or a retry never books twice.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

const signedOutListeners = new Set();
export function onSignedOut(listener) { signedOutListeners.add(listener); }

let refreshing = null;
/** Rotates the session cookies; true when the member is still signed in. */
export function refreshSession() {
  refreshing ??= fetch('/app/session/refresh', { method: 'POST', credentials: 'same-origin' })
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => { refreshing = null; });
  return refreshing;
}

/** A fresh Idempotency-Key for one attempt at a creating request. */
export function attemptKey() {
  return crypto.randomUUID();
}

function send(path, { method = 'GET', body, key } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key) headers['idempotency-key'] = key;
  return fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function parse(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  try { return text ? JSON.parse(text) : null; } catch { return { detail: text }; }
}

/** Calls the API; resolves with the parsed body, rejects with an ApiError. */
export async function api(path, options = {}) {
  let response;
  try {
    response = await send(path, options);
  } catch {
    throw new ApiError(0, { detail: 'network' });
  }
  // 401: a token the server no longer accepts. 403 "Not authenticated": the access
  // cookie is gone (expired). Either way one rotation is tried before giving up.
  const unauthenticated = async (r) => r.status === 401
    || (r.status === 403 && (await r.clone().json().catch(() => ({}))).detail === 'Not authenticated');
  if (path.startsWith('/api/secure/') && await unauthenticated(response)) {
    if (await refreshSession()) {
      response = await send(path, options);
    }
    if (await unauthenticated(response)) {
      signedOutListeners.forEach((l) => l());
    }
  }
  const body = await parse(response);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** Raw text of a successful response (where key order matters). */
export async function apiText(path, options = {}) {
  const response = await send(path, options);
  const text = await response.text();
  if (!response.ok) {
    let body; try { body = JSON.parse(text); } catch { body = { detail: text }; }
    throw new ApiError(response.status, body);
  }
  return text;
}

export async function signIn(username, password) {
  const response = await fetch('/app/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify({ username, password }),
  });
  const body = await parse(response);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function signOut() {
  await fetch('/app/session', { method: 'DELETE', credentials: 'same-origin' }).catch(() => {});
}
