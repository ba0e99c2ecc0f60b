// Find: one box for a VIN, an order id or an owner id.

import { ApiError, get, query } from './api.js';
import { el, field, message, table, when } from './dom.js';
import { checkVIN, looksLikeVIN } from './vin.js';
import { refusal, setView } from './main.js';
import { moreButton } from './paging.js';

const PAGE = 20; // vehicles of an owner per page

export function showFind(p) {
  const input = el('input', { id: 'find-q', name: 'q', type: 'search', autocomplete: 'off', spellcheck: 'false', value: p.q || '', maxlength: '128' });
  const vinState = el('p', { id: 'vin-check', class: 'vin-check', 'aria-live': 'polite' });
  const results = el('div', { id: 'find-results', class: 'results', 'aria-live': 'polite' });
  const form = el('form', { id: 'find-form', class: 'card', role: 'search' },
    field('VIN, order id or owner id', input, 'A VIN has 17 characters; its 9th is a check digit.'),
    vinState,
    el('button', { type: 'submit', class: 'primary' }, 'Find'));

  const check = () => {
    const v = input.value.trim();
    vinState.className = 'vin-check';
    if (!looksLikeVIN(v)) {
      if (v.length >= 11 && v.length <= 17 && /^[0-9A-Z]+$/i.test(v)) {
        const c = checkVIN(v);
        vinState.textContent = c.problem ? `As a VIN: ${c.problem}.` : '';
      } else {
        vinState.textContent = '';
      }
      return null;
    }
    const c = checkVIN(v);
    if (c.ok) {
      vinState.textContent = `VIN check digit ${c.expected} is correct.`;
      vinState.classList.add('ok');
    } else {
      vinState.textContent = `VIN check digit is wrong: position 9 is “${c.got}”, expected “${c.expected}”.`;
      vinState.classList.add('bad');
    }
    return c;
  };
  input.addEventListener('input', check);
  check();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (!q) return;
    const c = check();
    if (c && c.ok) {
      location.hash = `#/vehicle/${encodeURIComponent(c.vin)}`;
      return;
    }
    // Anything else, a 17-character id with a wrong check digit too, may
    // be an order id or an owner id.
    history.replaceState(null, '', `#/find${query({ q })}`);
    await search(q, results);
  });

  setView('Find', form, results);
  input.focus();
  if (p.q && !checkVIN(p.q).ok) search(p.q, results);
}

// search looks q up as an order id and as an owner id at once.
async function search(q, results) {
  results.replaceChildren(message('info', `Searching for “${q}”…`));
  const miss = (err) => {
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) return null;
    throw err;
  };
  try {
    const [order, owned] = await Promise.all([
      get(`/v1/orders/${encodeURIComponent(q)}`).catch(miss),
      get(`/v1/vehicles${query({ owner_id: q, limit: PAGE })}`).catch(miss),
    ]);
    const out = [];
    if (order) {
      out.push(table('Order', ['Order', 'VIN', 'Owner', 'Product', 'Status', 'Created'], [
        el('tr', {},
          el('td', {}, order.id),
          el('td', {}, el('a', { href: `#/vehicle/${order.vin}` }, order.vin)),
          el('td', {}, order.owner_id), el('td', {}, order.product), el('td', {}, order.status),
          el('td', {}, when(order.created_at))),
      ]));
    }
    if (owned && owned.vehicles.length) {
      const row = (v) => el('tr', { 'data-vin': v.vin },
        el('td', {}, el('a', { href: `#/vehicle/${v.vin}` }, v.vin)), el('td', {}, v.model), el('td', {}, when(v.activated_at)));
      const list = table(`Vehicles of owner ${q}, most recently activated first`, ['VIN', 'Model', 'Activated'], owned.vehicles.map(row));
      list.id = 'find-vehicles';
      out.push(list, moreButton('find-more', 'More vehicles', owned.next_cursor, list, async (cursor) => {
        const page = await get(`/v1/vehicles${query({ owner_id: q, limit: PAGE, cursor })}`);
        return { rows: page.vehicles.map(row), next: page.next_cursor };
      }, 'billing or ops'));
    }
    results.replaceChildren(...(out.length ? out.filter(Boolean) : [message('info', `Nothing matches “${q}”: no order with that id and no owner with vehicles.`)]));
  } catch (err) {
    results.replaceChildren(message('error', refusal(err, 'billing or ops')));
  }
}
