package billing

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Data usage, in short: the carrier reports records (an id, a VIN, a
// category, bytes, a start and an end), late, out of order and sometimes
// twice. A record counts once, by id, in the local calendar month (Cycle)
// of its start; only entertainment traffic counts against the allowance,
// which is the DataBytesPerMonth of the period covering the cycle's
// AllowanceInstant (now, for the current month). Quota turns a month's
// usage into the data block; crossing a threshold percentage of the
// allowance raises one QuotaNotice per vehicle, month and threshold.

// Category is the kind of traffic a usage record counts.
type Category string

const (
	CategoryEntertainment Category = "entertainment" // counts against the allowance
	CategoryBasic         Category = "basic"         // recorded, never counts
)

// ETooManyRecords is the problem code of a usage batch of more than
// MaxUsageBatch records (413). It lives here rather than in errors.go
// because only usage ingestion raises it.
const ETooManyRecords = "too_many_records"

// Codes of a rejected usage record ("rejected[].code" of POST /v1/usage).
// They are public API; never rename one.
const (
	RejectMalformed      = "malformed_record" // not an object, wrong types, unknown fields
	RejectNullRecord     = "null_record"      // the record is JSON null
	RejectIDRequired     = "id_required"
	RejectIDTooLong      = "id_too_long"
	RejectIDInvalid      = "id_invalid" // a space or control character
	RejectInvalidVIN     = EInvalidVIN
	RejectUnknownVIN     = "unknown_vin" // no activated vehicle has this VIN
	RejectBadCategory    = "invalid_category"
	RejectBytesRequired  = "bytes_required"
	RejectNegativeBytes  = "negative_bytes"
	RejectBytesTooLarge  = "bytes_too_large"
	RejectTimeInvalid    = "invalid_time" // started_at or ended_at missing or not RFC 3339
	RejectEndBeforeStart = "end_before_start"
	RejectStartInFuture  = "start_in_future"
	RejectEndInFuture    = "end_in_future"
	RejectTooOld         = "too_old" // started before the retention window
)

// Limits of usage ingestion.
const (
	MaxUsageBatch       = 10_000  // records in one POST /v1/usage
	MaxUsageRecordID    = 128     // characters of a record id
	MaxUsageRecordBytes = 1 << 40 // bytes of one record: 1 TiB, far above any real session
)

// UsageSkew is how far ahead of the clock a record may be stamped (clock
// skew between the carrier and us), like ActivationSkew.
var UsageSkew = 5 * time.Minute

// UsageRecord is one line of the carrier's usage feed. It is identified by
// ID: a record seen again is a duplicate, whatever its content (the first
// write wins).
type UsageRecord struct {
	ID        string
	VIN       VIN
	Category  Category
	Bytes     int64
	StartedAt time.Time
	EndedAt   time.Time
}

// Rejection says why the record at Index of a batch was not kept.
type Rejection struct {
	Index  int
	Code   string
	Detail string
}

// Reject returns a rejection of record index.
func Reject(index int, code, format string, args ...any) Rejection {
	return Rejection{Index: index, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// IngestResult is the outcome of one usage batch.
type IngestResult struct {
	Accepted   int // records stored and counted now
	Duplicates int // records whose id had been seen before (in this batch or an earlier one)
	Rejected   []Rejection
}

// SortRejections orders rejections by record index.
func SortRejections(rs []Rejection) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Index < rs[j].Index })
}

// UsageTerms are the rules a batch is checked against.
type UsageTerms struct {
	Retention time.Duration // records that started longer ago are rejected (and pruned); 0 = no limit
}

