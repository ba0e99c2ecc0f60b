// The console's settings from the service (GET /console/config.json): the
// configured zone and the audit actions it records. Fetched once.

let config;

export async function consoleConfig() {
  if (!config) {
    const res = await fetch('config.json', { credentials: 'omit', cache: 'no-store' });
    config = await res.json();
  }
  return config;
}

// auditActions are the actions an audit entry may record (billing.AuditActions).
export async function auditActions() {
  return (await consoleConfig()).audit_actions || [];
}
