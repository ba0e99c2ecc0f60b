// Small DOM helpers: elements are built with createElement and text nodes
// only (never innerHTML), so data from the API is never parsed as markup.

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.setAttribute('class', v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
}

function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// yuan formats fen as "¥19.90" from integers only.
export function yuan(fen, currency = 'CNY') {
  const neg = fen < 0;
  const a = Math.abs(fen);
  const s = `${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
  return `${neg ? '-' : ''}${currency === 'CNY' ? '¥' : `${currency} `}${s}`;
}

// parseYuan reads "12", "12.5" or "12.50" as fen; null if it is not an amount.
export function parseYuan(s) {
  const m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(2)} ${units[i]}`;
}

// when shows an API time as given: in the configured zone, with its offset.
export function when(s) {
  if (!s) return '—';
  return s.replace('T', ' ');
}

// status renders a message in the view's live region.
export function message(kind, text) {
  return el('p', { class: `msg msg-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export function table(caption, head, rows, cls = '') {
  return el('div', { class: `table-wrap ${cls}`, tabindex: '0', role: 'region', 'aria-label': caption },
    el('table', {},
      el('caption', {}, caption),
      el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)));
}

// field wraps a labelled input with a place for its error message.
export function field(label, input, hint) {
  const id = input.id;
  const err = el('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
  const hintEl = hint ? el('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  input.setAttribute('aria-describedby', [hintEl && `${id}-hint`, `${id}-error`].filter(Boolean).join(' '));
  return el('div', { class: 'field' }, el('label', { for: id }, label), input, hintEl, err);
}

export function setFieldError(id, text) {
  const e = document.getElementById(`${id}-error`);
  const input = document.getElementById(id);
  if (e) e.textContent = text || '';
  if (input) {
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}
