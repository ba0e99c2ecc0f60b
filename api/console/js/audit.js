// The audit trail: who did what, newest first (GET /v1/audit).

import { get, query } from './api.js';
import { el, field, message, table, when } from './dom.js';
import { wireDownload } from './download.js';
import { refusal, setView } from './main.js';
import { auditActions } from './config.js';
import { range } from './zone.js';

function compact(v) {
  if (!v || (typeof v === 'object' && !Object.keys(v).length)) return '';
  return Object.entries(v).map(([k, x]) => `${k}=${typeof x === 'object' ? JSON.stringify(x) : x}`).join(', ');
}

export async function showAudit(p) {
  const inputs = {
    vin: el('input', { id: 'au-vin', name: 'vin', value: p.vin || '', maxlength: '17', autocomplete: 'off' }),
    order_id: el('input', { id: 'au-order', name: 'order_id', value: p.order_id || '', autocomplete: 'off' }),
    actor: el('input', { id: 'au-actor', name: 'actor', value: p.actor || '', autocomplete: 'off' }),
    action: el('select', { id: 'au-action', name: 'action' }, el('option', { value: '' }, 'Any action'),
      (await auditActions()).map((a) => el('option', { value: a, selected: p.action === a }, a))),
    from: el('input', { id: 'au-from', name: 'from', type: 'date', value: p.from || '' }),
    to: el('input', { id: 'au-to', name: 'to', type: 'date', value: p.to || '' }),
  };
  const results = el('div', { id: 'au-results', class: 'results', 'aria-live': 'polite' });
  const dl = el('button', { type: 'button', id: 'au-csv' }, 'Download CSV');
  const dlStatus = el('span', { id: 'au-csv-status', class: 'hint', 'aria-live': 'polite' });
  const form = el('form', { id: 'au-form', class: 'card filters' },
    el('div', { class: 'form-grid' },
      field('VIN', inputs.vin), field('Order id', inputs.order_id), field('Actor', inputs.actor, 'The whole actor: billing:dana, system:expire, provider.'),
      field('Action', inputs.action), field('From (local date)', inputs.from), field('To (local date, inclusive)', inputs.to)),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Show entries'), dl, dlStatus));
  const filters = () => Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value.trim()]));
  const apiQuery = async (f) => ({ ...f, ...(await range(f.from, f.to)) });
  const cursors = [];

  const load = async (cursor) => {
    try {
      const page = await get(`/v1/audit${query({ ...(await apiQuery(filters())), cursor, limit: 50 })}`);
      const rows = page.entries.map((e) => el('tr', { 'data-entry': e.id, 'data-action': e.action },
        el('td', {}, when(e.at)), el('td', {}, e.actor), el('td', {}, e.action),
        el('td', {}, e.vin ? el('a', { href: `#/vehicle/${e.vin}` }, e.vin) : ''), el('td', {}, e.order_id || ''),
        el('td', {}, e.refund_id || ''), el('td', { class: 'change' }, compact(e.before)), el('td', { class: 'change' }, compact(e.after)),
        el('td', { class: 'hint' }, e.request_id || '')));
      const prev = el('button', { type: 'button', disabled: cursors.length === 0, onclick: () => load(cursors.pop()) }, 'Newer');
      const next = el('button', { type: 'button', disabled: !page.next_cursor, onclick: () => { cursors.push(cursor); load(page.next_cursor); } }, 'Older');
      results.replaceChildren(rows.length
        ? table('Audit entries, newest first', ['At', 'Actor', 'Action', 'VIN', 'Order', 'Refund', 'Before', 'After', 'Request'], rows)
        : message('info', 'No entries match these filters.'), el('div', { class: 'pager' }, prev, next));
    } catch (err) {
      results.replaceChildren(message('error', err.status === 400
        ? `These filters are not valid: ${err.fields.map((x) => x.field).join(', ') || err.message}.` : refusal(err, 'billing or ops')));
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    cursors.length = 0;
    history.replaceState(null, '', `#/audit${query(filters())}`);
    load();
  });
  wireDownload(dl, dlStatus, async () => `/v1/audit${query({ ...(await apiQuery(filters())), format: 'csv' })}`, 'audit.csv',
    (err) => refusal(err, 'billing or ops'));
  setView('Audit trail', form, results);
  load();
}
