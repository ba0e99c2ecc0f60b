// VIN check digit (ISO 3779 / FMVSS 565), as billing.ParseVIN applies it.

const weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

function value(c) {
  if (c >= '0' && c <= '9') return c.charCodeAt(0) - 48;
  if (c >= 'A' && c <= 'H') return c.charCodeAt(0) - 64;
  if (c >= 'J' && c <= 'N') return c.charCodeAt(0) - 73;
  if (c === 'P') return 7;
  if (c === 'R') return 9;
  if (c >= 'S' && c <= 'Z') return c.charCodeAt(0) - 81;
  return -1;
}

// looksLikeVIN: 17 characters of the VIN alphabet (check digit not checked).
export function looksLikeVIN(s) {
  return /^[0-9A-HJ-NPR-Z]{17}$/i.test(s.trim());
}

// checkVIN says whether s is a valid VIN and, if its characters are right,
// which check digit position 9 should carry.
// Returns {ok, vin, expected, got, problem}.
export function checkVIN(raw) {
  const s = raw.trim().toUpperCase();
  if (s.length !== 17) {
    return { ok: false, problem: `a VIN has 17 characters; this has ${s.length}` };
  }
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const n = value(s[i]);
    if (n < 0) {
      return { ok: false, problem: `character ${i + 1} (“${s[i]}”) is not allowed: 0-9 and A-Z except I, O, Q` };
    }
    sum += n * weights[i];
  }
  const expected = sum % 11 === 10 ? 'X' : String(sum % 11);
  return { ok: s[8] === expected, vin: s, expected, got: s[8] };
}
