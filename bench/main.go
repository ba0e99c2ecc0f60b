// Command bench is the load harness: it builds the service, seeds a
// database, starts the service as a separate process and drives it over
// HTTP, printing throughput and latency percentiles per endpoint, each
// endpoint's throughput as a ratio of a bare gin endpoint behind the same
// middleware (auth included), and the service's peak RSS.
//
//	go run ./bench --vehicles 1000000 --concurrency 64 --duration 10s
//
// Everything stays on 127.0.0.1; loops are bounded by --duration.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	"entitlements/store"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type options struct {
	vehicles     int
	concurrency  int
	usageConc    int
	usageCars    int
	payConc      int
	duration     time.Duration
	dir          string
	phases       string
	keep         bool
	driver, dsn  string
	jobs         bool
	expireAtOnce int
	cache        int
	certCache    int
	pprof        string
	usageFleet   bool
	writerCache  int
	poolSize     int
	bin          string
	rate         float64
	openRate     float64
	openDuration time.Duration
	openP99      time.Duration
	client       string
}

func main() {
	var o options
	flag.IntVar(&o.vehicles, "vehicles", 100_000, "vehicles to seed")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent connections for the read phases")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: send the closed-loop read phases' requests at this many per second in all, with vegeta, latency counted from when each was due (0: closed loop, as fast as the connections go)")
	flag.Float64Var(&o.openRate, "open-rate", 5000, "feature-open: feature checks due per second; feature-open-max: the first step's rate")
	flag.DurationVar(&o.openDuration, "open-duration", 30*time.Second, "length of the feature-open phase (each feature-open-max step lasts --duration)")
	flag.DurationVar(&o.openP99, "open-p99", 5*time.Millisecond, "feature-open-max: the p99 a rate must hold to count")
	flag.IntVar(&o.payConc, "payment-concurrency", 16, "concurrent connections for payment notifications")
	flag.IntVar(&o.usageConc, "usage-concurrency", 2, "concurrent 10 000-record batches")
	flag.IntVar(&o.usageCars, "usage-vehicles-per-batch", 1000, "distinct vehicles in each batch of the usage phase (1 000: ten records each, like a carrier's batch; usage-spread always takes 10 000, one record each, the worst case)")
	flag.BoolVar(&o.usageFleet, "usage-fleet", true, "usage batches spread over the whole seeded fleet (false: over the 20 000 sample VINs of the read phases, whose rows stay cached)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each phase")
	flag.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "entitlements-bench"), "working directory (binary, config, database)")
	flag.StringVar(&o.phases, "phases", "ceiling,entitlement,feature,certificate,feature-open,feature-open-max,payment,usage,usage-spread", "phases to run, in order")
	flag.BoolVar(&o.keep, "keep", true, "reuse a database seeded with the same --vehicles")
	flag.StringVar(&o.driver, "driver", "sqlite", "database driver")
	flag.StringVar(&o.dsn, "dsn", "", "database DSN (default: an SQLite file in --dir)")
	flag.IntVar(&o.poolSize, "max-open-conns", 0, "database.max_open_conns and max_idle_conns for the service (0: config.yaml's default)")
	flag.IntVar(&o.writerCache, "sqlite-cache-mib", 0, "database.sqlite_cache_mib for the service (0: config.yaml's default)")
	flag.IntVar(&o.cache, "snapshot-cache", -1, "database.snapshot_cache for the service, on either driver (-1: the default, 65536 on SQLite and off on PostgreSQL)")
	flag.IntVar(&o.certCache, "certificate-cache", -1, "certificate.cache_entries for the service (-1: config.yaml's default; 0: every certificate request signs)")
	flag.StringVar(&o.bin, "bin", "", "run this service binary instead of building one from the working tree (to compare two builds on one database)")
	flag.StringVar(&o.pprof, "pprof", "", "serve the service's pprof on this loopback address (e.g. 127.0.0.1:6060)")
	flag.StringVar(&o.client, "client", "raw", "HTTP client of the read phases: raw (a lean keep-alive client, so the load generator takes little of the cores it shares with the service) or nethttp (net/http's)")
	flag.BoolVar(&o.jobs, "jobs", true, "after the HTTP phases, time the remind and expire jobs on a copy of the database (SQLite)")
	flag.IntVar(&o.expireAtOnce, "expire-at-once", 100_000, "periods made to end at the same instant for the expire job")
	flag.Parse()
	if o.client != "raw" && o.client != "nethttp" {
		fmt.Fprintln(os.Stderr, "bench: --client must be raw or nethttp")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const (
	tokenSecret   = "bench-token-secret"
	paymentSecret = "bench-payment-secret"
)

func run(o options) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(o.dir, "entitlements")
		fmt.Printf("building the service into %s\n", bin)
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if o.dsn == "" {
		o.dsn = filepath.Join(o.dir, fmt.Sprintf("bench-%d.db", o.vehicles))
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(o.dir, "config.yaml")
	if err := writeConfig(cfgPath, addr, o); err != nil {
		return err
	}
	// A marker per database says it holds the seeded fleet (a PostgreSQL
	// database keeps it between runs as a file does).
	seeded := filepath.Join(o.dir, fmt.Sprintf("seeded-v4-%d-%x", o.vehicles, sha256.Sum256([]byte(o.driver+" "+o.dsn))))
	if _, err := os.Stat(seeded); err != nil || !o.keep {
		if o.driver == "sqlite" {
			os.Remove(o.dsn)
			os.Remove(o.dsn + "-wal")
			os.Remove(o.dsn + "-shm")
		}
		start := time.Now()
		// --force: on PostgreSQL the database keeps the vehicles earlier
		// runs' phases added, which seed would otherwise take for real data.
		cmd := exec.Command(bin, "seed", "--config", cfgPath, "--vehicles", strconv.Itoa(o.vehicles), "--force")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		fmt.Printf("seeded %d vehicles in %.1fs\n", o.vehicles, time.Since(start).Seconds())
		os.WriteFile(seeded, nil, 0o644)
	}

	if o.driver == "postgres" {
		if err := prewarm(o.dsn); err != nil {
			fmt.Printf("warning: the tables the reads use were not loaded into shared_buffers (%v); the read phases start cold\n", err)
		}
	}
	if o.driver == "sqlite" {
		// Read the database file once, so the phases start with it in the
		// OS page cache, as a service that has been running has its hot
		// pages. Seen here: between runs the kernel kept 208 of its 690 MB,
		// and the cold snapshot reads then waited on the disk (p99 of
		// entitlement reads 0.5-1.1 s instead of 20-30 ms).
		if err := readFile(o.dsn); err != nil {
			return err
		}
	}
	svc := exec.Command(bin, "serve", "--config", cfgPath)
	svc.Env = append(os.Environ(), "ENTITLEMENTS_BENCH_ENDPOINT=1")
	if o.pprof != "" {
		svc.Env = append(svc.Env, "ENTITLEMENTS_PPROF_ADDR="+o.pprof)
	}
	logf, _ := os.Create(filepath.Join(o.dir, "service.log"))
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
	d := &driver{base: base, o: o, run: strconv.FormatInt(time.Now().UnixNano(), 36), client: &http.Client{Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency * 2, IdleConnTimeout: time.Minute,
	}, Timeout: 30 * time.Second}, svcPid: svc.Process.Pid}
	if err := d.prepare(); err != nil {
		return err
	}
	if err := d.warm(); err != nil {
		return err
	}
	fmt.Printf("\n%d vehicles, %d connections, %s per phase, service pid %d\n", o.vehicles, o.concurrency, o.duration, svc.Process.Pid)
	if c, err := proc.MeasureCosts(o.dir, 200_000); err == nil {
		fmt.Printf("this machine's kernel, one core: an empty system call %.2f µs, a 4 KiB pread %.2f µs, a 4 KiB pwrite %.2f µs (page cache)\n",
			us(c.Syscall), us(c.Pread), us(c.Pwrite))
	}
	if o.rate > 0 {
		fmt.Printf("read phases in open loop: %.0f requests/s due, latency counted from when each was due\n", o.rate)
	}
	fmt.Println("cpu µs/req: CPU time per request of the service, of the database server (PostgreSQL's processes; 0 on SQLite, which runs in the service) and of the load generator, all on this machine's cores")
	fmt.Println("io calls/req: the service's read- and write-family system calls per request (/proc/PID/io syscr+syscw)")
	fmt.Printf("%-12s %10s %9s %9s %9s %9s %8s %15s %12s %s\n", "phase", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "ceiling", "cpu s+db+c", "io calls/req", "note")
	var ceiling float64
	for _, ph := range strings.Split(o.phases, ",") {
		if ph == "" {
			continue
		}
		r, err := d.phase(strings.TrimSpace(ph))
		if err != nil {
			return err
		}
		if ph == "ceiling" {
			ceiling = r.rps
		}
		ratio := "-"
		if ceiling > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*r.rps/ceiling)
		}
		fmt.Printf("%-12s %10.0f %9.2f %9.2f %9.2f %9d %8s %15s %12.1f %s\n", ph, r.rps, ms(r.p50), ms(r.p99), ms(r.p999), r.errors, ratio, r.cpu(), r.ioCalls, r.note)
	}
	fmt.Printf("\nservice peak RSS: %.0f MB\n", float64(proc.StatusKB(svc.Process.Pid, "VmHWM"))/1024)
	svc.Process.Signal(syscall.SIGTERM)
	svc.Wait()
	if o.jobs && o.driver == "sqlite" {
		return runJobs(o, o.dsn, o.expireAtOnce)
	}
	return nil
}

