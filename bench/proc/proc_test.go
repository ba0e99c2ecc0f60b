package proc

import (
	"os"
	"testing"
	"time"
)

// The readers parse this process's own /proc entries: resident memory
// and peak in KiB, CPU time that grows with work.
func TestReadsItsOwnProcess(t *testing.T) {
	pid := os.Getpid()
	rss, peak := StatusKB(pid, "VmRSS"), StatusKB(pid, "VmHWM")
	if rss <= 0 || peak < rss {
		t.Errorf("VmRSS %d KiB, VmHWM %d KiB; want a positive RSS at most the peak", rss, peak)
	}
	before := CPU(pid)
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	if after := CPU(pid); after <= before {
		t.Errorf("CPU went from %s to %s over 50 ms of spinning", before, after)
	}
	calls := IOCalls(pid)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf [1]byte
	for range 100 {
		f.Read(buf[:])
	}
	if after := IOCalls(pid); after < calls+100 {
		t.Errorf("I/O system calls went from %d to %d over 100 reads", calls, after)
	}
	if StatusKB(-1, "VmRSS") != 0 || CPU(-1) != 0 || IOCalls(-1) != 0 {
		t.Error("a process that does not exist reads as something")
	}
}

// The costs are measured, and a 4 KiB copy costs more than an empty call.
func TestMeasureCosts(t *testing.T) {
	c, err := MeasureCosts(t.TempDir(), 2000)
	if err != nil {
		t.Fatal(err)
	}
	if c.Syscall <= 0 || c.Pread <= 0 || c.Pwrite <= 0 {
		t.Errorf("costs %+v; want each positive", c)
	}
	if c.Pwrite <= c.Syscall {
		t.Errorf("a 4 KiB pwrite (%s) cost no more than an empty system call (%s)", c.Pwrite, c.Syscall)
	}
}
