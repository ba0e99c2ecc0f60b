package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// counter stands for the database: 100 more seeded vehicles each time it
// is asked.
func counter() func() (int64, error) {
	var have atomic.Int64
	return func() (int64, error) { return have.Add(100), nil }
}

// TestSeedProgressOffATerminal: written to a file or a pipe, seed's
// progress is a plain line every 3 seconds, never redrawn.
func TestSeedProgressOffATerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		stop := seedProgress(counter(), 1000, &out, false)
		time.Sleep(7 * time.Second)
		stop()
		want := "seed: 100 of 1000 vehicles present\nseed: 200 of 1000 vehicles present\n"
		if out.String() != want {
			t.Errorf("progress off a terminal:\n%q\nwant\n%q", out.String(), want)
		}
	})
}

// TestSeedProgressOnATerminal: on a terminal, seed draws one progress bar,
// redrawn in place (carriage returns, no new lines until it is done), and
// leaves it at the count when seeding ended.
func TestSeedProgressOnATerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		stop := seedProgress(counter(), 1000, &out, true)
		time.Sleep(4 * time.Second)
		stop()
		got := out.String()
		if strings.Contains(got, "vehicles present") || !strings.Contains(got, "\r") {
			t.Errorf("progress on a terminal is not a redrawn bar: %q", got)
		}
		if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
			t.Errorf("the bar ends with %d new lines, want one at its end: %q", strings.Count(got, "\n"), got)
		}
		if !strings.Contains(got, "seed") || !strings.Contains(got, "500/1000") {
			t.Errorf("the bar does not say what it counts, or not the last count (500/1000): %q", got)
		}
	})
}

// TestIsTerminal: a buffer and a regular file are not terminals.
func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(&bytes.Buffer{}) || isTerminal(f) {
		t.Error("a buffer or a regular file taken for a terminal")
	}
}

// TestSeedPrefixEnd: the range [seedPrefix, seedPrefixEnd) that seed's
// progress counts holds exactly the VINs that start with seedPrefix.
func TestSeedPrefixEnd(t *testing.T) {
	for _, v := range []string{seedPrefix, seedPrefix + "0000000000001", seedPrefix + "ZZZZZZZZZZZZ", "LSEEC", "LSEEDA", "LSEEE", "LSEEE0", "LSEF"} {
		in := v >= seedPrefix && v < seedPrefixEnd
		if in != strings.HasPrefix(v, seedPrefix) {
			t.Errorf("%q: in the counted range %v, starts with %s %v", v, in, seedPrefix, !in)
		}
	}
}