// prewarm loads the tables and indexes every read touches into
// PostgreSQL's shared_buffers (pg_prewarm), as a server that has been
// serving the fleet holds them: after a restart each read of the sample
// VINs otherwise copies its pages from the OS one by one (seen here: the
// database's CPU a read 364 µs cold, 75-116 µs once the pages were in).
func prewarm(dsn string) error {
	return pgExec(dsn, `CREATE EXTENSION IF NOT EXISTS pg_prewarm`,
		`SELECT pg_prewarm(c.oid) FROM pg_class c
		WHERE c.relname IN ('vehicles', 'vehicles_pkey', 'periods', 'periods_vin_seq_key', 'usage_cycles', 'usage_cycles_pkey')`)
}

// pgExec runs statements on the PostgreSQL database dsn.
func pgExec(dsn string, stmts ...string) error {
	db, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: dsn})
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ToolExec(context.Background(), q); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads path to its end and throws what it read away.
func readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

var cacheEntries = regexp.MustCompile(`cache_entries: [0-9]+`)

func writeConfig(path, addr string, o options) error {
	src, err := os.ReadFile("config.yaml")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(line, "http:"):
			line = fmt.Sprintf("http: {addr: %q}", addr)
		case strings.HasPrefix(line, "database:"):
			extra := ""
			if o.cache >= 0 {
				extra += fmt.Sprintf(", snapshot_cache: %d", o.cache)
			}
			if o.poolSize > 0 {
				extra += fmt.Sprintf(", max_open_conns: %d, max_idle_conns: %d", o.poolSize, o.poolSize)
			}
			if o.writerCache > 0 {
				extra += fmt.Sprintf(", sqlite_cache_mib: %d", o.writerCache)
			}
			line = fmt.Sprintf("database: {driver: %s, dsn: %q%s}", o.driver, o.dsn, extra)
		case strings.HasPrefix(line, "auth:"):
			line = fmt.Sprintf("auth: {token_secret: %s}", tokenSecret)
		case strings.HasPrefix(line, "payments:"):
			line = fmt.Sprintf("payments: {webhook_secret: %s, tolerance: 5m}", paymentSecret)
		case strings.HasPrefix(line, "certificate:"):
			// The development key, generated in the working directory.
			line = strings.Replace(line, "data/dev-only-certificate-key.pem", filepath.Join(o.dir, "dev-only-certificate-key.pem"), 1)
		case o.certCache >= 0 && strings.Contains(line, "cache_entries:"):
			// The last line of the certificate section.
			line = cacheEntries.ReplaceAllString(line, fmt.Sprintf("cache_entries: %d", o.certCache))
		case strings.HasPrefix(line, "scheduler:"):
			// Jobs stay off: the phases measure the API alone.
			line = strings.Replace(line, "enabled: true", "enabled: false", 1)
		}
		b.WriteString(line + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

type result struct {
	rps            float64
	p50, p99, p999 time.Duration
	errors         int64
	note           string
	// CPU time per request, µs: the service's, the database server's
	// (PostgreSQL), and the load generator's (this process: requests,
	// signing, latency bookkeeping).
	svcCPU, dbCPU, clientCPU float64
	// ioCalls is the service's read- and write-family system calls per
	// request (proc.IOCalls): on SQLite, roughly the pages a request reads
	// from the OS and writes to the WAL and the database file.
	ioCalls float64
}

func (r result) cpu() string { return fmt.Sprintf("%.0f+%.0f+%.0f", r.svcCPU, r.dbCPU, r.clientCPU) }

// cpuMark is the CPU time the service, the database server's processes
// (by pid) and this process had used at one moment.
type cpuMark struct {
	svc, client time.Duration
	db          map[int]time.Duration
	ioCalls     int64 // the service's, proc.IOCalls
}

func (d *driver) cpuNow() cpuMark {
	return cpuMark{svc: proc.CPU(d.svcPid), client: proc.CPU(os.Getpid()), db: d.serverCPU(), ioCalls: proc.IOCalls(d.svcPid)}
}

// chargeCPU sets r's CPU per request: what each used since m, over n
// requests.
func (d *driver) chargeCPU(r *result, m cpuMark, n int) {
	r.svcCPU = perRequest(proc.CPU(d.svcPid)-m.svc, n)
	r.dbCPU = perRequest(d.serverCPUSince(m.db), n)
	r.clientCPU = perRequest(proc.CPU(os.Getpid())-m.client, n)
	if n > 0 {
		r.ioCalls = float64(proc.IOCalls(d.svcPid)-m.ioCalls) / float64(n)
	}
}

type driver struct {
	base    string
	o       options
	client  *http.Client
	tokens  []string // vehicle tokens for a sample of seeded VINs
	vins    []string
	staff   string
	owners  []string
	next    atomic.Int64
	run     string // this run's prefix of usage record ids, so a rerun on a kept database posts new records
	svcPid  int
	openSeq int // the open-loop targeter's request counter (vegeta calls it under its lock)
}

func (d *driver) prepare() error {
	now := time.Now()
	n := min(d.o.vehicles, 20_000)
	for i := 0; i < n; i++ {
		idx := (i * 7919) % d.o.vehicles // spread over the fleet
		vin := string(store.SeedVIN(idx))
		tok, err := api.MintToken([]byte(tokenSecret), api.RoleVehicle, vin, 2*time.Hour, now)
		if err != nil {
			return err
		}
		own, err := api.MintToken([]byte(tokenSecret), api.RoleOwner, store.SeedOwner(idx), 2*time.Hour, now)
		if err != nil {
			return err
		}
		d.vins, d.tokens, d.owners = append(d.vins, vin), append(d.tokens, tok), append(d.owners, own)
	}
	var err error
	d.staff, err = api.MintToken([]byte(tokenSecret), api.RoleCarrier, "carrier", 2*time.Hour, now)
	return err
}

// readTarget is the request i of a read phase: its path and token, over
// the sample VINs in turn (the bare endpoint with the vehicles' tokens).
func (d *driver) readTarget(phase string) func(i int) (path, token string) {
	suffix := map[string]string{"entitlement": "/entitlement", "feature": "/features/video_streaming", "certificate": "/certificate"}[phase]
	return func(i int) (string, string) {
		k := i % len(d.vins)
		if phase == "ceiling" {
			return "/v1/_bench/static", d.tokens[k]
		}
		return "/v1/vehicles/" + d.vins[k] + suffix, d.tokens[k]
	}
}

// warm asks each sample car's entitlement once, untimed, so that every
// read phase starts with the sample's snapshots and tokens in the
// service's caches, as a running service has its recent callers'; without
// it the first read phase alone pays the cold reads (seen here: the
// first phase's p99 1.7-2.0 times the bare endpoint's, whichever of
// entitlement and feature came first, and about 1.0 for the second).
// When the certificate phase runs, it then asks each sample car's
// certificate once too, as a running service has signed its recent
// callers' within renew_after, and prints how fast that pass signed: a
// phase that mixed each car's first, signed request with the cached ones
// after it would measure how many cars the sample has per second of
// phase, not the endpoint.
func (d *driver) warm() error {
	if err := d.askEach("entitlement"); err != nil {
		return fmt.Errorf("warm the caches: %w", err)
	}
	if !slices.Contains(strings.Split(d.o.phases, ","), "certificate") {
		return nil
	}
	start := time.Now()
	if err := d.askEach("certificate"); err != nil {
		return fmt.Errorf("warm the certificate cache: %w", err)
	}
	took := time.Since(start)
	fmt.Printf("warm-up: the %d sample cars' first certificates, 16 connections: %s, %.0f/s\n",
		len(d.vins), took.Round(time.Millisecond), float64(len(d.vins))/took.Seconds())
	return nil
}

// askEach asks the phase's endpoint once for each sample car, 16 at a time.
func (d *driver) askEach(phase string) error {
	op, closeConns := d.reader(16, d.readTarget(phase))
	defer closeConns()
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > len(d.vins) {
					return
				}
				if err := op(w, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

// phase runs one endpoint's load for the configured duration.
func (d *driver) phase(name string) (result, error) {
	var op func(worker, i int) error
	closeConns := func() {}
	note := ""
	conc := d.o.concurrency
	switch name {
	case "ceiling", "entitlement", "feature", "certificate":
		if d.o.rate > 0 {
			return d.openLoop(d.readTarget(name), d.o.rate, d.o.duration), nil
		}
		op, closeConns = d.reader(conc, d.readTarget(name))
		switch name {
		case "ceiling":
			note = "bare gin endpoint, same middleware and auth"
		case "certificate":
			note = "no If-None-Match: answered from the certificate cache, which the warm-up filled by signing each car's first (--certificate-cache 0: every request signs)"
		}
	case "feature-open":
		return d.openLoop(d.readTarget("feature"), d.o.openRate, d.o.openDuration), nil
	case "feature-open-max":
		return d.openLoopMax(d.readTarget("feature"), d.o.openRate, d.o.duration, d.o.openP99), nil
	case "payment":
		conc = d.o.payConc
		orders, err := d.prepareOrders(int(float64(3000) * d.o.duration.Seconds()))
		if err != nil {
			return result{}, err
		}
		op = func(w, i int) error {
			if i > len(orders) {
				return errNoMoreOrders
			}
			return d.pay(orders[i-1])
		}
		note = fmt.Sprintf("signed notifications for %d orders created beforehand, %d connections", len(orders), conc)
	case "usage", "usage-spread":
		conc = d.o.usageConc
		cars := d.o.usageCars
		if name == "usage-spread" {
			cars = usageBatch
		}
		if cars < 1 || cars > usageBatch {
			return result{}, fmt.Errorf("--usage-vehicles-per-batch must be 1..%d", usageBatch)
		}
		if d.o.usageFleet && cars > d.o.vehicles {
			return result{}, fmt.Errorf("%d vehicles a usage batch exceed --vehicles (%d): a batch's vehicles would repeat", cars, d.o.vehicles)
		}
		op = d.usage(cars)
		note = fmt.Sprintf("%.0f records/s in 10 000-record batches over %d vehicles each", 0.0, cars)
	default:
		return result{}, fmt.Errorf("unknown phase %q", name)
	}
	defer closeConns()
	profiled := d.profile(name)
	defer profiled()
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d.o.duration)
	cpu0 := d.cpuNow()
	var groups0 groupMark
	if name == "payment" {
		groups0 = d.writeGroups()
	}
	var wg sync.WaitGroup
	start := time.Now()
	var counter atomic.Int64
	var lastDone atomic.Value
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				i := int(counter.Add(1))
				t0 := time.Now()
				err := op(w, i)
				if err == errNoMoreOrders {
					break
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				local = append(local, time.Since(t0))
			}
			if time.Now().Before(deadline) {
				lastDone.Store(time.Now())
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if last := lastDone.Load(); last != nil {
		elapsed = last.(time.Time).Sub(start) // work ran out before the deadline
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{rps: float64(len(lat)) / elapsed.Seconds(), errors: errs.Load(), note: note,
		p50: pct(lat, 0.50), p99: pct(lat, 0.99), p999: pct(lat, 0.999)}
	d.chargeCPU(&r, cpu0, len(lat))
	if name == "payment" {
		if g := d.writeGroups().sub(groups0); g.transactions > 0 {
			r.note += fmt.Sprintf("; %.1f writes an SQLite transaction (group commit)", float64(g.writes)/float64(g.transactions))
		}
	}
	if strings.HasPrefix(name, "usage") {
		r.note = strings.Replace(note, "0 records/s", fmt.Sprintf("%.0f records/s", r.rps*usageBatch), 1)
	}
	if e, ok := firstErr.Load().(string); ok {
		r.note += " first error: " + e
	}
	return r, nil
}

// groupMark is the SQLite writer's count of transactions and of the
// writes they carried, from the service's /metrics (zero on PostgreSQL).
type groupMark struct{ transactions, writes float64 }

func (m groupMark) sub(o groupMark) groupMark {
	return groupMark{m.transactions - o.transactions, m.writes - o.writes}
}

func (d *driver) writeGroups() groupMark {
	res, err := http.Get(d.base + "/metrics")
	if err != nil {
		return groupMark{}
	}
	defer res.Body.Close()
	m, err := parseGroups(res.Body)
	if err != nil {
		fmt.Fprintf(os.Stderr, "metrics: %v\n", err)
	}
	return m
}

// parseGroups reads the writer's counters from a Prometheus text
// exposition; they are zero when absent (PostgreSQL).
func parseGroups(r io.Reader) (groupMark, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return groupMark{}, err
	}
	counter := func(name string) float64 {
		var sum float64
		if f := fams[name]; f != nil {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
		return sum
	}
	return groupMark{counter("sqlite_write_transactions_total"), counter("sqlite_writes_total")}, nil
}

// profile fetches, with --pprof, a CPU profile of the service over the
// phase (but its first and last half second) into <dir>/<phase>.cpu.prof;
// the returned function waits for it.
func (d *driver) profile(phase string) (wait func()) {
	secs := int(d.o.duration.Seconds()) - 1
	if d.o.pprof == "" || secs < 1 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(500 * time.Millisecond)
		res, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.o.pprof, secs))
		if err != nil {
			fmt.Fprintf(os.Stderr, "profile %s: %v\n", phase, err)
			return
		}
		defer res.Body.Close()
		path := filepath.Join(d.o.dir, phase+".cpu.prof")
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, res.Body)
			f.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "profile %s: %v\n", phase, err)
		}
	}()
	return func() { <-done }
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

