// The console's shell: sign-in, navigation and the hash router.

import { ApiError, claims, clearToken, get, query, setToken, setUnauthorizedHandler, token } from './api.js';
import { el, field, message } from './dom.js';
import { showFind } from './find.js';
import { showVehicle } from './vehicle.js';
import { showRefunds } from './refunds.js';
import { showAudit } from './audit.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signout = document.getElementById('signout');

let signInNotice = '';

// refusal turns an API error into words for the user. needed names the
// role(s) the action takes, for a 403.
export function refusal(err, needed) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err.message}`;
  if (err.status === 403) {
    const role = claims().role || 'unknown';
    return `Not allowed: this needs the ${needed} role, and you are signed in with a ${role} token.`;
  }
  if (err.status === 0) return err.message;
  const id = err.problem.request_id ? ` (request ${err.problem.request_id})` : '';
  return `${err.message}${id}`;
}

setUnauthorizedHandler((err) => {
  clearToken();
  signInNotice = `You were signed out: ${err.message || 'the token was refused'}. Sign in again with a valid token.`;
  if (location.hash === '#/signin') route();
  else location.hash = '#/signin'; // hashchange shows sign-in
});

export function setView(title, ...content) {
  document.title = `${title} · Billing console`;
  view.replaceChildren(el('h1', {}, title), ...content);
}

function showSignIn() {
  nav.hidden = true;
  signout.hidden = true;
  who.textContent = '';
  const input = el('textarea', { id: 'token', name: 'token', rows: '4', autocomplete: 'off', spellcheck: 'false', required: true });
  const status = el('div', { id: 'signin-status', 'aria-live': 'polite' });
  if (signInNotice) status.append(message('error', signInNotice));
  const form = el('form', { id: 'signin-form', class: 'card narrow' },
    el('p', {}, 'Paste a bearer token with the billing or ops role. It is kept in this tab only (session storage) and sent with each request.'),
    field('Bearer token', input),
    el('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim().replace(/^Bearer\s+/i, '');
    if (!t) {
      status.replaceChildren(message('error', 'Paste a token first.'));
      return;
    }
    signInNotice = '';
    setToken(t);
    status.replaceChildren(message('info', 'Checking the token…'));
    try {
      // A staff-only read: it answers 401 for a bad token and 403 for a
      // token of another role.
      await get(`/v1/vehicles${query({ owner_id: claims(t).sub || 'x', limit: 1 })}`);
      location.hash = '#/find';
    } catch (err) {
      clearToken();
      if (err instanceof ApiError && err.status === 401) return; // the handler shows sign-in again
      status.replaceChildren(message('error', err.status === 403
        ? `This token is not allowed in the console: it needs the billing or ops role, and this token's role is ${claims(t).role || 'unknown'}.`
        : refusal(err, 'billing or ops')));
    }
  });
  setView('Sign in', form);
  input.focus();
}

function chrome() {
  const c = claims();
  nav.hidden = false;
  signout.hidden = false;
  who.textContent = `${c.role || '?'} · ${c.sub || '?'}`;
  const here = location.hash.split('?')[0];
  for (const a of nav.querySelectorAll('a')) {
    if (here.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

signout.addEventListener('click', () => {
  clearToken();
  signInNotice = '';
  location.hash = '#/signin';
});

// params reads the query part of the hash.
export function params() {
  const q = location.hash.split('?')[1] || '';
  return Object.fromEntries(new URLSearchParams(q));
}

async function route() {
  const [path] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean);
  if (!token() || parts[0] === 'signin') {
    if (token() && parts[0] === 'signin') clearToken();
    showSignIn();
    return;
  }
  chrome();
  view.focus({ preventScroll: true });
  switch (parts[0]) {
    case 'vehicle': return showVehicle(decodeURIComponent(parts[1] || ''));
    case 'refunds': return showRefunds(params());
    case 'audit': return showAudit(params());
    default: return showFind(params());
  }
}

window.addEventListener('hashchange', route);
route();
