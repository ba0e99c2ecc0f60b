// The vehicle page: owner, model, activation, the coverage timeline, data
// this cycle, orders (with the refund form) and notices.

import { ApiError, get, newKey, post, query } from './api.js';
import { bytes, el, field, message, parseYuan, setFieldError, table, when, yuan } from './dom.js';
import { domain, drawTimeline } from './timeline.js';
import { refusal, setView } from './main.js';
import { moreButton } from './paging.js';

const ORDERS_PAGE = 20; // orders per page, newest first

// showVehicle shows the vehicle; issued is a refund just made, to report.
export async function showVehicle(vin, issued) {
  const body = el('div', { class: 'vehicle', 'aria-busy': 'true' }, message('info', `Loading ${vin}…`));
  setView(`Vehicle ${vin}`, body);
  const path = `/v1/vehicles/${encodeURIComponent(vin)}`;
  let ent;
  try {
    ent = await get(`${path}/entitlement`);
  } catch (err) {
    body.removeAttribute('aria-busy');
    body.replaceChildren(message('error', err.status === 404
      ? `No activated vehicle ${vin}.` : refusal(err, 'billing or ops')));
    return;
  }
  const [orders, notices] = await Promise.all([
    get(`${path}/orders${query({ limit: ORDERS_PAGE })}`).catch((e) => e),
    get(`${path}/notices${query({ limit: 100 })}`).catch((e) => e),
  ]);
  body.removeAttribute('aria-busy');
  const refundSlot = el('section', { id: 'refund', class: 'card', 'aria-labelledby': 'refund-title', hidden: true });
  body.replaceChildren(
    summary(ent),
    drawTimeline(ent.periods, { title: 'Coverage timeline', now: ent.evaluated_at, id: 'timeline' }),
    dataUse(ent.data),
    ordersSection(ent, orders, refundSlot),
    refundSlot,
    noticesSection(notices));
  if (issued) {
    refundSlot.hidden = false;
    refundSlot.replaceChildren(el('h2', { id: 'refund-title', tabindex: '-1' }, 'Refund issued'),
      message('ok', `Refunded ${yuan(issued.amount_fen, issued.currency)} on order ${issued.order_id} (refund ${issued.id}). The page shows the vehicle after it.`),
      el('p', {}, el('a', { href: `#/refunds?vin=${vin}` }, 'See the refunds of this vehicle')));
    refundSlot.querySelector('h2').focus();
  }
}

function summary(e) {
  const dl = el('dl', { class: 'facts' },
    el('dt', {}, 'Owner'), el('dd', {}, el('a', { href: `#/find?q=${encodeURIComponent(e.owner_id)}` }, e.owner_id)),
    el('dt', {}, 'Model'), el('dd', {}, e.model),
    el('dt', {}, 'Activated'), el('dd', {}, when(e.activated_at)),
    el('dt', {}, 'State'), el('dd', { id: 'state' }, `${e.state}${e.covered ? ' (covered)' : ' (not covered)'}`),
    el('dt', {}, 'Covered until'), el('dd', {}, when(e.covered_until)),
    el('dt', {}, 'Days left'), el('dd', {}, String(e.days_left)),
    el('dt', {}, 'As of'), el('dd', {}, when(e.evaluated_at)));
  return el('section', { class: 'card', 'aria-label': 'Vehicle' }, dl);
}

function dataUse(d) {
  const h = el('h2', { id: 'data-title' }, 'Data this cycle');
  const range = el('p', { class: 'hint' }, `Cycle ${when(d.cycle_start)} to ${when(d.cycle_end)}; usage as of ${when(d.as_of)}.`);
  const state = el('p', { id: 'throttle', class: d.throttled ? 'throttled' : 'unthrottled' },
    d.throttled ? 'Throttled: the allowance is used up; premium features run slowly.' : 'Not throttled.');
  if (d.unlimited) {
    return el('section', { class: 'card', 'aria-labelledby': 'data-title' }, h, range,
      el('p', {}, `Unlimited; ${bytes(d.used_bytes)} used.`), state);
  }
  const meter = el('meter', { id: 'data-meter', min: '0', max: String(d.allowance_bytes || 1), value: String(Math.min(d.used_bytes, d.allowance_bytes)), high: String(d.allowance_bytes * 0.8), optimum: '0' });
  return el('section', { class: 'card', 'aria-labelledby': 'data-title' }, h, range,
    el('label', { for: 'data-meter' }, `${bytes(d.used_bytes)} used of ${bytes(d.allowance_bytes)} (${bytes(d.remaining_bytes)} left)`),
    meter, state);
}

