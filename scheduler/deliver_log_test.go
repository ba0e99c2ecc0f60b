package scheduler_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/scheduler"
	"entitlements/store"
	"entitlements/store/storetest"
)

// TestDeliverFailureLoggedAtWarn: a failed attempt that will be retried is
// logged at warn with the notice id, the attempt number and the time of
// the next try, so an operator sees a failing receiver without metrics.
func TestDeliverFailureLoggedAtWarn(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	n := reminderFor(t, db, vinN(37))
	rcv := newReceiver(t, always(http.StatusBadGateway))
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	runJob(t, newDeliver(t, db, rcv.srv.URL, func(o *scheduler.DeliverOptions) { o.Logger = log }), t0.Add(time.Minute))

	line := logs.String()
	for _, want := range []string{`"level":"WARN"`, `"msg":"notice delivery failed"`, `"notice":"` + n.ID + `"`,
		`"attempt":1`, `"next_retry":"`, `"error":"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %s", line, want)
		}
	}
}
