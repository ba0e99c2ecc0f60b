package billing

import (
	"fmt"
	"time"
)

// Point in time. A read can be asked about two axes:
//
//   - valid time, At: what the car had at that instant, computed from the
//     timeline as it stands now (or as it stood at KnownAt). Periods paid
//     after At do not count; a period refunded after At counts for the
//     part it actually ran; data usage is the cycle containing At,
//     counting the records that had ended before At.
//   - transaction time, KnownAt: the answer the service would have given
//     at KnownAt, from the timeline version current then and the usage
//     records received by then.
//
// A Point with only KnownAt set replays the plain read at KnownAt exactly
// (Evaluate at KnownAt, no valid-time filtering): the read the service
// served then. With At set as well, At is evaluated on what was known at
// KnownAt.

// EUsageHistoryPruned is the problem code (422) of a point-in-time read
// whose data block needs raw usage records that usage.retention has
// already pruned: the month's total is kept, but not when each byte
// arrived or ended.
const EUsageHistoryPruned = "usage_history_pruned"

// EHistoryUnavailable is the problem code (422) of a read as known at an
// instant before the vehicle's recorded history starts (a vehicle
// activated before timeline versions were kept).
const EHistoryUnavailable = "history_unavailable"

// Point is the instant a read is asked about.
type Point struct {
	At      time.Time // valid time; zero: KnownAt (replay the plain read)
	KnownAt time.Time // transaction time; the current time when not asked
}

// Replay reports whether the point replays the plain read at KnownAt (no
// valid time was asked).
func (p Point) Replay() bool { return p.At.IsZero() }

// Instant is the valid time the answer is for: At, or KnownAt when replaying.
func (p Point) Instant() time.Time {
	if p.Replay() {
		return p.KnownAt
	}
	return p.At
}

// AsOf returns the timeline as it stood in valid time at t: periods paid
// after t are dropped (they had not been bought); a period refunded after
// t counts as it ran: until it was cut, and not refunded, since at t it was
// not. A period refunded after t that never started (removed) gave nothing
// and stays refunded. The trial (no PaidAt) always stays.
func (tl Timeline) AsOf(t time.Time) Timeline {
	out := Timeline{Periods: make([]Period, 0, len(tl.Periods))}
	for _, p := range tl.Periods {
		if !p.PaidAt.IsZero() && p.PaidAt.After(t) {
			continue
		}
		if p.RefundedAt != nil && p.RefundedAt.After(t) {
			if end := p.ServedUntil(); end.After(p.StartsAt) {
				p.EndsAt, p.RefundedAt = end, nil
			}
		}
		out.Periods = append(out.Periods, p)
	}
	return out
}

// ActivatedBy reports whether v had been activated at t.
func (v Vehicle) ActivatedBy(t time.Time) bool { return !t.Before(v.ActivatedAt) }

// EvaluatePoint builds the entitlement of v at p from the timeline and
// usage as known at p.KnownAt (tl and u must be those). A replay is
// Evaluate at KnownAt. Otherwise the timeline is taken as it stood at
// p.At (Timeline.AsOf); a vehicle not yet activated at p.At is
// ENotActivated. u must already count only what p counts (UsageAt).
func EvaluatePoint(v Vehicle, tl Timeline, u Usage, c Catalog, p Point, loc *time.Location) (Entitlement, error) {
	if p.Replay() {
		return Evaluate(v, tl, u, c, p.KnownAt, loc), nil
	}
	if !v.ActivatedBy(p.At) {
		return Entitlement{}, Errorf(ENotActivated, "vehicle %s was activated at %s, after %s",
			v.VIN, Stamp(v.ActivatedAt, loc), Stamp(p.At, loc))
	}
	return Evaluate(v, tl.AsOf(p.At), u, c, p.At, loc), nil
}

// CycleTotals is a vehicle's aggregate usage in one cycle, as stored.
type CycleTotals struct {
	Key                string // "YYYY-MM"
	EntertainmentBytes int64
	BasicBytes         int64
	LastEndedAt        time.Time // latest ended_at among the cycle's records
	UpdatedAt          time.Time // when the last of its records was received
}

// ReceivedRecord is a stored usage record with its cycle and the instant
// it was received.
type ReceivedRecord struct {
	Cycle      string
	Category   Category
	Bytes      int64
	EndedAt    time.Time
	ReceivedAt time.Time
}

// Counts reports whether p counts the record: received by KnownAt and,
// unless replaying, ended before At.
func (p Point) Counts(r ReceivedRecord) bool {
	if r.ReceivedAt.After(p.KnownAt) {
		return false
	}
	return p.Replay() || r.EndedAt.Before(p.At)
}