function ordersSection(ent, orders, refundSlot) {
  const h = el('h2', { id: 'orders-title' }, 'Orders');
  if (orders instanceof Error) {
    return el('section', { 'aria-labelledby': 'orders-title' }, h, message('error', refusal(orders, 'billing or ops')));
  }
  if (!orders.orders.length) return el('section', { 'aria-labelledby': 'orders-title' }, h, el('p', {}, 'No orders.'));
  const row = (o) => el('tr', { 'data-order': o.id },
    el('td', {}, o.id), el('td', {}, o.product), el('td', {}, o.status),
    el('td', { class: 'num' }, yuan(o.amount_fen, o.currency)), el('td', { class: 'num' }, yuan(o.refunded_fen, o.currency)),
    el('td', {}, when(o.paid_at)), el('td', {}, when(o.created_at)),
    el('td', {}, el('button', { type: 'button', class: 'refund-open', 'aria-controls': 'refund',
      onclick: () => openRefund(ent, o, refundSlot) }, 'Refund…')));
  const list = table(`Orders of ${ent.vin}, newest first`, ['Order', 'Product', 'Status', 'Paid', 'Refunded', 'Paid at', 'Created', 'Action'],
    orders.orders.map(row));
  list.id = 'orders';
  const path = `/v1/vehicles/${encodeURIComponent(ent.vin)}/orders`;
  return el('section', { 'aria-labelledby': 'orders-title' }, h, list,
    moreButton('orders-more', 'More orders', orders.next_cursor, list, async (cursor) => {
      const page = await get(`${path}${query({ limit: ORDERS_PAGE, cursor })}`);
      return { rows: page.orders.map(row), next: page.next_cursor };
    }, 'billing or ops'));
}

function noticesSection(notices) {
  const h = el('h2', { id: 'notices-title' }, 'Notices');
  if (notices instanceof Error) {
    return el('section', { 'aria-labelledby': 'notices-title' }, h, message('error', refusal(notices, 'billing or ops')));
  }
  if (!notices.length) return el('section', { 'aria-labelledby': 'notices-title' }, h, el('p', {}, 'No notices.'));
  const rows = notices.map((n) => el('tr', {},
    el('td', {}, n.kind), el('td', {}, el('span', { class: `pill pill-${n.status}` }, n.status)),
    el('td', { class: 'num' }, String(n.attempts)), el('td', {}, when(n.created_at)),
    el('td', {}, n.status === 'sent' ? when(n.sent_at) : n.status === 'pending' ? `next ${when(n.next_attempt_at)}` : '—'),
    el('td', { class: 'err' }, n.last_error || '')));
  return el('section', { 'aria-labelledby': 'notices-title' }, h,
    table('Notices, newest first', ['Kind', 'Delivery', 'Attempts', 'Created', 'Sent / next try', 'Last error'], rows));
}

const reasons = [
  ['requested_by_customer', 'Requested by the customer'],
  ['duplicate', 'Duplicate purchase'],
  ['service_issue', 'Service issue'],
  ['vehicle_transferred', 'Vehicle transferred'],
  ['fraudulent', 'Fraudulent'],
  ['other', 'Other'],
];

