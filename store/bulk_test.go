package store

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

func TestSQLiteTimeMatchesDriverFormat(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC),
		time.Date(2015, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 3, 9, 7, 5, 3, 120000000, time.UTC),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(2_000_000_000)+1_400_000_000, r.Int64N(1e9)).UTC().Truncate(time.Microsecond))
	}
	for _, tm := range times {
		if got, want := sqliteTime(tm), tm.Format(sqlite3.SQLiteTimestampFormats[0]); got != want {
			t.Fatalf("sqliteTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

func TestChunkSizes(t *testing.T) {
	tests := []struct {
		n, max int
		want   []int
	}{
		{0, 1024, nil},
		{1, 1024, []int{1}},
		{1024, 1024, []int{1024}},
		{10000, 1024, []int{1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 512, 256, 16}},
		{7, 4, []int{4, 2, 1}},
	}
	for _, tc := range tests {
		got := chunkSizes(tc.n, tc.max)
		sum := 0
		for _, g := range got {
			sum += g
		}
		if len(got) != len(tc.want) || sum != tc.n {
			t.Errorf("chunkSizes(%d, %d) = %v, want %v", tc.n, tc.max, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("chunkSizes(%d, %d) = %v, want %v", tc.n, tc.max, got, tc.want)
				break
			}
		}
	}
}

func TestValuesList(t *testing.T) {
	tests := []struct {
		dialect string
		want    string
	}{
		{SQLite, "(?2,?3,?1),(?4,?5,?1)"},
		{Postgres, "($2,$3,$1),($4,$5,$1)"},
	}
	for _, tc := range tests {
		db := &DB{dialect: tc.dialect}
		if got := db.valuesList(2, 2, 1); got != tc.want {
			t.Errorf("%s valuesList(2, 2, 1) = %q, want %q", tc.dialect, got, tc.want)
		}
	}
}
