// Downloads a CSV export: fetched with the bearer header (a plain link
// could not send it), then saved from a blob.

import { get } from './api.js';

export async function downloadCSV(path, filename) {
  const blob = await get(path, { raw: true });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob.size;
}

// wireDownload makes button download the CSV at the path pathOf() gives
// (async), saying in status what happened; refuse words a failure.
export function wireDownload(button, status, pathOf, filename, refuse) {
  button.addEventListener('click', async () => {
    status.textContent = 'Preparing the CSV…';
    try {
      const n = await downloadCSV(await pathOf(), filename);
      status.textContent = `Downloaded ${filename} (${n} bytes).`;
    } catch (err) {
      status.textContent = refuse(err);
    }
  });
}
