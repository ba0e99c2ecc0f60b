package billing

// Tier says whether a feature needs coverage.
type Tier string

const (
	TierBasic   Tier = "basic"
	TierPremium Tier = "premium"
)

// Reason explains a feature decision. The values are public API.
type Reason string

const (
	ReasonBasic          Reason = "basic_feature"
	ReasonCovered        Reason = "covered"
	ReasonExternal       Reason = "external_network"
	ReasonNotCovered     Reason = "not_covered"
	ReasonNotActivated   Reason = "not_activated"
	ReasonQuotaExhausted Reason = "quota_exhausted"
)

// Connection is how the head unit is online right now.
type Connection string

const (
	ConnCellular Connection = "cellular"
	ConnHotspot  Connection = "hotspot"
)

// ParseConnection accepts "", "cellular" and "hotspot" ("" is cellular).
func ParseConnection(s string) (Connection, error) {
	switch Connection(s) {
	case "", ConnCellular:
		return ConnCellular, nil
	case ConnHotspot:
		return ConnHotspot, nil
	}
	return "", Invalid("connection must be cellular or hotspot", FieldError{"connection", "invalid"})
}

// Features lists the configured feature codes by tier, in display order.
type Features struct {
	Basic   []string
	Premium []string
}

// Tier returns the tier of a feature code, or false if it is unknown.
func (f Features) Tier(code string) (Tier, bool) {
	for _, c := range f.Basic {
		if c == code {
			return TierBasic, true
		}
	}
	for _, c := range f.Premium {
		if c == code {
			return TierPremium, true
		}
	}
	return "", false
}

// Decision is the answer to "may this car use this feature now?".
type Decision struct {
	Feature   string
	Tier      Tier
	Allowed   bool
	Throttled bool
	Reason    Reason
}

// Situation is what a decision depends on.
type Situation struct {
	Activated     bool
	Covered       bool
	QuotaExceeded bool // the current cycle's entertainment allowance is used up
	Connection    Connection
}

// Decide applies the feature rules of SPEC section 2. Basic features are
// always allowed for an activated vehicle. Premium features are allowed on
// an external hotspot, or when covered; over the allowance they stay
// allowed but throttled. Traffic over a hotspot does not use the car's
// allowance, so it is never throttled.
func Decide(code string, tier Tier, s Situation) Decision {
	d := Decision{Feature: code, Tier: tier}
	switch {
	case !s.Activated:
		d.Reason = ReasonNotActivated
	case tier == TierBasic:
		d.Allowed, d.Reason = true, ReasonBasic
	case s.Connection == ConnHotspot:
		d.Allowed, d.Reason = true, ReasonExternal
	case !s.Covered:
		d.Reason = ReasonNotCovered
	case s.QuotaExceeded:
		d.Allowed, d.Throttled, d.Reason = true, true, ReasonQuotaExhausted
	default:
		d.Allowed, d.Reason = true, ReasonCovered
	}
	return d
}

// DecideAll decides every configured feature, basic first.
func (f Features) DecideAll(s Situation) []Decision {
	out := make([]Decision, 0, len(f.Basic)+len(f.Premium))
	for _, c := range f.Basic {
		out = append(out, Decide(c, TierBasic, s))
	}
	for _, c := range f.Premium {
		out = append(out, Decide(c, TierPremium, s))
	}
	return out
}
