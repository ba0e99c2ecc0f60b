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
	if StatusKB(-1, "VmRSS") != 0 || CPU(-1) != 0 {
		t.Error("a process that does not exist reads as something")
	}
}
