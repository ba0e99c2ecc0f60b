// Package proc holds what the load harnesses (bench and bench/attack)
// need to run the service as a process and read what it used: a free
// port, readiness, and its CPU time and memory from /proc.
package proc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreeAddr returns a loopback address with a port nothing listens on.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitReady polls url until it answers 200, for up to a minute.
func WaitReady(url string) error {
	for i := 0; i < 600; i++ {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("service not ready at %s", url)
}

// StatusKB reads a field of /proc/<pid>/status given in KiB (VmRSS,
// VmHWM); 0 when it cannot.
func StatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			if f := strings.Fields(line); len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

// CPU is the CPU time (user and system) process pid has used; 0 when it
// cannot be read.
func CPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTicks = 100

// IOCalls is the number of read- and write-family system calls (read,
// pread, readv, write, pwrite, ...) process pid has made, from the syscr
// and syscw of /proc/<pid>/io; 0 when it cannot (that file is readable
// by the process's owner only). Each page SQLite reads from the file
// system or writes to its WAL or database file is at least one.
func IOCalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var n int64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "syscr" || k == "syscw") {
			c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += c
		}
	}
	return n
}

// Costs are what the kernel charges one core, on average, for the
// system calls that SQLite's I/O and a database round trip are made of.
type Costs struct {
	Syscall time.Duration // an empty system call (getppid): entering and leaving the kernel
	Pread   time.Duration // a 4 KiB pread of a file in the page cache
	Pwrite  time.Duration // a 4 KiB pwrite over a file in the page cache
}

// MeasureCosts times n of each call, on a 1 MiB file it creates in dir
// and removes (reads and writes go round its 256 pages, which stay in
// the page cache: no disk I/O is timed).
func MeasureCosts(dir string, n int) (Costs, error) {
	f, err := os.CreateTemp(dir, "syscall-cost-*")
	if err != nil {
		return Costs{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	const pages = 256
	if _, err := f.Write(make([]byte, pages*len(page))); err != nil {
		return Costs{}, err
	}
	per := func(call func(i int) error) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			if err := call(i); err != nil {
				return 0, err
			}
		}
		return time.Since(start) / time.Duration(n), nil
	}
	var c Costs
	c.Syscall, _ = per(func(int) error { syscall.Getppid(); return nil })
	if c.Pread, err = per(func(i int) error {
		_, err := f.ReadAt(page, int64(i%pages)*int64(len(page)))
		return err
	}); err != nil {
		return Costs{}, err
	}
	c.Pwrite, err = per(func(i int) error {
		_, err := f.WriteAt(page, int64(i%pages)*int64(len(page)))
		return err
	})
	return c, err
}
