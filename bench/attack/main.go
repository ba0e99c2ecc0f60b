// Command attack drives the abuse scenarios of docs/operations.md against
// a service built from the repository (or --bin), started as a separate
// process on a fresh SQLite database, and reports the service's peak RSS
// (VmHWM from /proc/<pid>/status) and how it answered.
//
//	go run ./bench/attack --mode unsigned --sockets 400            # 1 MiB bodies, no Payment-Signature
//	go run ./bench/attack --mode unsigned --sockets 1000 --slow 5s # the same, each body sent over 5 s
//	go run ./bench/attack --mode usage --carriers 64               # 8 MiB usage batches, all at once
//	go run ./bench/attack --mode tokens --tokens 320000            # one read each with that many distinct tokens
//
// While the attack runs, a signed payment notification is sent every
// --probe-every, each for its own pending order, and its answers are
// reported: they should all be 200. Everything stays on 127.0.0.1 and
// every loop is bounded by --duration.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"entitlements/api"
	"entitlements/bench/proc"
	"entitlements/billing"
)

const (
	tokenSecret   = "attack-token-secret"
	paymentSecret = "attack-payment-secret"
)

type options struct {
	mode       string
	bin, dir   string
	sockets    int
	bodyBytes  int
	slow       time.Duration
	carriers   int
	usageBytes int
	duration   time.Duration
	probeEvery time.Duration
	tokens     int
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "unsigned", "unsigned: payment notifications without Payment-Signature; usage: authenticated carriers sending large batches")
	flag.StringVar(&o.bin, "bin", "", "service binary to attack (default: build one from the working tree)")
	flag.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "entitlements-attack"), "working directory (binary, config, database, service log)")
	flag.IntVar(&o.sockets, "sockets", 400, "unsigned: connections sending at once, each reconnecting after every answer")
	flag.IntVar(&o.bodyBytes, "body-bytes", 1<<20, "unsigned: Content-Length of each notification")
	flag.DurationVar(&o.slow, "slow", 0, "unsigned: send each body over this long (0: as fast as the socket takes it)")
	flag.IntVar(&o.carriers, "carriers", 64, "usage: batches in flight at once, each sent again when answered")
	flag.IntVar(&o.usageBytes, "usage-bytes", 8<<20, "usage: size of each batch (10 000 records padded with spaces)")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "length of the attack")
	flag.IntVar(&o.tokens, "tokens", 320_000, "tokens: distinct vehicle tokens, each used once for GET /v1/products (the attack ends when all are sent, or at --duration)")
	flag.DurationVar(&o.probeEvery, "probe-every", 200*time.Millisecond, "a signed payment notification this often during the attack")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.mode != "unsigned" && o.mode != "usage" && o.mode != "tokens" {
		return fmt.Errorf("--mode must be unsigned, usage or tokens, got %q", o.mode)
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if o.bin == "" {
		o.bin = filepath.Join(o.dir, "entitlements")
		fmt.Printf("building the service into %s\n", o.bin)
		if out, err := exec.Command("go", "build", "-o", o.bin, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("go build (run from the repository root): %v\n%s", err, out)
		}
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	db := filepath.Join(o.dir, "attack.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(db + suffix)
	}
	cfg := filepath.Join(o.dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(config(addr, db)), 0o644); err != nil {
		return err
	}
	svc := exec.Command(o.bin, "serve", "--config", cfg)
	logf, err := os.Create(filepath.Join(o.dir, "service.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	svc.Stdout, svc.Stderr = logf, logf
	if err := svc.Start(); err != nil {
		return err
	}
	defer func() {
		svc.Process.Signal(syscall.SIGTERM)
		svc.Wait()
	}()
	base := "http://" + addr
	if err := proc.WaitReady(base + "/readyz"); err != nil {
		return err
	}
	orders, err := prepareOrders(base, int(o.duration/o.probeEvery)+10)
	if err != nil {
		return err
	}
	pid := svc.Process.Pid
	fmt.Printf("service pid %d, RSS before the attack %.0f MB (peak so far %.0f MB)\n", pid, mb(proc.StatusKB(pid, "VmRSS")), mb(proc.StatusKB(pid, "VmHWM")))

	deadline := time.Now().Add(o.duration)
	var answers counter
	var wg sync.WaitGroup
	switch o.mode {
	case "unsigned":
		fmt.Printf("attack: %d connections, each POST /v1/payments/notifications with a %d-byte body and no Payment-Signature, sent %s, for %s\n",
			o.sockets, o.bodyBytes, pace(o.slow), o.duration)
		body := bytes.Repeat([]byte("x"), o.bodyBytes)
		for i := 0; i < o.sockets; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					answers.add(unsigned(addr, body, o.slow))
				}
			}()
		}
	case "usage":
		batch := usageBatch(o.usageBytes)
		tok, err := api.MintToken([]byte(tokenSecret), api.RoleCarrier, "carrier-feed", 2*time.Hour, time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("attack: %d carrier connections, each POST /v1/usage with a %d-byte batch, sent again when answered, for %s\n",
			o.carriers, len(batch), o.duration)
		client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: o.carriers}}
		for i := 0; i < o.carriers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					answers.add(post(client, base+"/v1/usage", batch, map[string]string{"Authorization": "Bearer " + tok}))
				}
			}()
		}
	case "tokens":
		fmt.Printf("minting %d vehicle tokens\n", o.tokens)
		toks := make([]string, o.tokens)
		for i := range toks {
			vin := billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P%07d", i))
			if toks[i], err = api.MintToken([]byte(tokenSecret), api.RoleVehicle, vin, 2*time.Hour, time.Now()); err != nil {
				return err
			}
		}
		fmt.Printf("attack: GET /v1/products once with each of %d distinct tokens, over 16 connections\n", o.tokens)
		deadline = time.Now().Add(o.duration)
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		var next atomic.Int64
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					i := int(next.Add(1)) - 1
					if i >= len(toks) {
						return
					}
					answers.add(get(client, base+"/v1/products", toks[i]))
				}
			}()
		}
	}
	probes := probe(base, orders, o.probeEvery, deadline)
	wg.Wait()
	p := <-probes

	fmt.Printf("\nanswers to the attack: %s\n", answers.String())
	fmt.Printf("signed payments meanwhile: %d sent, %s; latency p50 %.1f ms, max %.1f ms\n", p.sent, p.codes.String(), ms(p.p50), ms(p.max))
	fmt.Printf("service peak RSS (VmHWM): %.0f MB; RSS now %.0f MB\n", mb(proc.StatusKB(pid, "VmHWM")), mb(proc.StatusKB(pid, "VmRSS")))
	return nil
}

