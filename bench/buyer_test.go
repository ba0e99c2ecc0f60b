package main

import "testing"

// A run's orders go to distinct cars spread over the fleet, inside it,
// wherever the run starts.
func TestBuyersSpreadOverTheFleet(t *testing.T) {
	for _, n := range []int{1000, 20_000, 100_000} {
		for _, start := range []int{0, 7, n - 1} {
			seen := make(map[int]bool, n)
			for i := range n {
				b := buyer(start, i, n)
				if b < 0 || b >= n {
					t.Fatalf("n %d start %d: order %d goes to car %d, outside the fleet", n, start, i, b)
				}
				if seen[b] {
					t.Fatalf("n %d start %d: order %d goes to car %d again", n, start, i, b)
				}
				seen[b] = true
			}
			if n >= 20_000 && buyer(start, 1, n)-buyer(start, 0, n) == 1 {
				t.Errorf("n %d: consecutive orders go to neighbouring cars", n)
			}
		}
	}
}
