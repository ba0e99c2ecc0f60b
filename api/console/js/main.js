// The console's shell: sign-in, navigation and the hash router.

import { ApiError, clearToken, get, setToken, setUnauthorizedHandler, token } from './api.js';
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

// me is who the service takes the token to be (GET /v1/me): the role it
// decided (for an identity provider's token, after its role mapping) and
// the subject. Kept with the token, so that a reload shows it at once.
const ME = 'entitlements.console.me';
let me = null;
try { me = JSON.parse(sessionStorage.getItem(ME)); } catch { me = null; }
function setMe(m) {
  me = m;
  if (m) sessionStorage.setItem(ME, JSON.stringify(m));
  else sessionStorage.removeItem(ME);
}
function forget() {
  clearToken();
  setMe(null);
}

// refusal turns an API error into words for the user. needed names the
// role(s) the action takes, for a 403.
export function refusal(err, needed) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err.message}`;
  if (err.status === 403) {
    const role = (me && me.role) || 'unknown';
    return `Not allowed: this needs the ${needed} role, and you are signed in with ${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role} token.`;
  }
  if (err.status === 0) return err.message;
  const id = err.problem.request_id ? ` (request ${err.problem.request_id})` : '';
  return `${err.message}${id}`;
}

setUnauthorizedHandler((err) => {
  forget();
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
    let who;
    try {
      // 401 for a token the service refuses; otherwise the role and
      // subject it took from the token.
      who = await get('/v1/me');
    } catch (err) {
      forget();
      if (err instanceof ApiError && err.status === 401) return; // the handler shows sign-in again
      status.replaceChildren(message('error', refusal(err, 'billing or ops')));
      return;
    }
    if (who.role !== 'billing' && who.role !== 'ops') {
      forget();
      status.replaceChildren(message('error',
        `This token is not allowed in the console: it needs the billing or ops role, and this token's role is ${who.role}.`));
      return;
    }
    setMe(who);
    location.hash = '#/find';
  });
  setView('Sign in', form);
  input.focus();
}

function chrome() {
  nav.hidden = false;
  signout.hidden = false;
  who.textContent = me ? `${me.role} · ${me.subject}` : '';
  const here = location.hash.split('?')[0];
  for (const a of nav.querySelectorAll('a')) {
    if (here.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

signout.addEventListener('click', () => {
  forget();
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
    if (token() && parts[0] === 'signin') forget();
    showSignIn();
    return;
  }
  if (!me) {
    // A token kept from before without who it is: ask (a 401 signs out).
    try {
      setMe(await get('/v1/me'));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        forget();
        signInNotice = refusal(err, 'billing or ops');
        showSignIn();
      }
      return;
    }
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

// The skip link moves focus to the page's content; it does not change the
// address, which would leave the page for Find.
document.querySelector('a.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  view.focus();
});

window.addEventListener('hashchange', route);
route();
