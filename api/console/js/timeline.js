// The coverage timeline as an SVG picture: one bar per period on a shared
// time axis, a line at now. Each bar is focusable; hovering or focusing it
// shows its exact times (as the API gives them: in the configured zone,
// with the offset) in the caption below the picture.

import { el, svg, when } from './dom.js';

const ROW = 28;
const TOP = 24;
const AXIS = 34;

const ms = (s) => Date.parse(s);

// kind names the bar's kind: trial, paid, scheduled or refunded.
export function kind(p) {
  if (p.status === 'refunded') return 'refunded';
  if (p.status === 'scheduled') return 'scheduled';
  if (p.source === 'trial') return 'trial';
  return 'paid';
}

const kindLabel = { trial: 'Trial', paid: 'Paid', scheduled: 'Scheduled', refunded: 'Refunded' };

// domain is the time span that shows every period of every list and now.
export function domain(lists, now) {
  let lo = ms(now);
  let hi = ms(now);
  for (const ps of lists) {
    for (const p of ps) {
      lo = Math.min(lo, ms(p.starts_at));
      hi = Math.max(hi, ms(p.ends_at));
    }
  }
  const pad = Math.max((hi - lo) * 0.03, 86400000);
  return [lo - pad, hi + pad];
}

// offsetOf reads "+08:00" off an RFC 3339 time as minutes east of UTC.
function offsetOf(s) {
  const m = /([+-])(\d\d):(\d\d)$/.exec(s);
  if (!m) return 0;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

// dateIn formats an instant as YYYY-MM-DD at the offset.
function dateIn(t, offMin) {
  return new Date(t + offMin * 60000).toISOString().slice(0, 10);
}

function describe(p) {
  const parts = [`${kindLabel[kind(p)]} · ${p.product}`, `from ${when(p.starts_at)}`, `to ${when(p.ends_at)}`];
  if (p.refunded_at) parts.push(`refunded at ${when(p.refunded_at)}`);
  if (p.order_id) parts.push(`order ${p.order_id}`);
  parts.push(`status ${p.status}`);
  return parts.join(', ');
}

// drawTimeline returns a figure with the periods' picture. opts:
// title (the caption), now (RFC 3339), span ([lo, hi] in ms, to share an
// axis between two pictures), id (prefix of element ids), compact (a
// narrower drawing, for a phone or two pictures side by side).
export function drawTimeline(periods, { title, now, span, id = 'tl', compact = false }) {
  const phone = window.matchMedia('(max-width: 600px)').matches;
  const narrow = compact || phone;
  const W = phone ? 380 : narrow ? 460 : 820;
  const LABEL = phone ? 106 : narrow ? 118 : 150;
  const [lo, hi] = span || domain([periods], now);
  const x = (t) => LABEL + ((t - lo) / (hi - lo)) * (W - LABEL - 10);
  const H = TOP + Math.max(periods.length, 1) * ROW + AXIS;
  const off = offsetOf(now);
  const detail = el('p', { class: 'tl-detail', id: `${id}-detail`, 'aria-live': 'polite' }, 'Hover over or focus a bar for its exact times.');
  const pic = svg('svg', {
    class: narrow ? 'timeline narrow' : 'timeline', viewBox: `0 0 ${W} ${H}`, role: 'group', 'aria-labelledby': `${id}-title`,
    preserveAspectRatio: 'xMinYMin meet',
  });
  // Axis: a tick at each month start (or fewer when the span is long).
  const axisY = H - AXIS + 6;
  pic.append(svg('line', { class: 'axis', x1: LABEL, x2: W - 10, y1: axisY, y2: axisY }));
  const months = [];
  const start = new Date(lo + off * 60000);
  let y = start.getUTCFullYear();
  let m = start.getUTCMonth() + 1;
  for (;;) {
    if (m > 11) { y++; m = 0; }
    const t = Date.UTC(y, m, 1) - off * 60000;
    if (t > hi) break;
    months.push(t);
    m++;
  }
  const step = Math.ceil(months.length / (narrow ? 4 : 8)) || 1;
  months.forEach((t, i) => {
    if (i % step) return;
    pic.append(svg('line', { class: 'tick', x1: x(t), x2: x(t), y1: TOP - 6, y2: axisY + 4 }));
    pic.append(svg('text', { class: 'tick-label', x: x(t), y: axisY + 18, 'text-anchor': 'middle' }, dateIn(t, off).slice(0, 7)));
  });
  if (!periods.length) {
    pic.append(svg('text', { x: LABEL, y: TOP + 16, class: 'empty' }, 'No periods.'));
  }
  periods.forEach((p, i) => {
    const k = kind(p);
    const y0 = TOP + i * ROW;
    const x0 = x(ms(p.starts_at));
    const w = Math.max(x(ms(p.ends_at)) - x0, 3);
    const text = describe(p);
    const bar = svg('g', {
      class: `bar bar-${k}`, tabindex: '0', role: 'img', 'aria-label': text,
      'data-kind': k, 'data-period': p.id,
    },
    svg('title', {}, text),
    svg('rect', { x: x0, y: y0 + 4, width: w, height: ROW - 10, rx: 3 }));
    const show = () => { detail.textContent = text; };
    bar.addEventListener('mouseenter', show);
    bar.addEventListener('focus', show);
    pic.append(svg('text', { class: 'row-label', x: 2, y: y0 + ROW / 2 + 3 }, `${kindLabel[k]} · ${p.product}`));
    pic.append(bar);
  });
  const nx = x(ms(now));
  pic.append(svg('line', { class: 'now', x1: nx, x2: nx, y1: TOP - 10, y2: axisY }));
  pic.append(svg('text', { class: 'now-label', x: nx, y: TOP - 12, 'text-anchor': 'middle' }, `now ${when(now).slice(0, 16)}`));
  const legend = el('ul', { class: 'legend', 'aria-label': 'Legend' },
    ['trial', 'paid', 'scheduled', 'refunded'].map((kk) => el('li', { class: `key key-${kk}` }, kindLabel[kk])));
  return el('figure', { class: 'tl-figure', id },
    el('figcaption', { id: `${id}-title` }, title),
    el('div', { class: 'tl-scroll' }, pic),
    legend, detail);
}
