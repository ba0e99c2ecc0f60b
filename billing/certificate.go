package billing

import (
	"sort"
	"time"
)

// CertificateTerms configure offline coverage certificates (config
// certificate.*).
type CertificateTerms struct {
	// TTL is the longest a certificate is valid (certificate.ttl).
	TTL time.Duration
	// Grace is how long a certificate stays valid after the end of the
	// last coverage window it lists, or after it was issued when it lists
	// none (certificate.grace). Within it a car offline when its coverage
	// ends still holds a valid certificate, which answers not_covered for
	// premium features over cellular and allows basic features and the
	// hotspot, exactly as the online check does. Grace never allows a
	// premium feature: it bounds how long a certificate outlives the
	// coverage it proves. 0 < Grace <= TTL.
	Grace time.Duration
	// Skew is how far before IssuedAt the certificate is already valid
	// (nbf = iat - Skew), for a car whose clock runs slightly behind.
	Skew time.Duration
}

// Certificate is what an offline coverage certificate states about a
// vehicle: the coverage it has from IssuedAt on and the data status of the
// current cycle, enough for the car to decide any feature at any instant
// in [NotBefore, Expires) as the online check would (DecideAt).
type Certificate struct {
	VIN       VIN
	Epoch     int64
	IssuedAt  time.Time
	NotBefore time.Time
	Expires   time.Time
	Features  Features
	Windows   []CoverageWindow // from IssuedAt on, in order, none overlapping
	Data      CertificateData
}

// CoverageWindow is a stretch of continuous coverage with one data
// allowance, half-open: [From, To). Back-to-back periods with the same
// allowance are merged into one window; where the allowance changes a new
// window starts at the same instant.
type CoverageWindow struct {
	From, To          time.Time
	DataBytesPerMonth int64 // 0 = unlimited
}

// CertificateData is the data status of the cycle containing IssuedAt.
// Usage counted after issue is not known to the certificate: a car that
// reaches its allowance offline stays unthrottled by it until it is online
// again, and a new cycle starts unthrottled (as the online check does until
// the carrier reports usage in it).
type CertificateData struct {
	Cycle     Cycle
	UsedBytes int64
	AsOf      time.Time
}

// IssueCertificate builds the certificate of the snapshot's vehicle at now:
// the entitlement read's evaluation (Evaluate) extended to every coverage
// window from now on. It is pure.
//
// Expires is now+TTL, but never later than the end of the last window plus
// Grace (now+Grace when nothing covers now or later).
func IssueCertificate(s Snapshot, c Catalog, t CertificateTerms, now time.Time, loc *time.Location) Certificate {
	e := Evaluate(s.Vehicle, s.Timeline, s.Usage, c, now, loc)
	windows := CoverageWindows(s.Timeline, now)
	last := now
	if n := len(windows); n > 0 && windows[n-1].To.After(last) {
		last = windows[n-1].To
	}
	exp := now.Add(t.TTL)
	if end := last.Add(t.Grace); end.Before(exp) {
		exp = end
	}
	return Certificate{
		VIN:       s.Vehicle.VIN,
		Epoch:     s.Vehicle.Epoch,
		IssuedAt:  now,
		NotBefore: now.Add(-t.Skew),
		Expires:   exp,
		Features:  c.Features,
		Windows:   windows,
		Data:      CertificateData{Cycle: e.Data.Cycle, UsedBytes: e.Data.UsedBytes, AsOf: e.Data.AsOf},
	}
}

// CoverageWindows returns the timeline's coverage that has not ended by
// now, merged into windows (see CoverageWindow). Refunded periods give no
// coverage.
func CoverageWindows(tl Timeline, now time.Time) []CoverageWindow {
	var live []Period
	for _, p := range tl.Periods {
		if !p.Refunded() && p.EndsAt.After(now) && p.EndsAt.After(p.StartsAt) {
			live = append(live, p)
		}
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].StartsAt.Before(live[j].StartsAt) })
	var out []CoverageWindow
	for _, p := range live {
		if n := len(out); n > 0 {
			w := &out[n-1]
			if !p.StartsAt.After(w.To) && p.DataBytesPerMonth == w.DataBytesPerMonth {
				if p.EndsAt.After(w.To) {
					w.To = p.EndsAt
				}
				continue
			}
			if p.StartsAt.Before(w.To) { // overlapping, another allowance: the earlier period rules until it ends
				if !p.EndsAt.After(w.To) {
					continue
				}
				p.StartsAt = w.To
			}
		}
		out = append(out, CoverageWindow{From: p.StartsAt, To: p.EndsAt, DataBytesPerMonth: p.DataBytesPerMonth})
	}
	return out
}

// Window returns the window containing at, if any.
func (c Certificate) Window(at time.Time) (CoverageWindow, bool) {
	for _, w := range c.Windows {
		if !at.Before(w.From) && at.Before(w.To) {
			return w, true
		}
	}
	return CoverageWindow{}, false
}

// Situation is what the certificate says about the car at the instant at:
// covered if a window contains it; over its allowance if at lies in the
// certificate's cycle and the usage it states has reached the allowance of
// that window. It is meaningful only within [NotBefore, Expires).
func (c Certificate) Situation(at time.Time, conn Connection) Situation {
	s := Situation{Activated: true, Connection: conn}
	w, ok := c.Window(at)
	if !ok {
		return s
	}
	s.Covered = true
	inCycle := !at.Before(c.Data.Cycle.Start) && at.Before(c.Data.Cycle.End)
	s.QuotaExceeded = inCycle && w.DataBytesPerMonth > 0 && c.Data.UsedBytes >= w.DataBytesPerMonth
	return s
}

// DecideAt decides a feature at the instant at over conn from the
// certificate alone; an unknown feature is false.
func (c Certificate) DecideAt(code string, conn Connection, at time.Time) (Decision, bool) {
	tier, ok := c.Features.Tier(code)
	if !ok {
		return Decision{}, false
	}
	return Decide(code, tier, c.Situation(at, conn)), true
}