const refusals = {
  nothing_refundable: ['refund-amount', 'Nothing is left to refund automatically: the period has ended or was already refunded. Enter an amount for a goodwill refund.'],
  refund_exceeds_balance: ['refund-amount', 'This is more than what is left to refund on the order.'],
  order_not_paid: ['refund-reason', 'This order is not paid, so there is nothing to refund.'],
  order_not_found: ['refund-reason', 'This order no longer exists.'],
  idempotency_key_reused: ['refund-reason', 'This form was already submitted with other values. Close it and open a new one.'],
};

const actionWords = {
  removed: 'The period has not started: it is removed from the timeline and later periods move earlier.',
  cut: 'The period is running: access ends now and later periods move earlier.',
  kept: 'Access is unchanged: the period stays as it is.',
};

// openRefund shows the refund form for order o. The Idempotency-Key is
// made once per form, so that a double click or a retry refunds once.
function openRefund(ent, o, slot) {
  const key = newKey();
  let left = o.amount_fen - o.refunded_fen;
  const reason = el('select', { id: 'refund-reason', name: 'reason', required: true },
    reasons.map(([v, t]) => el('option', { value: v }, t)));
  const partial = el('input', { id: 'refund-partial', name: 'partial', type: 'checkbox' });
  const amount = el('input', { id: 'refund-amount', name: 'amount', inputmode: 'decimal', autocomplete: 'off', disabled: true, placeholder: yuan(left).replace('¥', '') });
  const note = el('textarea', { id: 'refund-note', name: 'note', rows: '2', maxlength: '500' });
  const endAccess = el('input', { id: 'refund-end-access', name: 'end_access', type: 'checkbox', disabled: true });
  const preview = el('div', { id: 'refund-preview', 'aria-live': 'polite' });
  const status = el('div', { id: 'refund-status', 'aria-live': 'polite' });
  const previewBtn = el('button', { type: 'submit', class: 'primary', id: 'refund-preview-btn' }, 'Preview refund');
  const cancel = el('button', { type: 'button', onclick: () => { slot.hidden = true; slot.replaceChildren(); } }, 'Close');
  let previewed = null;
  let sending = false;

  const request = () => {
    const body = { reason: reason.value, note: note.value };
    if (partial.checked) {
      body.amount_fen = parseYuan(amount.value);
      body.end_access = endAccess.checked;
    }
    return body;
  };
  const clearErrors = () => ['refund-reason', 'refund-amount', 'refund-note', 'refund-end-access'].forEach((f) => setFieldError(f, ''));
  const invalidate = () => {
    previewed = null;
    preview.replaceChildren();
    status.replaceChildren();
    clearErrors();
  };
  partial.addEventListener('change', () => {
    amount.disabled = !partial.checked;
    endAccess.disabled = !partial.checked;
    if (!partial.checked) {
      amount.value = '';
      endAccess.checked = false;
    }
    if (partial.checked) amount.focus();
  });
  for (const c of [reason, partial, amount, note, endAccess]) c.addEventListener('input', invalidate);
  partial.addEventListener('change', invalidate);
  endAccess.addEventListener('change', invalidate);

  const showRefusal = async (err) => {
    const known = refusals[err.code];
    if (err.code === 'refund_exceeds_balance') {
      // The order may have been refunded since the form was opened: say
      // what is left now.
      try {
        const now = await get(`/v1/orders/${encodeURIComponent(o.id)}`);
        left = now.amount_fen - now.refunded_fen;
      } catch { /* keep what the page had */ }
    }
    if (known) {
      setFieldError(known[0], known[1] + (err.code === 'refund_exceeds_balance' ? ` ${yuan(left, o.currency)} is left.` : ''));
      document.getElementById(known[0]).focus();
      return;
    }
    if (err.status === 400 && err.fields.length) {
      for (const f of err.fields) {
        const id = { reason: 'refund-reason', amount_fen: 'refund-amount', note: 'refund-note', end_access: 'refund-end-access' }[f.field];
        if (id) setFieldError(id, fieldWords(f));
      }
      return;
    }
    status.replaceChildren(message('error', refusal(err, 'billing')));
  };

  const form = el('form', { id: 'refund-form', novalidate: true },
    el('div', { class: 'form-grid' },
      field('Reason', reason),
      el('div', { class: 'field check' }, partial, el('label', { for: 'refund-partial' }, 'Refund a set amount (goodwill or partial)')),
      field('Amount in yuan', amount, `Up to ${yuan(left, o.currency)}. Without an amount, the unused part is refunded.`),
      el('div', { class: 'field check' }, endAccess, el('label', { for: 'refund-end-access' }, 'End access now (with a set amount)')),
      field('Note (up to 500 characters)', note)),
    el('div', { class: 'actions' }, previewBtn, cancel),
    status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    invalidate();
    const body = request();
    if (partial.checked && (body.amount_fen === null || body.amount_fen < 1)) {
      setFieldError('refund-amount', 'Enter an amount in yuan, such as 9.90.');
      amount.focus();
      return;
    }
    status.replaceChildren(message('info', 'Working out the refund…'));
    try {
      const p = await post(`/v1/orders/${encodeURIComponent(o.id)}/refunds?dry_run=true`, body);
      status.replaceChildren();
      previewed = body;
      preview.replaceChildren(previewOf(ent, o, p, async () => {
        if (sending || previewed !== body) return;
        sending = true;
        confirmBtnState(true);
        try {
          const r = await post(`/v1/orders/${encodeURIComponent(o.id)}/refunds`, body, { headers: { 'Idempotency-Key': key } });
          await showVehicle(ent.vin, r); // the page as it is now, with the refund said on it
        } catch (err) {
          sending = false;
          confirmBtnState(false);
          preview.replaceChildren();
          showRefusal(err);
        }
      }));
      document.getElementById('refund-confirm').focus();
    } catch (err) {
      status.replaceChildren();
      showRefusal(err);
    }
  });
  slot.hidden = false;
  slot.replaceChildren(
    el('h2', { id: 'refund-title', tabindex: '-1' }, `Refund order ${o.id}`),
    el('p', { class: 'hint' }, `${o.product} · paid ${yuan(o.amount_fen, o.currency)} · refunded so far ${yuan(o.refunded_fen, o.currency)} · status ${o.status}`),
    form, preview);
  slot.querySelector('h2').focus();
  slot.scrollIntoView({ block: 'start' });
}

