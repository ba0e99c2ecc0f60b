package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
)

// The audit trail (billing/audit.go). A write records its entries with
// Tx.audit; DB.write inserts them in the write's own transaction, after
// the write's work succeeded, stamped with the actor and request id of
// the write's context. A write that fails or panics leaves no entry, and
// an entry never exists without its change. In a group commit each write's
// entries are inserted in its own savepoint, with its own caller's actor.
//
// audit_log is append-only: no statement of the service updates or
// deletes it (TestAuditLogAppendOnly scans the sources), and a trigger on
// both databases refuses UPDATE and DELETE.

// auditMigration creates audit_log and its append-only triggers. The
// table is keyed by (at, id), the order GET /v1/audit pages in, and its
// indexes serve the filters, each newest first by (at, id).
//
// Every payment, order and refund writes an entry, so each B-tree of the
// table costs those transactions pages to write to the WAL. On SQLite
// the table is therefore WITHOUT ROWID: the rows live in the (at, id)
// key's own B-tree, with no rowid table and no separate index on the key
// (docs/storage.md gives the pages a payment writes). An id is unique on
// its own (newID: 48 bits of milliseconds, 80 random).
var auditMigration = migration{Version: 50, Name: "audit_log, append-only",
	SQLite: slices.Concat(auditTableFor(SQLite), []string{
		`CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`,
		`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`,
	}),
	Postgres: slices.Concat(auditTableFor(Postgres), []string{
		`CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$`,
		`CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
		FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`,
		// Row triggers do not fire on TRUNCATE.
		`CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
		FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`,
	}),
}

// auditTableFor is the table and its indexes in the dialect's DDL.
func auditTableFor(dialect string) []string {
	out := slices.Clone(auditTable)
	withoutRowid := ""
	if dialect == SQLite {
		withoutRowid = " WITHOUT ROWID"
	}
	out[0] = strings.ReplaceAll(out[0], "{{WITHOUT_ROWID}}", withoutRowid)
	return out
}

var auditTable = []string{
	`CREATE TABLE audit_log (
		at          {{TS}} NOT NULL,
		id          TEXT NOT NULL,
		actor       TEXT NOT NULL,
		request_id  TEXT NOT NULL DEFAULT '',
		action      TEXT NOT NULL,
		vin         TEXT,
		order_id    TEXT,
		refund_id   TEXT,
		before_json TEXT,
		after_json  TEXT,
		PRIMARY KEY (at, id)
	){{WITHOUT_ROWID}}`,
	`CREATE INDEX audit_log_vin_idx ON audit_log (vin, at, id) WHERE vin IS NOT NULL`,
	`CREATE INDEX audit_log_order_idx ON audit_log (order_id, at, id) WHERE order_id IS NOT NULL`,
	`CREATE INDEX audit_log_actor_idx ON audit_log (actor, at, id)`,
	`CREATE INDEX audit_log_action_idx ON audit_log (action, at, id)`,
}

// audit records e to be inserted with the transaction's work. e.At must be
// the write's now; the store sets the id, the actor and the request id.
func (tx *Tx) audit(e billing.AuditEntry) { tx.entries = append(tx.entries, e) }

// flushAudit inserts the entries the write recorded.
func (tx *Tx) flushAudit() error {
	for _, e := range tx.entries {
		if e.At.IsZero() {
			return fmt.Errorf("audit entry %s has no time", e.Action)
		}
		before, err := fieldsJSON(e.Before)
		if err != nil {
			return err
		}
		after, err := fieldsJSON(e.After)
		if err != nil {
			return err
		}
		_, err = tx.exec(insertAuditStmt, newID("aud", e.At), tx.db.timeArg(e.At), tx.actor.String(), tx.actor.RequestID,
			string(e.Action), nullable(string(e.VIN)), nullable(e.OrderID), nullable(e.RefundID), before, after)
		if err != nil {
			return fmt.Errorf("insert audit entry %s: %w", e.Action, err)
		}
	}
	tx.entries = nil
	return nil
}