// reader returns a read phase's operation: GET target(i) with its token,
// which must answer 200, over one connection per worker (--client); and a
// function that closes those connections, so that the next phase does not
// leave the service holding idle ones.
func (d *driver) reader(workers int, target func(i int) (path, token string)) (op func(w, i int) error, closeConns func()) {
	if d.o.client == "nethttp" {
		return func(w, i int) error {
			path, token := target(i)
			return d.call(http.MethodGet, path, token, nil, nil, http.StatusOK)
		}, func() {}
	}
	addr := strings.TrimPrefix(d.base, "http://")
	conns := make([]*rawConn, workers)
	for w := range conns {
		conns[w] = newRawConn(addr)
	}
	return func(w, i int) error {
			path, token := target(i)
			code, err := conns[w].get(path, token)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("GET %s = %d: %.200s", path, code, conns[w].body)
			}
			return nil
		}, func() {
			for _, c := range conns {
				c.close()
			}
		}
}

func (d *driver) call(method, path, token string, body []byte, hdr map[string]string, want int) error {
	_, err := d.callBody(method, path, token, body, hdr, want)
	return err
}

func (d *driver) callBody(method, path, token string, body []byte, hdr map[string]string, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, d.base+path, rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s = %d: %.200s", method, path, res.StatusCode, b)
	}
	return b, nil
}

