// Local dates of the configured zone as instants.

import { consoleConfig as zone } from './config.js';

function fmtOffset(sec) {
  const sign = sec < 0 ? '-' : '+';
  const a = Math.abs(sec);
  return `${sign}${String(Math.floor(a / 3600)).padStart(2, '0')}:${String(Math.floor((a % 3600) / 60)).padStart(2, '0')}`;
}

// offsetAt is the zone's UTC offset ("+08:00") at noon of the date.
function offsetAt(cfg, date) {
  try {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: cfg.zone, timeZoneName: 'longOffset' });
    const name = f.formatToParts(new Date(`${date}T12:00:00Z`)).find((x) => x.type === 'timeZoneName').value;
    if (name === 'GMT') return '+00:00';
    const m = /GMT([+-]\d\d:\d\d)/.exec(name);
    if (m) return m[1];
  } catch { /* a zone name Intl does not know: use today's offset */ }
  return fmtOffset(cfg.offset_seconds);
}

function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

// range turns local dates [from, to] (both inclusive, either may be empty)
// into the instants {from, to} of the API's half-open [from, to).
export async function range(from, to) {
  const cfg = await zone();
  const out = {};
  if (from) out.from = `${from}T00:00:00${offsetAt(cfg, from)}`;
  if (to) {
    const d = nextDay(to);
    out.to = `${d}T00:00:00${offsetAt(cfg, d)}`;
  }
  return out;
}

export async function zoneName() {
  return (await zone()).zone;
}
