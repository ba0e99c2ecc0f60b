package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entitlements/billing"

	"github.com/jackc/pgx/v5"
)

// Snapshot invalidation across replicas, on PostgreSQL. With the snapshot
// cache on, every write transaction that touched vehicles sends their VINs
// with pg_notify just before it commits (Tx.notifySnapshots); PostgreSQL
// delivers the notifications only if it commits, and after it has
// (a listener that receives one reads the commit's effects). Each store
// listens on a connection of its own (a pgx connection outside the pools:
// LISTEN belongs to a session, and a pooled connection is not ours to
// keep) and forgets the VINs it is told about, its own writes' included.
//
// Notifications sent while a listener is not listening are lost. The
// cache is therefore off (empty and bypassed) until the first LISTEN has
// succeeded and from the moment the connection fails; the listener
// reconnects with backoff and, once it listens again, empties the cache
// and turns it back on. A read that began before that is not cached (see
// snapshotCache.setOff).
//
// The channel is per schema, like the job locks (joblock.go): two
// deployments in two schemas of one database (or tests in parallel) do
// not invalidate each other's caches.

// snapshotChannel is the SQL expression of the notification channel.
// md5 keeps it under the 63 bytes of an identifier.
const snapshotChannel = `'entitlements_snapshots_' || md5(current_schema())`

// listenerApp is the listener connection's application_name, which
// pg_stat_activity shows.
const listenerApp = "entitlements-snapshot-listener"

// payloadLimit bounds a notification's payload (PostgreSQL refuses 8000
// bytes or more).
const payloadLimit = 7900

// Listener timing: the first reconnection is tried after backoffMin, each
// failure doubles the wait up to backoffMax. An idle connection is
// pinged every pingEvery, so that one the network lost silently turns the
// cache off within about pingEvery + pingTimeout.
const (
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 10 * time.Second
	pingEvery   = 15 * time.Second
	pingTimeout = 5 * time.Second
)

var notifyStmt = statement{"cache/notify", func() string {
	return `SELECT pg_notify(` + snapshotChannel + `, p) FROM unnest(?::text[]) p`
}}

// notifySnapshots sends the VINs the transaction touched to every
// listener, on PostgreSQL when the snapshot cache is on. It runs last in
// the transaction, so that only a commit delivers them.
func (tx *Tx) notifySnapshots() error {
	if tx.db.listen == nil || len(tx.vins) == 0 {
		return nil
	}
	rows, err := tx.query(notifyStmt, payloads(tx.vins))
	if err != nil {
		return err
	}
	return eachRow(rows, func() error { return nil })
}

// payloads packs vins, without repeats, into comma-separated payloads
// under payloadLimit.
func payloads(vins []billing.VIN) []string {
	vs := slices.Clone(vins)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	var out []string
	var b strings.Builder
	for _, v := range vs {
		if b.Len() > 0 && b.Len()+1+len(v) > payloadLimit {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(v))
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// listener keeps a LISTEN connection and forgets the notified VINs.
type listener struct {
	dsn           string
	cache         *snapshotCache
	stop          context.CancelFunc
	done          chan struct{}
	tried         chan struct{} // closed once the first attempt to listen has succeeded or failed
	backoff       atomic.Int64  // the first wait before reconnecting (tests lengthen it)
	idle          atomic.Int64  // how long the connection may be silent before a ping (tests shorten it)
	up            atomic.Bool   // listening, and the cache is on
	invalidations atomic.Int64  // VINs forgotten on notifications
	lost          atomic.Int64  // connections lost after listening
}

func startListener(dsn string, cache *snapshotCache) *listener {
	ctx, stop := context.WithCancel(context.Background())
	l := &listener{dsn: dsn, cache: cache, stop: stop, done: make(chan struct{}), tried: make(chan struct{})}
	l.backoff.Store(int64(backoffMin))
	l.idle.Store(int64(pingEvery))
	go l.run(ctx)
	return l
}

// waitTried waits for the first attempt to listen, so that a store that
// can listen starts with its cache on.
func (l *listener) waitTried(ctx context.Context) {
	select {
	case <-l.tried:
	case <-ctx.Done():
	}
}

// close stops the listener and waits for it.
func (l *listener) close() {
	l.stop()
	<-l.done
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	var once sync.Once
	tried := func() { once.Do(func() { close(l.tried) }) }
	defer tried()
	wait := time.Duration(l.backoff.Load())
	for {
		listened := l.listen(ctx, tried)
		tried()
		l.up.Store(false)
		l.cache.setOff(true)
		if listened {
			l.lost.Add(1)
			wait = time.Duration(l.backoff.Load())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, backoffMax)
	}
}

// listen connects, listens and forgets notified VINs until the
// connection fails or ctx ends; listened says whether it got as far as
// listening. Why it failed is not reported: the cache's being off says
// it, and the pools' own errors say why the database is unreachable.
func (l *listener) listen(ctx context.Context, listening func()) (listened bool) {
	cfg, err := pgx.ParseConfig(l.dsn)
	if err != nil {
		return false
	}
	cfg.RuntimeParams["application_name"] = listenerApp
	connectCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	cancel()
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	var channel string
	if err := conn.QueryRow(ctx, `SELECT `+snapshotChannel).Scan(&channel); err != nil {
		return false
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false
	}
	// Listening: what committed before is in the database, what commits
	// from now on is notified.
	l.cache.setOff(false)
	l.up.Store(true)
	listening()
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(l.idle.Load()))
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			l.forget(n.Payload)
		case ctx.Err() != nil:
			return true
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true
			}
		default:
			return true
		}
	}
}

// forget drops the cached snapshots of the VINs in a payload.
func (l *listener) forget(payload string) {
	var vins []billing.VIN
	for v := range strings.SplitSeq(payload, ",") {
		vins = append(vins, billing.VIN(v))
	}
	l.cache.forget(vins...)
	l.invalidations.Add(int64(len(vins)))
}