var errNoMoreOrders = errors.New("no more orders")

type benchOrder struct {
	ID        string `json:"id"`
	AmountFen int64  `json:"amount_fen"`
}

// prepareOrders creates n pending orders (as the vehicles' owners), so
// that the payment phase measures notifications alone. The buyers are
// spread over the whole fleet from a point that differs from run to run
// (buyer), not taken from the read phases' sample: runs on a kept
// database would otherwise pile dozens of packages onto the same 20 000
// cars (a dozen runs took their entitlement reads from 100 % to 30 % of
// the bare endpoint, every read going to the database: their snapshots
// had outgrown the snapshot cache's byte bound, most likely).
func (d *driver) prepareOrders(n int) ([]benchOrder, error) {
	now := time.Now()
	start := int(now.UnixNano() % int64(d.o.vehicles))
	orders := make([]benchOrder, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				idx := buyer(start, i, d.o.vehicles)
				owner, err := api.MintToken([]byte(tokenSecret), api.RoleOwner, store.SeedOwner(idx), 2*time.Hour, now)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				body, err := d.callBody(http.MethodPost, "/v1/vehicles/"+string(store.SeedVIN(idx))+"/orders", owner,
					[]byte(`{"product":"monthly"}`), map[string]string{"Idempotency-Key": fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)}, http.StatusCreated)
				if err == nil {
					err = json.Unmarshal(body, &orders[i])
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, fmt.Errorf("prepare orders: %w", err)
	}
	return orders, nil
}

