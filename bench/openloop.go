package main

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"entitlements/bench/proc"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// openLoop sends GET target(i) at rate requests a second for dur, on
// vegeta's constant pacer. Latency is counted from when each request was
// due (start + seq/rate), not from when it was sent: if the load
// generator falls behind, the delay is charged to the figures rather
// than hidden (the note says how far behind it fell). A request never
// waits for an earlier one to be answered: a new connection is opened
// whenever every open one is busy.
//
// With --client nethttp the requests go through vegeta's attacker and
// net/http. Its CPU (120-140 µs a request, against 20 for rawConn,
// measured with the feature-open phase) is taken from the two cores the
// service runs on, so by default (--client raw) the pacer's schedule is
// kept and the requests go over rawConns.
func (d *driver) openLoop(target func(i int) (path, token string), rate float64, dur time.Duration) result {
	if d.o.client == "nethttp" {
		return d.openLoopVegeta(target, rate, dur)
	}
	addr := strings.TrimPrefix(d.base, "http://")
	type job struct {
		due         time.Time
		path, token string
	}
	var (
		mu    sync.Mutex
		lat   []time.Duration
		r     result
		first string
		lag   time.Duration
		wg    sync.WaitGroup
	)
	jobs := make(chan job)
	// A worker owns one connection and sends the requests handed to it.
	worker := func() {
		defer wg.Done()
		c := newRawConn(addr)
		defer c.close()
		for j := range jobs {
			code, err := c.get(j.path, j.token)
			l := time.Since(j.due)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("GET %s = %d: %.200s", j.path, code, c.body)
			}
			mu.Lock()
			if err != nil {
				r.errors++
				if first == "" {
					first = err.Error()
				}
			} else {
				lat = append(lat, l)
			}
			mu.Unlock()
		}
	}
	for range d.o.concurrency {
		wg.Add(1)
		go worker()
	}
	cpu0 := d.cpuNow()
	pacer := vegeta.ConstantPacer{Freq: int(rate), Per: time.Second}
	per := float64(time.Second) / rate
	start := time.Now()
	for seq := uint64(0); ; seq++ {
		wait, stop := pacer.Pace(time.Since(start), seq)
		if stop || time.Since(start)+wait >= dur {
			break
		}
		time.Sleep(wait)
		due := start.Add(time.Duration(float64(seq) * per))
		lag = max(lag, time.Since(due))
		path, token := target(int(seq) + 1)
		select {
		case jobs <- job{due, path, token}:
		default: // every worker is busy: one more, so that no request waits for another
			wg.Add(1)
			go worker()
			jobs <- job{due, path, token}
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	d.chargeCPU(&r, cpu0, len(lat))
	return r.latencies(lat, elapsed, fmt.Sprintf("open loop, %.0f/s due for %s, latency from when due; generator at most %.1f ms behind", rate, dur, ms(lag)), first)
}

func (r result) latencies(lat []time.Duration, elapsed time.Duration, note, firstErr string) result {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.rps, r.p50, r.p99, r.p999 = float64(len(lat))/elapsed.Seconds(), pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999)
	r.note = note
	if firstErr != "" {
		r.note += "; first error: " + firstErr
	}
	return r
}

