// "More": a button under a table that loads the next page of a list (the
// API's next_cursor) and appends its rows to the table.

import { el } from './dom.js';
import { refusal } from './main.js';

// moreButton returns the button and its status line for the list whose
// first page ended with cursor, or null when that page was the last.
// load(cursor) fetches a page and returns {rows, next}; the rows are
// appended to the table in region (a table() wrapper). needed names the
// role(s) the list takes, for a refusal.
export function moreButton(id, label, cursor, region, load, needed) {
  if (!cursor) return null;
  let next = cursor;
  const status = el('span', { id: `${id}-status`, class: 'hint', 'aria-live': 'polite' });
  const btn = el('button', { type: 'button', id, class: 'more', 'aria-controls': region.id || null }, label);
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    status.textContent = 'Loading…';
    try {
      const page = await load(next);
      region.querySelector('tbody').append(...page.rows);
      next = page.next;
      const n = region.querySelectorAll('tbody tr').length;
      if (next) {
        status.textContent = `${n} shown.`;
        btn.disabled = false;
      } else {
        status.textContent = `All ${n} are shown.`;
        btn.hidden = true;
        region.focus();
      }
    } catch (err) {
      status.textContent = refusal(err, needed);
      btn.disabled = false;
    }
  });
  return el('div', { class: 'pager' }, btn, status);
}