// buyer is the seeded vehicle of a run's order i: consecutive orders a
// large prime apart from start, so they spread over a fleet of n and
// each car buys once until the run has made n orders.
func buyer(start, i, n int) int {
	return int((int64(start) + int64(i)*1_000_003) % int64(n))
}

// pay sends the signed notification the payment provider would.
func (d *driver) pay(o benchOrder) error {
	note, _ := json.Marshal(map[string]any{
		"event_id": "evt-" + o.ID, "order_id": o.ID, "status": "succeeded",
		"amount_fen": o.AmountFen, "currency": "CNY",
		"paid_at": time.Now().UTC().Format(time.RFC3339), "transaction_id": "tx-" + o.ID,
	})
	sig := billing.SignPayment([]byte(paymentSecret), note, time.Now())
	return d.call(http.MethodPost, "/v1/payments/notifications", "", note, map[string]string{"Payment-Signature": sig}, http.StatusOK)
}

const usageBatch = 10_000

// usage posts a 10 000-record batch of fresh records for
// --usage-vehicles-per-batch vehicles, the window moving on with each
// batch: vehicles spread over the whole seeded fleet (a carrier's feed
// covers every car that is on the road), or with --usage-fleet=false the
// 20 000 sample VINs of the read phases, whose rows stay in the cache.
func (d *driver) usage(per int) func(w, i int) error {
	return func(w, i int) error { return d.usageBatch(per, i) }
}