// Exact reports whether the cycle's totals are what p counts, so that its
// raw records need not be read: every record of it was received by
// KnownAt and, unless replaying, had ended before At.
func (p Point) Exact(c CycleTotals) bool {
	if c.UpdatedAt.After(p.KnownAt) {
		return false
	}
	return p.Replay() || c.LastEndedAt.Before(p.At)
}

// MayHold reports whether the cycle of loc named key can hold a record p
// counts. A record counts in the cycle of its start; it was received no
// earlier than UsageSkew before its start (Validate), and unless
// replaying it started before At.
func (p Point) MayHold(key string, loc *time.Location) bool {
	c, err := ParseCycleKey(key, loc)
	if err != nil {
		return false
	}
	last := p.KnownAt.Add(UsageSkew)
	if !p.Replay() && p.At.Before(last) {
		last = p.At
	}
	return !c.Start.After(last)
}

// UsageAt computes the usage p sees in the cycle of p.Instant(): the bytes
// of the cycle's records p counts and, as AsOf, the latest ended_at among
// every record p counts. cycles are the vehicle's totals; records are the
// raw records of the cycles among them that are not Exact for p and
// MayHold a counted record (the caller reads those, and only those).
func UsageAt(p Point, cycles []CycleTotals, records []ReceivedRecord, loc *time.Location) Usage {
	key := CycleAt(p.Instant(), loc).Key()
	var u Usage
	raw := map[string]bool{}
	for _, c := range cycles {
		if !p.MayHold(c.Key, loc) {
			continue
		}
		if !p.Exact(c) {
			raw[c.Key] = true
			continue
		}
		if c.Key == key {
			u.EntertainmentBytes, u.BasicBytes = c.EntertainmentBytes, c.BasicBytes
		}
		if c.LastEndedAt.After(u.AsOf) {
			u.AsOf = c.LastEndedAt
		}
	}
	for _, r := range records {
		if !raw[r.Cycle] || !p.Counts(r) {
			continue
		}
		if r.Cycle == key {
			switch r.Category {
			case CategoryEntertainment:
				u.EntertainmentBytes += r.Bytes
			case CategoryBasic:
				u.BasicBytes += r.Bytes
			}
		}
		if r.EndedAt.After(u.AsOf) {
			u.AsOf = r.EndedAt
		}
	}
	return u
}

// RawCycles returns the keys of the cycles whose raw records UsageAt needs
// for p: those that may hold a counted record and whose totals are not
// exact for p.
func RawCycles(p Point, cycles []CycleTotals, loc *time.Location) []string {
	var keys []string
	for _, c := range cycles {
		if p.MayHold(c.Key, loc) && !p.Exact(c) {
			keys = append(keys, c.Key)
		}
	}
	return keys
}

// CheckRetained returns EUsageHistoryPruned when a cycle whose raw records
// are needed started before horizon (now minus usage.retention): records
// that started before it may have been pruned, and a total rebuilt from
// what is left would be wrong. A zero horizon means nothing is pruned.
func CheckRetained(keys []string, horizon time.Time, loc *time.Location) error {
	if horizon.IsZero() {
		return nil
	}
	for _, k := range keys {
		c, err := ParseCycleKey(k, loc)
		if err != nil {
			return fmt.Errorf("cycle key %q: %w", k, err)
		}
		if c.Start.Before(horizon) {
			return Errorf(EUsageHistoryPruned, "the raw usage records of %s that started before %s have been pruned (usage.retention); "+
				"the data block cannot be rebuilt for this point: ask for an instant after the month's last record, as known now", k, Stamp(horizon, loc))
		}
	}
	return nil
}

// TimelineVersion is one recorded change of a vehicle's timeline: what
// changed it (Cause, an audit action, with the order or refund it was
// about), when the service learned it, the owner and epoch it left, and
// the periods it added or changed, as they were after it (the whole
// timeline of a version is the read as known at RecordedAt). Versions are
// numbered from 1 per vehicle.
type TimelineVersion struct {
	Version    int
	RecordedAt time.Time
	Cause      string
	OrderID    string
	RefundID   string
	Actor      string
	OwnerID    string
	Epoch      int64
	Periods    []Period // the periods this version added or changed
}

// PointSnapshot is what a point-in-time read is computed from.
type PointSnapshot struct {
	Current Vehicle  // the vehicle as it is now: who may see it is decided on it
	Known   bool     // the vehicle was known (activated) at the point's KnownAt
	At      Snapshot // as known at KnownAt: the vehicle (its owner and epoch then), the timeline, and the usage the point counts
}
