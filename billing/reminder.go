package billing

import (
	"fmt"
	"slices"
	"time"
)

// Day is the unit of reminder stages: a stage of 7 days is due when at
// most 7×24 hours of coverage are left.
const Day = 24 * time.Hour

// ReminderWindow is the range of remaining coverage in which Stage is the
// nearest due reminder stage: (After, Until].
type ReminderWindow struct {
	Stage int           // days before covered_until
	After time.Duration // exclusive lower bound of remaining coverage
	Until time.Duration // inclusive upper bound of remaining coverage
}

// ReminderWindows turns reminder stages (days, e.g. 30, 7, 1) into
// disjoint windows of remaining coverage, nearest first. When several
// stages are due at once only the nearest is sent (SPEC "Notices"), so a
// vehicle with 5 days left falls in the window of stage 7 alone: (1d, 7d].
// Duplicate and non-positive stages are ignored.
func ReminderWindows(stages []int) []ReminderWindow {
	s := slices.Clone(stages)
	slices.Sort(s)
	s = slices.Compact(s)
	var out []ReminderWindow
	prev := 0
	for _, d := range s {
		if d <= 0 {
			continue
		}
		out = append(out, ReminderWindow{Stage: d, After: time.Duration(prev) * Day, Until: time.Duration(d) * Day})
		prev = d
	}
	return out
}

// ReminderStage returns the nearest reminder stage due at now for coverage
// ending at coveredUntil, and false when none is (more time left than the
// largest stage, or coverage already over).
func ReminderStage(stages []int, coveredUntil, now time.Time) (int, bool) {
	left := coveredUntil.Sub(now)
	for _, w := range ReminderWindows(stages) {
		if left > w.After && left <= w.Until {
			return w.Stage, true
		}
	}
	return 0, false
}

// ExpiringNotice is the coverage.expiring notice of stage days for a
// vehicle covered until coveredUntil. Its dedupe key holds the VIN, the
// stage and coveredUntil, so it is created once per stage, and a purchase
// that moves coveredUntil re-arms every stage.
func ExpiringNotice(vin VIN, ownerID string, stage int, coveredUntil time.Time, loc *time.Location) Notice {
	cu := coveredUntil.UTC()
	return Notice{
		VIN:          vin,
		OwnerID:      ownerID,
		Kind:         NoticeExpiring,
		DedupeKey:    fmt.Sprintf("%s:%s:%d:%s", NoticeExpiring, vin, stage, cu.Format(time.RFC3339Nano)),
		Stage:        stage,
		CoveredUntil: &cu,
		Data: map[string]any{
			"stage":         stage,
			"covered_until": Stamp(coveredUntil, loc),
		},
	}
}

// ExpiredNotice is the coverage.expired notice for a vehicle whose
// coverage ended at coveredUntil; created once per end of coverage.
func ExpiredNotice(vin VIN, ownerID string, coveredUntil time.Time, loc *time.Location) Notice {
	cu := coveredUntil.UTC()
	return Notice{
		VIN:          vin,
		OwnerID:      ownerID,
		Kind:         NoticeExpired,
		DedupeKey:    fmt.Sprintf("%s:%s:%s", NoticeExpired, vin, cu.Format(time.RFC3339Nano)),
		CoveredUntil: &cu,
		Data: map[string]any{
			"covered_until": Stamp(coveredUntil, loc),
		},
	}
}