func (d *driver) usageBatch(per, i int) error {
	type rec struct {
		ID        string `json:"id"`
		VIN       string `json:"vin"`
		Category  string `json:"category"`
		Bytes     int64  `json:"bytes"`
		StartedAt string `json:"started_at"`
		EndedAt   string `json:"ended_at"`
	}
	now := time.Now().UTC().Add(-time.Hour)
	recs := make([]rec, usageBatch)
	for j := range recs {
		var vin string
		if d.o.usageFleet {
			// Knuth's multiplicative hash: consecutive indexes land far
			// apart, and distinct ones stay distinct (the multiplier is
			// prime, so coprime with any fleet size it does not divide).
			n := uint64(d.o.vehicles)
			idx := uint64(i*per+j%per) % n * (2654435761 % n) % n // both factors < n ≤ 2^32: no overflow
			vin = string(store.SeedVIN(int(idx)))
		} else {
			vin = d.vins[(i*per+j%per)%len(d.vins)]
		}
		cat := "entertainment"
		if j%4 == 0 {
			cat = "basic"
		}
		recs[j] = rec{ID: fmt.Sprintf("u-%s-%d", d.run, d.next.Add(1)), VIN: vin, Category: cat, Bytes: 1 << 20,
			StartedAt: now.Format(time.RFC3339), EndedAt: now.Add(time.Minute).Format(time.RFC3339)}
	}
	body, _ := json.Marshal(map[string]any{"records": recs})
	return d.call(http.MethodPost, "/v1/usage", d.staff, body, nil, http.StatusOK)
}
