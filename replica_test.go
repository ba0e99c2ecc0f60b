package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// Two service processes on one PostgreSQL database, each with its own
// HTTP port and scheduler, as two replicas would run: both serve the same
// data, and the fleet's reminders and expiry notices are created once and
// delivered once between them.
func TestTwoProcessesOnPostgresShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the service binary")
	}
	cfg := storetest.Config(t, store.Postgres) // skips, saying so, without a server
	bin := serviceBinary(t)
	loc, _ := time.LoadLocation("Asia/Shanghai")
	const cars = 15
	seedCrashFleet(t, cfg, loc, cars)

	key := []byte("replica-test-key-0123456789abcd!")
	rcv := &crashReceiver{key: key, delay: 100 * time.Millisecond, perID: map[string]int{}}
	srv := newLocalServer(t, rcv)
	addrs, _ := startReplicas(t, bin, "config.yaml", cfg.DSN, 2,
		"ENTITLEMENTS_SCHEDULER_EXPIRE=@every 1s",
		"ENTITLEMENTS_SCHEDULER_REMIND=@every 1s",
		"ENTITLEMENTS_SCHEDULER_DELIVER=@every 1s",
		"ENTITLEMENTS_NOTICES_WEBHOOK_URL="+srv,
		"ENTITLEMENTS_NOTICES_WEBHOOK_SECRET=whsec_"+base64.StdEncoding.EncodeToString(key),
	)

	// The same API on both: activate through one, read through the other.
	vin := billing.FixCheckDigit("LSVAX4E10R0000001")
	ops, _ := api.MintToken([]byte("dev-only"), api.RoleOps, "delivery", time.Hour, time.Now())
	body := fmt.Sprintf(`{"activated_at":%q,"owner_id":"o1","model":"SU7"}`, time.Now().Add(-time.Hour).Format(time.RFC3339))
	if code := httpDo(t, "POST", "http://"+addrs[0]+"/v1/vehicles/"+vin+"/activation", ops, body); code != http.StatusCreated {
		t.Fatalf("activate on replica 1 = %d", code)
	}
	if code := httpDo(t, "GET", "http://"+addrs[1]+"/v1/vehicles/"+vin+"/entitlement", ops, ""); code != http.StatusOK {
		t.Fatalf("entitlement on replica 2 = %d", code)
	}

	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	unsent := func() (n int64) {
		storetest.Query(db, &n, `SELECT COUNT(*) FROM notices WHERE status <> 'sent'`)
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for (rcv.distinct() < 2*cars || unsent() > 0) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// Two more completed runs of every job in both processes, counted by
	// their own metrics rather than guessed from the clock: nothing new
	// may appear.
	waitJobRuns(t, addrs, []string{store.JobExpire, store.JobRemind, store.JobDeliver}, 2)
	var rows []struct{ ID, VIN, Kind, Status string }
	storetest.Query(db, &rows, `SELECT id, vin, kind, status FROM notices`)
	perKind := map[string]int{}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, r := range rows {
		perKind[r.VIN+" "+r.Kind]++
		if r.Status != "sent" || rcv.perID[r.ID] != 1 {
			t.Errorf("notice %s (%s %s) is %s and was delivered %d times, want sent once", r.ID, r.VIN, r.Kind, r.Status, rcv.perID[r.ID])
		}
	}
	if len(rows) != 2*cars || len(perKind) != 2*cars {
		t.Errorf("%d notices for %d vehicle-kinds, want %d: one per vehicle and kind", len(rows), len(perKind), 2*cars)
	}
	if len(rcv.perID) != len(rows) || rcv.badSig != 0 {
		t.Errorf("receiver saw %d ids (%d bad signatures), want %d", len(rcv.perID), rcv.badSig, len(rows))
	}
}

// waitJobRuns waits until each job has completed more more runs in every
// service at addrs, as their scheduler_job_runs_total counters say.
func waitJobRuns(t *testing.T, addrs, jobs []string, more float64) {
	t.Helper()
	runs := func(addr, job string) float64 {
		res, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		prefix := `scheduler_job_runs_total{job="` + job + `"} `
		for _, line := range strings.Split(buf.String(), "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				var n float64
				fmt.Sscan(v, &n)
				return n
			}
		}
		return 0
	}
	for _, addr := range addrs {
		for _, job := range jobs {
			want := runs(addr, job) + more
			for i := 0; runs(addr, job) < want; i++ {
				if i == 600 {
					t.Fatalf("%s: job %s did not run %v more times", addr, job, more)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

func newLocalServer(t *testing.T, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return "http://" + l.Addr().String()
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func httpDo(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// syncBuffer is a bytes.Buffer safe for two processes' output copiers.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startReplicas starts n service processes of bin with config conf on the
// PostgreSQL database dsn, each on a port of its own and with the same
// certificate key (a car may fetch its certificate from one and the JWKS
// from another), env added to their environment; waits until each is
// ready and returns their addresses and process ids. At the end of the
// test it stops each with SIGTERM, failing the test if one does not shut
// down cleanly, and logs their output if the test failed.
func startReplicas(t *testing.T, bin, conf, dsn string, n int, env ...string) (addrs []string, pids []int) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "dev-only-certificate-key.pem")
	logs := make([]syncBuffer, n)
	var procs []*exec.Cmd
	t.Cleanup(func() {
		for i, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			if err := p.Wait(); err != nil {
				t.Errorf("replica %d: graceful shutdown: %v", i, err)
			}
			if t.Failed() {
				t.Logf("replica %d logs:\n%s", i, logs[i].String())
			}
		}
	})
	for i := range n {
		addr := freePort(t)
		cmd := exec.Command(bin, "serve", "--config", conf)
		cmd.Env = append(append(os.Environ(),
			"ENTITLEMENTS_HTTP_ADDR="+addr,
			"ENTITLEMENTS_DATABASE_DRIVER=postgres",
			"ENTITLEMENTS_DATABASE_DSN="+dsn,
			"ENTITLEMENTS_CERTIFICATE_SIGNING_KEY_FILE="+keyFile,
		), env...)
		cmd.Stdout, cmd.Stderr = &logs[i], &logs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, addrs, pids = append(procs, cmd), append(addrs, addr), append(pids, cmd.Process.Pid)
	}
	for _, a := range addrs {
		waitHTTP(t, "http://"+a+"/readyz")
	}
	return addrs, pids
}