// Validate checks the record's own fields at now: the id, the category,
// the byte count and the times. Whether the VIN belongs to an activated
// vehicle is for the store to say (RejectUnknownVIN). It returns the
// rejection code and detail, or "" when the record is valid.
func (r UsageRecord) Validate(t UsageTerms, now time.Time) (code, detail string) {
	switch UsageRecordIDField.Check(r.ID) {
	case TextRequired:
		return RejectIDRequired, "id is required"
	case TextTooLong:
		return RejectIDTooLong, fmt.Sprintf("id is longer than %d characters", MaxUsageRecordID)
	case TextInvalidCharacter:
		return RejectIDInvalid, "id must consist of visible characters without spaces"
	}
	switch {
	case r.Category != CategoryEntertainment && r.Category != CategoryBasic:
		return RejectBadCategory, fmt.Sprintf("category %q is not entertainment or basic", r.Category)
	case r.Bytes < 0:
		return RejectNegativeBytes, fmt.Sprintf("bytes is %d; it must not be negative", r.Bytes)
	case r.Bytes > MaxUsageRecordBytes:
		return RejectBytesTooLarge, fmt.Sprintf("bytes is %d; one record may count at most %d", r.Bytes, int64(MaxUsageRecordBytes))
	case r.EndedAt.Before(r.StartedAt):
		return RejectEndBeforeStart, "ended_at is before started_at"
	case r.StartedAt.After(now.Add(UsageSkew)):
		return RejectStartInFuture, "started_at is in the future"
	case r.EndedAt.After(now.Add(UsageSkew)):
		return RejectEndInFuture, "ended_at is in the future"
	case t.Retention > 0 && r.StartedAt.Before(now.Add(-t.Retention)):
		return RejectTooOld, fmt.Sprintf("started_at is older than the retention window (%s)", t.Retention)
	}
	return "", ""
}

// CycleKey returns the key ("YYYY-MM") of the local calendar month of loc
// in which the record counts: the month of its start.
func (r UsageRecord) CycleKey(loc *time.Location) string {
	return CycleAt(r.StartedAt, loc).Key()
}

// ParseCycleKey returns the cycle of loc named by a "YYYY-MM" key.
func ParseCycleKey(key string, loc *time.Location) (Cycle, error) {
	t, err := time.ParseInLocation("2006-01", key, loc)
	if err != nil {
		return Cycle{}, fmt.Errorf("cycle key %q: %w", key, err)
	}
	return CycleAt(t, loc), nil
}

// AllowanceInstant is the instant whose coverage sets a cycle's allowance:
// now for the current cycle (as the entitlement view does), the last
// instant of the cycle for a past one (late usage counts against the
// allowance the car had at the end of that month).
func (c Cycle) AllowanceInstant(now time.Time) time.Time {
	if last := c.End.Add(-time.Microsecond); now.After(last) {
		return last
	}
	return now
}

// Crossed returns the thresholds (percent of the allowance, ascending) that
// the status's usage reached when it grew from before bytes to UsedBytes.
// An unlimited or uncovered status crosses nothing.
func (d DataStatus) Crossed(before int64, thresholds []int) []int {
	if d.Unlimited || d.AllowanceBytes <= 0 || d.UsedBytes <= before {
		return nil
	}
	var out []int
	for _, pct := range thresholds {
		limit := percentOf(d.AllowanceBytes, pct)
		if before < limit && d.UsedBytes >= limit {
			out = append(out, pct)
		}
	}
	sort.Ints(out)
	return out
}

// MayCross reports whether entertainment usage of total bytes can have
// reached one of thresholds (percent, 1 to 100) of any allowance of at
// least floor bytes. When it cannot, no period whose allowance is floor or
// more needs to be looked at. With no allowance (floor 0) nothing is
// crossed: an unlimited or uncovered status crosses nothing.
func MayCross(total, floor int64, thresholds []int) bool {
	if floor <= 0 || len(thresholds) == 0 {
		return false
	}
	return total >= percentOf(floor, slices.Min(thresholds))
}

// percentOf is ceil(n × pct / 100) without overflow for pct ≤ 100: the
// smallest byte count that is at least pct percent of n.
func percentOf(n int64, pct int) int64 {
	p := int64(pct)
	return n/100*p + (n%100*p+99)/100
}

// QuotaNotice is the quota.threshold notice for vin's cycle at pct percent.
// Its dedupe key makes it once per vehicle, cycle and threshold.
func QuotaNotice(vin VIN, ownerID string, cycle Cycle, pct int, d DataStatus) Notice {
	return Notice{
		VIN:       vin,
		OwnerID:   ownerID,
		Kind:      NoticeQuotaThreshold,
		DedupeKey: string(NoticeQuotaThreshold) + ":" + string(vin) + ":" + cycle.Key() + ":" + strconv.Itoa(pct),
		Data: map[string]any{
			"cycle":           cycle.Key(),
			"threshold":       pct,
			"used_bytes":      d.UsedBytes,
			"allowance_bytes": d.AllowanceBytes,
		},
	}
}
