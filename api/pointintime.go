package api

import (
	"net/http"
	"regexp"
	"strings"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// Point-in-time reads: ?at= (valid time) and ?as_known_at= (transaction
// time) on /entitlement, /features and /features/{feature}
// (billing/pointintime.go has the rules, docs/api.md the guide). They go
// through readVehicle like the plain reads, so roles and 404s are the
// same, decided on the vehicle as it is now; they bypass the snapshot
// cache.

// pointView says which point an answer is for; plain reads omit it.
type pointView struct {
	At        string `json:"at"`          // the valid time answered for
	AsKnownAt string `json:"as_known_at"` // the transaction time answered for
	Future    bool   `json:"future"`      // at is after now: coverage as scheduled now; usage as recorded so far
}

var localDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// parsePointInstant reads an instant of the query: RFC 3339 with an offset, or
// a local date (YYYY-MM-DD), meaning that date's local midnight in loc.
// A '+' of an offset that arrived unencoded (decoded as a space) is
// taken back as '+'.
func parsePointInstant(field, raw string, loc *time.Location) (time.Time, *billing.FieldError) {
	if localDate.MatchString(raw) {
		t, err := time.ParseInLocation("2006-01-02", raw, loc)
		if err != nil {
			return time.Time{}, &billing.FieldError{Field: field, Code: "invalid_time"}
		}
		return t, nil
	}
	raw = strings.Replace(raw, " ", "+", 1)
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err == nil {
		return t, nil
	}
	if _, lerr := time.Parse("2006-01-02T15:04:05.999999999", raw); lerr == nil {
		return time.Time{}, &billing.FieldError{Field: field, Code: "offset_required"}
	}
	return time.Time{}, &billing.FieldError{Field: field, Code: "invalid_time"}
}

// point reads ?at= and ?as_known_at=; asked is false when neither is
// present (a plain read). as_known_at defaults to now and may not be after
// it; at may be in the future.
func (s *Server) point(c *gin.Context, now time.Time) (p billing.Point, asked bool, err error) {
	if raw := c.Request.URL.RawQuery; !strings.Contains(raw, "at") && !strings.Contains(raw, "%") {
		return p, false, nil // the plain read's path (no query, or ?connection=): nothing more to parse
	}
	if err := checkQuery(c); err != nil {
		return p, true, err
	}
	rawAt, hasAt := c.GetQuery("at")
	rawKnown, hasKnown := c.GetQuery("as_known_at")
	if !hasAt && !hasKnown {
		return p, false, nil
	}
	var fields []billing.FieldError
	p.KnownAt = now
	if hasKnown {
		k, ferr := parsePointInstant("as_known_at", rawKnown, s.loc)
		switch {
		case ferr != nil:
			fields = append(fields, *ferr)
		case k.After(now):
			fields = append(fields, billing.FieldError{Field: "as_known_at", Code: "in_the_future"})
		default:
			p.KnownAt = k
		}
	}
	if hasAt {
		t, ferr := parsePointInstant("at", rawAt, s.loc)
		if ferr != nil {
			fields = append(fields, *ferr)
		}
		p.At = t
		if ferr == nil && t.IsZero() {
			fields = append(fields, billing.FieldError{Field: "at", Code: "invalid_time"})
		}
	}
	if len(fields) > 0 {
		return p, true, billing.Invalid("at and as_known_at take an RFC 3339 instant with an offset, or a local date (YYYY-MM-DD)", fields...)
	}
	return p, true, nil
}

// pointResult is a point-in-time evaluation. known is false when the
// vehicle had not been activated at the point; why says how /entitlement
// answers then: 404 vehicle_not_found when the service did not know the
// car at as_known_at (as it answered then), 409 not_activated when at is
// before the activation of a car it knew. The feature reads answer
// not_activated decisions in both cases.
type pointResult struct {
	e     billing.Entitlement
	known bool
	why   error
	view  pointView
}

func (s *Server) pointViewOf(p billing.Point, now time.Time) pointView {
	return pointView{At: stamp(p.Instant(), s.loc), AsKnownAt: stamp(p.KnownAt, s.loc), Future: p.Instant().After(now)}
}

// evaluatePoint evaluates the path's VIN at p for a caller who may see it
// now (readVehicle).
func (s *Server) evaluatePoint(c *gin.Context, p billing.Point, now time.Time) (billing.VIN, pointResult, error) {
	return readVehicle(c, func(vin billing.VIN) (pointResult, string, error) {
		var horizon time.Time
		if s.usageRetention > 0 {
			horizon = now.Add(-s.usageRetention)
		}
		snap, err := s.store.SnapshotAt(c.Request.Context(), vin, p, horizon, s.loc)
		if err != nil {
			return pointResult{}, snap.Current.OwnerID, err
		}
		r := pointResult{known: snap.Known, view: s.pointViewOf(p, now)}
		if !snap.Known {
			r.why = billing.Errorf(billing.EVehicleNotFound, "vehicle %s was not activated as known at %s",
				vin, stamp(p.KnownAt, s.loc))
			return r, snap.Current.OwnerID, nil
		}
		r.e, err = billing.EvaluatePoint(snap.At.Vehicle, snap.At.Timeline, snap.At.Usage, s.catalog, p, s.loc)
		if billing.IsCode(err, billing.ENotActivated) {
			r.known, r.why, err = false, err, nil
		}
		return r, snap.Current.OwnerID, err
	})
}

// entitlementAt answers GET .../entitlement?at=&as_known_at=.
func (s *Server) entitlementAt(c *gin.Context, p billing.Point, now time.Time) {
	_, r, err := s.evaluatePoint(c, p, now)
	if err == nil && !r.known {
		err = r.why
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	v := s.entitlementView(r.e)
	v.Point = &r.view
	writeEntitlement(c, http.StatusOK, v)
}

// featuresAt answers GET .../features?at=&as_known_at=.
func (s *Server) featuresAt(c *gin.Context, p billing.Point, now time.Time) {
	vin, r, err := s.evaluatePoint(c, p, now)
	if s.notActivated(c, err) {
		err, r.known = nil, false
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	var v featureListView
	if r.known {
		v = featureListViewOf(vin, r.e.Features, &r.e, s.loc)
	} else {
		v = featureListViewOf(vin, s.catalog.Features.DecideAll(billing.Situation{}), nil, s.loc)
	}
	pv := s.pointViewOf(p, now)
	v.Point = &pv
	c.JSON(http.StatusOK, v)
}

// featureAt answers GET .../features/{feature}?at=&as_known_at=.
func (s *Server) featureAt(c *gin.Context, code string, tier billing.Tier, conn billing.Connection, p billing.Point, now time.Time) {
	_, r, err := s.evaluatePoint(c, p, now)
	if s.notActivated(c, err) {
		err, r.known = nil, false
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	var v featureDecisionView
	if r.known {
		v = featureView(r.e.Feature(code, tier, conn), &r.e, s.loc)
	} else {
		v = featureView(billing.Decide(code, tier, billing.Situation{}), nil, s.loc)
	}
	pv := s.pointViewOf(p, now)
	v.Point = &pv
	c.JSON(http.StatusOK, v)
}

// timelineView is one version of GET .../timeline/history.
type timelineVersionView struct {
	Version    int          `json:"version"`
	RecordedAt string       `json:"recorded_at"`
	Cause      string       `json:"cause"`
	OrderID    *string      `json:"order_id"`
	RefundID   *string      `json:"refund_id"`
	Actor      string       `json:"actor"`
	OwnerID    string       `json:"owner_id"`
	Epoch      int64        `json:"epoch"`
	Periods    []periodView `json:"periods"`
}

type timelineHistoryView struct {
	VIN      string                `json:"vin"`
	Versions []timelineVersionView `json:"versions"`
}

// timelineHistory handles GET /v1/vehicles/{vin}/timeline/history
// (billing, ops): every version of the vehicle's timeline, newest first.
// A period's status is as of the version's recording.
func (s *Server) timelineHistory(c *gin.Context) {
	vin, vs, err := readVehicle(c, func(vin billing.VIN) ([]billing.TimelineVersion, string, error) {
		vs, err := s.store.TimelineHistory(c.Request.Context(), vin)
		owner := ""
		if len(vs) > 0 {
			owner = vs[0].OwnerID
		}
		return vs, owner, err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	out := timelineHistoryView{VIN: string(vin), Versions: make([]timelineVersionView, len(vs))}
	for i, v := range vs {
		out.Versions[i] = timelineVersionView{
			Version: v.Version, RecordedAt: stamp(v.RecordedAt, s.loc), Cause: v.Cause,
			OrderID: strPtr(v.OrderID), RefundID: strPtr(v.RefundID), Actor: v.Actor,
			OwnerID: v.OwnerID, Epoch: v.Epoch,
			Periods: periodViews(billing.Timeline{Periods: v.Periods}, v.RecordedAt, s.loc),
		}
	}
	c.JSON(http.StatusOK, out)
}
