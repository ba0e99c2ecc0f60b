package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestWriteGroupsReadsTheExposition reads the writer's counters from what
// a Prometheus registry serves, among other families, and zero from an
// exposition without them (the service on PostgreSQL).
func TestWriteGroupsReadsTheExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	tx := prometheus.NewCounter(prometheus.CounterOpts{Name: "sqlite_write_transactions_total", Help: "Write transactions."})
	writes := prometheus.NewCounter(prometheus.CounterOpts{Name: "sqlite_writes_total", Help: "Writes."})
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sqlite_writes_total_by_kind", Help: "A name that starts like it."}, []string{"kind"})
	reg.MustRegister(tx, writes, other)
	tx.Add(40)
	writes.Add(301)
	other.WithLabelValues("usage").Add(7)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	d := &driver{base: srv.URL}
	if got, want := d.writeGroups(), (groupMark{40, 301}); got != want {
		t.Fatalf("writeGroups = %+v, want %+v", got, want)
	}
	got, err := parseGroups(strings.NewReader("# TYPE go_goroutines gauge\ngo_goroutines 12\n"))
	if err != nil || got != (groupMark{}) {
		t.Fatalf("parseGroups without the counters = %+v, %v; want zero", got, err)
	}
	if _, err := parseGroups(strings.NewReader("sqlite_writes_total not-a-number\n")); err == nil {
		t.Fatal("parseGroups accepted a malformed exposition")
	}
}
