// The JSON API, called with the bearer token the user signed in with.
// The token lives in sessionStorage only: it goes with the tab.

const KEY = 'entitlements.console.token';

export function token() { return sessionStorage.getItem(KEY); }
export function setToken(t) { sessionStorage.setItem(KEY, t); }
export function clearToken() { sessionStorage.removeItem(KEY); }

// ApiError is a refused or failed request: status, the problem's code,
// title/detail and its invalid fields.
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || '';
    this.fields = problem.errors || problem.fields || [];
    this.problem = problem;
  }
}

// Handlers for 401 (back to sign-in), set by main.js.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

async function send(method, path, { body, headers = {}, raw = false, signal } = {}) {
  const h = { Accept: raw ? 'text/csv' : 'application/json', ...headers };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { title: 'The service could not be reached. Check the connection and try again.' });
  }
  if (res.ok) return raw ? res.blob() : res.json();
  let problem = {};
  try { problem = await res.json(); } catch { /* not JSON */ }
  const err = new ApiError(res.status, problem);
  if (res.status === 401) onUnauthorized(err);
  throw err;
}

export const get = (path, opts) => send('GET', path, opts);
export const post = (path, body, opts = {}) => send('POST', path, { ...opts, body });

// query builds "?a=b&..." from the set values of an object.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// newKey is a fresh Idempotency-Key.
export function newKey() {
  if (crypto.randomUUID) return `console-${crypto.randomUUID()}`;
  const b = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}