// openLoopVegeta is openLoop with vegeta's attacker, which starts
// another worker whenever every one is busy.
func (d *driver) openLoopVegeta(target func(i int) (path, token string), rate float64, dur time.Duration) (r result) {
	atk := vegeta.NewAttacker(
		vegeta.KeepAlive(true),
		vegeta.Connections(d.o.concurrency),
		vegeta.Workers(uint64(d.o.concurrency)),
		vegeta.Timeout(30*time.Second),
	)
	tr := func(t *vegeta.Target) error {
		// The targeter is called under vegeta's lock, one request at a time.
		d.openSeq++
		path, token := target(d.openSeq)
		t.Method = http.MethodGet
		t.URL = d.base + path
		t.Header = http.Header{"Authorization": {"Bearer " + token}}
		return nil
	}
	cpu0 := d.cpuNow()
	start := time.Now()
	var lat []time.Duration
	var lag time.Duration
	first := ""
	per := float64(time.Second) / rate
	for res := range atk.Attack(tr, vegeta.ConstantPacer{Freq: int(rate), Per: time.Second}, dur, "open") {
		due := start.Add(time.Duration(float64(res.Seq) * per))
		if l := res.Timestamp.Sub(due); l > lag {
			lag = l
		}
		if res.Error != "" || res.Code != http.StatusOK {
			r.errors++
			if first == "" {
				first = fmt.Sprintf("%d %s %.200s", res.Code, res.Error, res.Body)
			}
			continue
		}
		lat = append(lat, max(res.Timestamp.Add(res.Latency).Sub(due), res.Latency))
	}
	elapsed := time.Since(start)
	d.chargeCPU(&r, cpu0, len(lat))
	return r.latencies(lat, elapsed, fmt.Sprintf("open loop, %.0f/s due for %s (vegeta's attacker, net/http), latency from when due; generator at most %.1f ms behind", rate, dur, ms(lag)), first)
}

// openLoopMax raises the rate of open-loop feature checks by a fifth a
// step, from rate, each step lasting dur, while p99 stays within limit
// with no error, and returns the last step that did; the note names the
// first step that did not.
func (d *driver) openLoopMax(target func(i int) (path, token string), rate float64, dur, limit time.Duration) result {
	var best result
	for step := 0; step < 20; step++ {
		r := d.openLoop(target, rate, dur)
		fmt.Printf("%-12s %10.0f %9.2f %9.2f %9.2f %9d %8s %15s %s\n", "  step", r.rps, ms(r.p50), ms(r.p99), ms(r.p999), r.errors, "-", r.cpu(), fmt.Sprintf("%.0f/s due", rate))
		if r.errors > 0 || r.p99 > limit {
			if best.rps == 0 {
				best = r
				best.note = fmt.Sprintf("no rate from %.0f/s up holds p99 ≤ %s", rate, limit)
				return best
			}
			best.note = fmt.Sprintf("highest open-loop rate with p99 ≤ %s and no error (steps of %s); at %.0f/s due: p99 %.2f ms, %d errors", limit, dur, rate, ms(r.p99), r.errors)
			return best
		}
		best = r
		rate *= 1.2
	}
	best.note = "the service kept p99 within the limit at every step tried"
	return best
}

// serverCPU is the CPU time the local PostgreSQL server has used for
// this database: its background processes (WAL writer, checkpointer,
// autovacuum...) and the backends connected to the database the service
// uses, by pid; empty on SQLite, whose work is the service's own. Other
// databases' backends are left out, so that other work on the same
// server is not charged to the service.
func (d *driver) serverCPU() map[int]time.Duration {
	if d.o.driver != "postgres" {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	db := dsnField(d.o.dsn, "dbname")
	cpu := map[int]time.Duration{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(b)) != "postgres" {
			continue
		}
		// A backend's title is "postgres: 15/main: USER DATABASE HOST(PORT) STATE".
		title, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if f := strings.Fields(strings.ReplaceAll(string(title), "\x00", " ")); len(f) >= 5 && strings.Contains(f[4], "(") && f[3] != db {
			continue
		}
		cpu[pid] = proc.CPU(pid)
	}
	return cpu
}

// serverCPUSince is the CPU the server's processes used since before was
// taken; a process that ended meanwhile is not counted.
func (d *driver) serverCPUSince(before map[int]time.Duration) time.Duration {
	var total time.Duration
	for pid, t := range d.serverCPU() {
		total += t - before[pid]
	}
	return total
}

// dsnField is a key=value field of a PostgreSQL DSN.
func dsnField(dsn, key string) string {
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func perRequest(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}
