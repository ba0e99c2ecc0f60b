// The refunds list: filters, pages and the CSV export with the same filters.

import { get, query } from './api.js';
import { el, field, message, table, when, yuan } from './dom.js';
import { wireDownload } from './download.js';
import { refusal, setView } from './main.js';
import { range, zoneName } from './zone.js';

const reasons = ['requested_by_customer', 'duplicate', 'service_issue', 'vehicle_transferred', 'fraudulent', 'other'];

export async function showRefunds(p) {
  const from = el('input', { id: 'rf-from', name: 'from', type: 'date', value: p.from || '' });
  const to = el('input', { id: 'rf-to', name: 'to', type: 'date', value: p.to || '' });
  const reason = el('select', { id: 'rf-reason', name: 'reason' }, el('option', { value: '' }, 'Any reason'),
    reasons.map((r) => el('option', { value: r, selected: p.reason === r }, r)));
  const operator = el('input', { id: 'rf-operator', name: 'operator', value: p.operator || '', autocomplete: 'off', maxlength: '128' });
  const vin = el('input', { id: 'rf-vin', name: 'vin', value: p.vin || '', autocomplete: 'off', maxlength: '17', spellcheck: 'false' });
  const results = el('div', { id: 'rf-results', class: 'results', 'aria-live': 'polite' });
  const dl = el('button', { type: 'button', id: 'rf-csv' }, 'Download CSV');
  const dlStatus = el('span', { id: 'rf-csv-status', class: 'hint', 'aria-live': 'polite' });
  const form = el('form', { id: 'rf-form', class: 'card filters' },
    el('div', { class: 'form-grid' },
      field(`From (local date, ${await zoneName()})`, from), field('To (local date, inclusive)', to),
      field('Reason', reason), field('Operator', operator), field('VIN', vin)),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Show refunds'), dl, dlStatus));

  const filters = () => ({ from: from.value, to: to.value, reason: reason.value, operator: operator.value.trim(), vin: vin.value.trim().toUpperCase() });
  const apiQuery = async (f) => ({ ...(await range(f.from, f.to)), reason: f.reason, operator: f.operator, vin: f.vin });
  const cursors = [];

  const load = async (cursor) => {
    const f = filters();
    results.setAttribute('aria-busy', 'true');
    try {
      const page = await get(`/v1/refunds${query({ ...(await apiQuery(f)), cursor, limit: 20 })}`);
      const rows = page.refunds.map((r) => el('tr', { 'data-refund': r.id },
        el('td', {}, when(r.created_at)), el('td', {}, el('a', { href: `#/vehicle/${r.vin}` }, r.vin)), el('td', {}, r.order_id),
        el('td', { class: 'num' }, yuan(r.amount_fen, r.currency)), el('td', {}, r.reason), el('td', {}, r.created_by),
        el('td', {}, r.period_action), el('td', {}, r.note)));
      const prev = el('button', { type: 'button', disabled: cursors.length === 0, onclick: () => load(cursors.pop()) }, 'Previous page');
      const next = el('button', { type: 'button', disabled: !page.next_cursor, onclick: () => { cursors.push(cursor); load(page.next_cursor); } }, 'Next page');
      results.replaceChildren(
        rows.length ? table('Refunds, oldest first', ['Created', 'VIN', 'Order', 'Amount', 'Reason', 'Operator', 'Period', 'Note'], rows, 'refunds')
          : message('info', 'No refunds match these filters.'),
        el('div', { class: 'pager' }, prev, next));
    } catch (err) {
      results.replaceChildren(message('error', err.status === 400 ? `These filters are not valid: ${err.fields.map((x) => x.field).join(', ') || err.message}.` : refusal(err, 'billing')));
    }
    results.removeAttribute('aria-busy');
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    cursors.length = 0;
    history.replaceState(null, '', `#/refunds${query(filters())}`);
    load();
  });
  wireDownload(dl, dlStatus, async () => `/v1/refunds${query({ ...(await apiQuery(filters())), format: 'csv' })}`, 'refunds.csv',
    (err) => refusal(err, 'billing'));
  setView('Refunds', form, results);
  load();
}
