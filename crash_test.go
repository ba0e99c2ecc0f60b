package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// crashReceiver counts deliveries per webhook-id and checks signatures.
type crashReceiver struct {
	key   []byte
	delay time.Duration // before each answer

	mu     sync.Mutex // protects the fields below
	perID  map[string]int
	badSig int
}

func (r *crashReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, r.key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	ok := req.Header.Get("webhook-signature") == "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil))
	time.Sleep(r.delay)
	r.mu.Lock()
	r.perID[id]++
	if !ok {
		r.badSig++
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *crashReceiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.perID)
}

// The service binary is killed with SIGKILL several times while notices
// are pending and restarted: every notice is created exactly once and
// delivered at least once, and a final SIGTERM shuts it down cleanly.
func TestCrashAndRestartLoseNoNotice(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the service binary")
	}
	dir := t.TempDir()
	bin := serviceBinary(t)

	loc, _ := time.LoadLocation("Asia/Shanghai")
	dbPath := filepath.Join(dir, "entitlements.db")
	const cars = 30
	seedCrashFleet(t, store.Config{Driver: store.SQLite, DSN: dbPath}, loc, cars)

	key := []byte("crash-test-key-0123456789abcdef!")
	rcv := &crashReceiver{key: key, delay: 100 * time.Millisecond, perID: map[string]int{}} // slow enough that kills find notices pending
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	cfg := filepath.Join(dir, "config.yaml")
	raw, _ := os.ReadFile("config.yaml")
	conf := strings.Replace(string(raw), `http: {addr: "127.0.0.1:8080"}`, `http: {addr: "127.0.0.1:0"}`, 1)
	conf = strings.Replace(conf, "webhook_timeout: 10s", "webhook_timeout: 1s", 1) // leases of 7s
	if !strings.Contains(conf, "127.0.0.1:0") || !strings.Contains(conf, "webhook_timeout: 1s") {
		t.Fatalf("config.yaml changed: update this test's edits of it")
	}
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfg)
		cmd.Env = append(os.Environ(),
			"ENTITLEMENTS_DATABASE_DSN="+dbPath,
			"ENTITLEMENTS_CERTIFICATE_SIGNING_KEY_FILE="+filepath.Join(dir, "dev-only-certificate-key.pem"),
			"ENTITLEMENTS_SCHEDULER_EXPIRE=@every 1s",
			"ENTITLEMENTS_SCHEDULER_REMIND=@every 1s",
			"ENTITLEMENTS_SCHEDULER_DELIVER=@every 1s",
			"ENTITLEMENTS_NOTICES_WEBHOOK_URL="+srv.URL,
			"ENTITLEMENTS_NOTICES_WEBHOOK_SECRET=whsec_"+base64.StdEncoding.EncodeToString(key),
		)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	waitFor := func(n int, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for rcv.distinct() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		return rcv.distinct() >= n
	}

	killedWithPending := 0
	for _, after := range []int{3, 2 * cars / 3, cars + 5} {
		cmd := start()
		reached := waitFor(after, 30*time.Second)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if !reached {
			t.Fatalf("only %d notices delivered before the kill, want %d; log:\n%s", rcv.distinct(), after, logs.String())
		}
		if rcv.distinct() < 2*cars {
			killedWithPending++
		}
	}
	if killedWithPending == 0 {
		t.Fatalf("every kill came after all notices were delivered: the test proves nothing")
	}
	// Notices claimed by a killed process are sent again once their lease
	// (2 × webhook_timeout + 5s) runs out: wait until the database says
	// every one is sent.
	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pending := func() int64 {
		var n int64
		storetest.Query(db, &n, `SELECT COUNT(*) FROM notices WHERE status <> 'sent'`)
		return n
	}
	cmd := start()
	deadline := time.Now().Add(60 * time.Second)
	for (rcv.distinct() < 2*cars || pending() > 0) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("graceful shutdown: %v; log:\n%s", err, logs.String())
	}
	var rows []struct {
		VIN, Kind, Status, ID string
	}
	storetest.Query(db, &rows, `SELECT vin, kind, status, id FROM notices`)
	perVIN := map[string]int{}
	for _, r := range rows {
		perVIN[r.VIN+" "+r.Kind]++
		if r.Status != string(billing.NoticeSent) || rcv.perID[r.ID] == 0 {
			t.Errorf("notice %s (%s %s) is %s, delivered %d times; want sent at least once", r.ID, r.VIN, r.Kind, r.Status, rcv.perID[r.ID])
		}
	}
	if len(rows) != 2*cars || len(perVIN) != 2*cars {
		t.Errorf("%d notices for %d vehicle-kinds, want %d each: created exactly once", len(rows), len(perVIN), 2*cars)
	}
	dupes := 0
	for _, n := range rcv.perID {
		dupes += n - 1
	}
	if rcv.badSig > 0 {
		t.Errorf("%d deliveries with a bad signature", rcv.badSig)
	}
	t.Logf("%d notices, %d redelivered after kills (at least once)", len(rows), dupes)
}

// seedCrashFleet activates cars whose trial ends in about 5 days and cars whose
// trial ended about 2 days ago, by the real clock (the binary reads it).
func seedCrashFleet(t *testing.T, cfg store.Config, loc *time.Location, cars int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	trial := billing.TrialTerms{Months: 12}
	for i := range 2 * cars {
		end := now.Add(5 * 24 * time.Hour)
		if i >= cars {
			end = now.Add(-2 * 24 * time.Hour)
		}
		vin := billing.VIN(billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P%07d", i)))
		at := billing.AddMonthsClamped(end, -12, loc).Add(time.Hour)
		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: at, OwnerID: "owner", Model: "SU7"}, trial, loc, now); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// serviceBinary builds the service once per test run and returns its path.
func serviceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "entitlements-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "entitlements")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}
