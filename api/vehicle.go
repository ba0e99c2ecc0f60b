package api

import (
	"errors"
	"net/http"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

type activationRequest struct {
	ActivatedAt *string `json:"activated_at"`
	OwnerID     *string `json:"owner_id"`
	Model       *string `json:"model"`
}

type ownerRequest struct {
	OwnerID *string `json:"owner_id"`
}

// parseTime parses an RFC 3339 instant from a request field.
func parseTime(field string, v *string) (time.Time, *billing.FieldError) {
	if v == nil || *v == "" {
		return time.Time{}, &billing.FieldError{Field: field, Code: "required"}
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		return time.Time{}, &billing.FieldError{Field: field, Code: "invalid_time"}
	}
	return t, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// activate handles POST /v1/vehicles/{vin}/activation: 201 the first time,
// 200 when repeated with the same activated_at, 409 with another.
func (s *Server) activate(c *gin.Context) {
	vin, err := billing.ParseVIN(c.Param("vin"))
	if err != nil {
		s.fail(c, err)
		return
	}
	var req activationRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	at, ferr := parseTime("activated_at", req.ActivatedAt)
	a := billing.Activation{ActivatedAt: at, OwnerID: deref(req.OwnerID), Model: deref(req.Model)}
	if err := a.Validate(now); err != nil || ferr != nil {
		s.fail(c, mergeInvalid("activation is not valid", ferr, err))
		return
	}
	v, created, err := s.store.Activate(c.Request.Context(), vin, a, s.catalog.Trial, s.loc, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.respondEntitlement(c, status, v, now)
}

// mergeInvalid combines a parse problem with validation problems so that a
// caller learns every bad field at once.
func mergeInvalid(msg string, parse *billing.FieldError, err error) error {
	out := billing.Invalid(msg)
	if parse != nil {
		out.Fields = append(out.Fields, *parse)
	}
	var be *billing.Error
	if errors.As(err, &be) {
		for _, f := range be.Fields {
			if parse != nil && f.Field == parse.Field {
				continue
			}
			out.Fields = append(out.Fields, f)
		}
	} else if err != nil {
		return err
	}
	return out
}

// transferOwner handles PUT /v1/vehicles/{vin}/owner.
func (s *Server) transferOwner(c *gin.Context) {
	vin, err := billing.ParseVIN(c.Param("vin"))
	if err != nil {
		s.fail(c, err)
		return
	}
	var req ownerRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := billing.ValidateOwnerID(deref(req.OwnerID)); err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	v, err := s.store.TransferOwner(c.Request.Context(), vin, *req.OwnerID, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.respondEntitlement(c, http.StatusOK, v, now)
}

// entitlement handles GET /v1/vehicles/{vin}/entitlement.
func (s *Server) entitlement(c *gin.Context) {
	now := s.now()
	if p, asked, err := s.point(c, now); asked || err != nil {
		if err != nil {
			s.fail(c, err)
			return
		}
		s.entitlementAt(c, p, now)
		return
	}
	_, e, err := s.entitled(c, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeEntitlement(c, http.StatusOK, s.entitlementView(e))
}

func (s *Server) respondEntitlement(c *gin.Context, status int, v billing.Vehicle, now time.Time) {
	e, err := s.evaluate(c, v.VIN, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeEntitlement(c, status, s.entitlementView(e))
}

// evaluate reads what the entitlement of vin depends on, in one
// statement, and applies the rules at now.
func (s *Server) evaluate(c *gin.Context, vin billing.VIN, now time.Time) (billing.Entitlement, error) {
	snap, err := s.store.Snapshot(c.Request.Context(), vin, billing.CycleAt(now, s.loc))
	if err != nil {
		return billing.Entitlement{}, err
	}
	return billing.Evaluate(snap.Vehicle, snap.Timeline, snap.Usage, s.catalog, now, s.loc), nil
}

// entitled evaluates the entitlement of the path's VIN at now for a caller
// who may see it (see readVehicle).
func (s *Server) entitled(c *gin.Context, now time.Time) (billing.VIN, billing.Entitlement, error) {
	return readVehicle(c, func(vin billing.VIN) (billing.Entitlement, string, error) {
		e, err := s.evaluate(c, vin, now)
		return e, e.Vehicle.OwnerID, err
	})
}

// features handles GET /v1/vehicles/{vin}/features.
func (s *Server) features(c *gin.Context) {
	now := s.now()
	if p, asked, err := s.point(c, now); asked || err != nil {
		if err != nil {
			s.fail(c, err)
			return
		}
		s.featuresAt(c, p, now)
		return
	}
	vin, e, err := s.entitled(c, now)
	if s.notActivated(c, err) {
		ds := s.catalog.Features.DecideAll(billing.Situation{})
		c.JSON(http.StatusOK, featureListViewOf(vin, ds, nil, s.loc))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, featureListViewOf(vin, e.Features, &e, s.loc))
}

// feature handles GET /v1/vehicles/{vin}/features/{feature}.
func (s *Server) feature(c *gin.Context) {
	code := c.Param("feature")
	tier, ok := s.catalog.Features.Tier(code)
	if !ok {
		s.fail(c, billing.Errorf(billing.EUnknownFeature, "feature %q is not known", code))
		return
	}
	if err := checkQuery(c); err != nil {
		s.fail(c, err)
		return
	}
	conn, err := billing.ParseConnection(c.Query("connection"))
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	if p, asked, err := s.point(c, now); asked || err != nil {
		if err != nil {
			s.fail(c, err)
			return
		}
		s.featureAt(c, code, tier, conn, p, now)
		return
	}
	_, e, err := s.entitled(c, now)
	if s.notActivated(c, err) {
		c.JSON(http.StatusOK, featureView(billing.Decide(code, tier, billing.Situation{}), nil, s.loc))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, featureView(e.Feature(code, tier, conn), &e, s.loc))
}

// notActivated reports whether err says the vehicle is not activated and
// the caller may learn so (billing.Viewer.MayLearnNotActivated): the car
// itself and staff get a not_activated decision; anyone else got
// billing.VehicleNotFound from readVehicle.
func (s *Server) notActivated(c *gin.Context, err error) bool {
	if !billing.IsCode(err, billing.EVehicleNotFound) {
		return false
	}
	vin, perr := billing.ParseVIN(c.Param("vin"))
	return perr == nil && viewer(c).MayLearnNotActivated(vin)
}