func pace(slow time.Duration) string {
	if slow == 0 {
		return "at once"
	}
	return "over " + slow.String()
}

// config is a minimal configuration that both old and new builds accept.
func config(addr, db string) string {
	return fmt.Sprintf(`http: {addr: %q}
database: {driver: sqlite, dsn: %q}
timezone: Asia/Shanghai
auth: {token_secret: %s}
payments: {webhook_secret: %s, tolerance: 5m}
trial: {months: 12, data_bytes_per_month: 16106127360}
products:
  - {code: monthly, name: "In-car network package, 31 days", price_fen: 1990, days: 31, data_bytes_per_month: 16106127360}
features:
  basic: [navigation]
  premium: [video_streaming]
log: {level: warn}
scheduler: {enabled: false}
`, addr, db, tokenSecret, paymentSecret)
}

// unsigned sends one notification without a signature over a connection
// of its own and returns the status, or what went wrong.
func unsigned(addr string, body []byte, slow time.Duration) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial error"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	answered := make(chan string, 1)
	go func() { answered <- readStatus(conn) }()
	head := fmt.Sprintf("POST /v1/payments/notifications HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, len(body))
	if _, err := io.WriteString(conn, head); err != nil {
		return "write error"
	}
	const pieces = 64
	step := (len(body) + pieces - 1) / pieces
	for off := 0; off < len(body); {
		n := len(body) - off
		if slow > 0 {
			n = min(n, step)
		}
		if _, err := conn.Write(body[off : off+n]); err != nil {
			break // the service answered and closed: wait for the answer below
		}
		off += n
		if slow > 0 {
			select {
			case s := <-answered:
				return s
			case <-time.After(slow / pieces):
			}
		}
	}
	return <-answered
}

// readStatus reads a response's status line and returns the code.
func readStatus(conn net.Conn) string {
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
			return "closed without an answer"
		}
		return "read error"
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return "bad status line"
	}
	return f[1]
}

func post(client *http.Client, url string, body []byte, hdr map[string]string) string {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "request error"
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return "error"
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return strconv.Itoa(res.StatusCode)
}

func get(client *http.Client, url, token string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "request error"
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return "error"
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return strconv.Itoa(res.StatusCode)
}