function confirmBtnState(busy) {
  const b = document.getElementById('refund-confirm');
  if (!b) return;
  b.disabled = busy;
  b.textContent = busy ? 'Issuing…' : b.dataset.label;
}

function fieldWords(f) {
  const words = {
    required: 'Required.', invalid: 'Not a valid value.', too_long: 'Too long.', not_positive: 'Must be at least 0.01.',
    control_characters: 'Has control or invisible characters.',
  };
  return words[f.code] || `Not valid (${f.code}).`;
}

// previewOf shows what the refund will do: the amount, what happens to the
// period, and the timeline before and after on one time axis.
function previewOf(ent, o, p, confirm) {
  const span = domain([ent.periods, p.periods], p.evaluated_at);
  const label = `Issue refund of ${yuan(p.amount_fen, p.currency)}`;
  const btn = el('button', { type: 'button', class: 'danger', id: 'refund-confirm', 'data-label': label, onclick: confirm }, label);
  return el('div', { class: 'preview card' },
    el('h3', {}, 'What will happen'),
    el('ul', {},
      el('li', { id: 'preview-amount' }, `${yuan(p.amount_fen, p.currency)} goes back to the customer (order ${o.id}).`),
      el('li', {}, actionWords[p.period_action] || p.period_action),
      el('li', {}, `Covered until: ${when(ent.covered_until)} → ${when(p.covered_until)}.`)),
    el('div', { class: 'compare' },
      drawTimeline(ent.periods, { title: 'Before the refund', now: p.evaluated_at, span, id: 'tl-before', compact: true }),
      drawTimeline(p.periods, { title: 'After the refund', now: p.evaluated_at, span, id: 'tl-after', compact: true })),
    el('div', { class: 'actions' }, btn));
}
