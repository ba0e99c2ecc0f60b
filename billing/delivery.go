package billing

import "time"

// Delivery of outbox notices (SPEC "Notices"): retried with exponential
// backoff and jitter for up to DeliveryWindow after the notice was
// created, then dead.
const (
	DeliveryWindow = 24 * time.Hour
	RetryBase      = 10 * time.Second // delay after the first failed attempt, before jitter
	RetryCap       = time.Hour        // longest delay between attempts, before jitter
)

// RetryDelay is the wait after the attempts-th failed attempt (1 for the
// first): RetryBase doubled per attempt up to RetryCap, then "equal
// jitter": half of it fixed, the other half scaled by jitter in [0, 1), so
// that receivers coming back up are not hit by every sender at once.
func RetryDelay(attempts int, jitter float64) time.Duration {
	d := RetryBase
	for i := 1; i < attempts && d < RetryCap; i++ {
		d *= 2
	}
	d = min(d, RetryCap)
	jitter = max(0, min(jitter, 1))
	return d/2 + time.Duration(float64(d/2)*jitter)
}

// NextAttempt decides what follows a failed attempt at now of a notice
// created at createdAt that has had attempts attempts: dead once the
// delivery window is over, otherwise the time of the next attempt, never
// later than the window's end (so the last try happens at the 24-hour
// mark rather than being skipped).
func NextAttempt(createdAt, now time.Time, attempts int, jitter float64) (next time.Time, dead bool) {
	deadline := createdAt.Add(DeliveryWindow)
	if !now.Before(deadline) {
		return time.Time{}, true
	}
	next = now.Add(RetryDelay(attempts, jitter))
	if next.After(deadline) {
		next = deadline
	}
	return next, false
}