var insertAuditStmt = statement{"audit/insert", func() string {
	return `INSERT INTO audit_log (id, at, actor, request_id, action, vin, order_id, refund_id, before_json, after_json)
		VALUES (` + placeholders(10) + `)`
}}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// fieldsJSON encodes f with its instants in UTC (NULL when f is empty).
func fieldsJSON(f billing.Fields) (any, error) {
	if len(f) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(f))
	for k, v := range f {
		switch t := v.(type) {
		case time.Time:
			v = utc(t).Format(time.RFC3339Nano)
		case *time.Time:
			if t == nil {
				v = nil
			} else {
				v = utc(*t).Format(time.RFC3339Nano)
			}
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode audit fields: %w", err)
	}
	return string(b), nil
}

// RecordAudit writes entries in a transaction of their own, for what is
// not a change of the database: the configuration at start-up.
func (db *DB) RecordAudit(ctx context.Context, entries ...billing.AuditEntry) error {
	err := db.write(ctx, nil, func(tx *Tx) error {
		for _, e := range entries {
			tx.audit(e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record audit entries: %w", err)
	}
	return nil
}

// auditRow is audit_log as read.
type auditRow struct {
	ID         string
	At         time.Time
	Actor      string
	RequestID  string
	Action     string
	VIN        sql.NullString
	OrderID    sql.NullString
	RefundID   sql.NullString
	BeforeJSON sql.NullString
	AfterJSON  sql.NullString
}

func (auditRow) TableName() string { return "audit_log" }

func (r auditRow) entry() (billing.AuditEntry, error) {
	e := billing.AuditEntry{
		ID: r.ID, At: r.At.UTC(), Actor: r.Actor, RequestID: r.RequestID, Action: billing.AuditAction(r.Action),
		VIN: billing.VIN(r.VIN.String), OrderID: r.OrderID.String, RefundID: r.RefundID.String,
	}
	for _, f := range []struct {
		raw sql.NullString
		out *billing.Fields
	}{{r.BeforeJSON, &e.Before}, {r.AfterJSON, &e.After}} {
		if !f.raw.Valid {
			continue
		}
		if err := json.Unmarshal([]byte(f.raw.String), f.out); err != nil {
			return e, fmt.Errorf("decode audit entry %s: %w", r.ID, err)
		}
	}
	return e, nil
}

// AuditEntries returns a page of the entries matching q, newest first,
// and the cursor of the next (older) page, nil on the last page.
func (db *DB) AuditEntries(ctx context.Context, q billing.AuditQuery) ([]billing.AuditEntry, *billing.Cursor, error) {
	tx := auditSelect(db.read.WithContext(ctx), q)
	var rows []auditRow
	if err := tx.Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list audit entries: %w", err)
	}
	rows, next := page(rows, q.Limit, func(r auditRow) billing.Cursor { return billing.Cursor{At: r.At.UTC(), ID: r.ID} })
	out := make([]billing.AuditEntry, len(rows))
	for i, r := range rows {
		e, err := r.entry()
		if err != nil {
			return nil, nil, err
		}
		out[i] = e
	}
	return out, next, nil
}

// auditSelect is the query of AuditEntries on g: each filter of q is
// served by an index ending in (at, id), so a page is read in order
// without a sort (TestAuditQueryPlans).
func auditSelect(g *gorm.DB, q billing.AuditQuery) *gorm.DB {
	tx := g.Model(&auditRow{})
	if !q.From.IsZero() {
		tx = tx.Where("at >= ?", utc(q.From))
	}
	if !q.To.IsZero() {
		tx = tx.Where("at < ?", utc(q.To))
	}
	if q.VIN != "" {
		tx = tx.Where("vin = ?", string(q.VIN))
	}
	if q.OrderID != "" {
		tx = tx.Where("order_id = ?", q.OrderID)
	}
	if q.Actor != "" {
		tx = tx.Where("actor = ?", q.Actor)
	}
	if q.Action != "" {
		tx = tx.Where("action = ?", string(q.Action))
	}
	if q.Before != nil {
		at := utc(q.Before.At)
		// A row value, so that the page seeks to the cursor instead of
		// walking the newer entries.
		tx = tx.Where("(at, id) < (?, ?)", at, q.Before.ID)
	}
	return tx.Order("at DESC, id DESC").Limit(q.Limit + 1)
}