// usageBatch is 10 000 records for VINs that are not activated (each is
// rejected alone, after the whole batch was read and decoded), padded
// with spaces to size bytes.
func usageBatch(size int) []byte {
	type rec struct {
		ID        string `json:"id"`
		VIN       string `json:"vin"`
		Category  string `json:"category"`
		Bytes     int64  `json:"bytes"`
		StartedAt string `json:"started_at"`
		EndedAt   string `json:"ended_at"`
	}
	now := time.Now().UTC().Add(-time.Hour)
	recs := make([]rec, 10_000)
	for i := range recs {
		recs[i] = rec{ID: fmt.Sprintf("attack-%d-%d", now.UnixNano(), i), VIN: billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P%07d", i)),
			Category: "entertainment", Bytes: 1 << 20, StartedAt: now.Format(time.RFC3339), EndedAt: now.Add(time.Minute).Format(time.RFC3339)}
	}
	b, _ := json.Marshal(map[string]any{"records": recs})
	if pad := size - len(b); pad > 0 {
		b = append(b, bytes.Repeat([]byte(" "), pad)...)
	}
	return b
}

type order struct {
	ID        string `json:"id"`
	AmountFen int64  `json:"amount_fen"`
}

// prepareOrders activates a car and creates n pending orders for it.
func prepareOrders(base string, n int) ([]order, error) {
	now := time.Now()
	ops, err := api.MintToken([]byte(tokenSecret), api.RoleOps, "delivery", 2*time.Hour, now)
	if err != nil {
		return nil, err
	}
	owner, err := api.MintToken([]byte(tokenSecret), api.RoleOwner, "attack-owner", 2*time.Hour, now)
	if err != nil {
		return nil, err
	}
	vin := billing.FixCheckDigit("LSVAX4E10P9000001")
	act, _ := json.Marshal(map[string]string{"activated_at": now.Add(-24 * time.Hour).Format(time.RFC3339), "owner_id": "attack-owner", "model": "SU7"})
	if _, err := call(base+"/v1/vehicles/"+vin+"/activation", act, map[string]string{"Authorization": "Bearer " + ops}, http.StatusCreated); err != nil {
		return nil, err
	}
	orders := make([]order, n)
	for i := range orders {
		b, err := call(base+"/v1/vehicles/"+vin+"/orders", []byte(`{"product":"monthly"}`),
			map[string]string{"Authorization": "Bearer " + owner, "Idempotency-Key": fmt.Sprintf("attack-%d", i)}, http.StatusCreated)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &orders[i]); err != nil {
			return nil, err
		}
	}
	return orders, nil
}

func call(url string, body []byte, hdr map[string]string, want int) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("POST %s = %d: %.200s", url, res.StatusCode, b)
	}
	return b, nil
}

type probeResult struct {
	sent     int
	codes    counter
	p50, max time.Duration
}

// probe pays one order every interval until deadline with a signed
// notification, over a connection of its own each time (as a provider's
// retry would come), and reports the answers.
func probe(base string, orders []order, every time.Duration, deadline time.Time) <-chan *probeResult {
	out := make(chan *probeResult, 1)
	go func() {
		r := &probeResult{}
		var lat []time.Duration
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		tick := time.NewTicker(every)
		defer tick.Stop()
		end := time.NewTimer(time.Until(deadline))
		defer end.Stop()
		for r.sent < len(orders) {
			select {
			case <-tick.C:
			case <-end.C:
				goto done
			}
			o := orders[r.sent]
			r.sent++
			now := time.Now()
			note, _ := json.Marshal(map[string]any{
				"event_id": "evt-" + o.ID, "order_id": o.ID, "status": "succeeded", "amount_fen": o.AmountFen,
				"currency": "CNY", "paid_at": now.UTC().Format(time.RFC3339), "transaction_id": "tx-" + o.ID,
			})
			sig := billing.SignPayment([]byte(paymentSecret), note, now)
			t0 := time.Now()
			r.codes.add(post(client, base+"/v1/payments/notifications", note, map[string]string{"Payment-Signature": sig}))
			lat = append(lat, time.Since(t0))
		}
	done:
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) > 0 {
			r.p50, r.max = lat[len(lat)/2], lat[len(lat)-1]
		}
		out <- r
	}()
	return out
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// counter counts answers by status.
type counter struct {
	mu sync.Mutex // protects n
	n  map[string]int
}

func (c *counter) add(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[status]++
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.n))
	for k := range c.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, c.n[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
