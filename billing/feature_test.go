package billing

import (
	"errors"
	"slices"
	"testing"
)

// TestDecide covers every combination of tier, activation, coverage, quota
// and connection once, with the answer SPEC section 2 gives: basic features
// for any activated car; premium ones over a hotspot (never throttled: that
// traffic is not the car's) or when covered, throttled over the allowance.
func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		tier      Tier
		sit       Situation
		allowed   bool
		throttled bool
		reason    Reason
	}{
		{"basic activated covered within quota cellular", TierBasic, Situation{true, true, false, ConnCellular}, true, false, ReasonBasic},
		{"basic activated covered within quota hotspot", TierBasic, Situation{true, true, false, ConnHotspot}, true, false, ReasonBasic},
		{"basic activated covered over quota cellular", TierBasic, Situation{true, true, true, ConnCellular}, true, false, ReasonBasic},
		{"basic activated covered over quota hotspot", TierBasic, Situation{true, true, true, ConnHotspot}, true, false, ReasonBasic},
		{"basic activated not covered within quota cellular", TierBasic, Situation{true, false, false, ConnCellular}, true, false, ReasonBasic},
		{"basic activated not covered within quota hotspot", TierBasic, Situation{true, false, false, ConnHotspot}, true, false, ReasonBasic},
		{"basic activated not covered over quota cellular", TierBasic, Situation{true, false, true, ConnCellular}, true, false, ReasonBasic},
		{"basic activated not covered over quota hotspot", TierBasic, Situation{true, false, true, ConnHotspot}, true, false, ReasonBasic},
		{"basic not activated covered within quota cellular", TierBasic, Situation{false, true, false, ConnCellular}, false, false, ReasonNotActivated},
		{"basic not activated covered within quota hotspot", TierBasic, Situation{false, true, false, ConnHotspot}, false, false, ReasonNotActivated},
		{"basic not activated covered over quota cellular", TierBasic, Situation{false, true, true, ConnCellular}, false, false, ReasonNotActivated},
		{"basic not activated covered over quota hotspot", TierBasic, Situation{false, true, true, ConnHotspot}, false, false, ReasonNotActivated},
		{"basic not activated not covered within quota cellular", TierBasic, Situation{false, false, false, ConnCellular}, false, false, ReasonNotActivated},
		{"basic not activated not covered within quota hotspot", TierBasic, Situation{false, false, false, ConnHotspot}, false, false, ReasonNotActivated},
		{"basic not activated not covered over quota cellular", TierBasic, Situation{false, false, true, ConnCellular}, false, false, ReasonNotActivated},
		{"basic not activated not covered over quota hotspot", TierBasic, Situation{false, false, true, ConnHotspot}, false, false, ReasonNotActivated},
		{"premium activated covered within quota cellular", TierPremium, Situation{true, true, false, ConnCellular}, true, false, ReasonCovered},
		{"premium activated covered within quota hotspot", TierPremium, Situation{true, true, false, ConnHotspot}, true, false, ReasonExternal},
		{"premium activated covered over quota cellular", TierPremium, Situation{true, true, true, ConnCellular}, true, true, ReasonQuotaExhausted},
		{"premium activated covered over quota hotspot", TierPremium, Situation{true, true, true, ConnHotspot}, true, false, ReasonExternal},
		{"premium activated not covered within quota cellular", TierPremium, Situation{true, false, false, ConnCellular}, false, false, ReasonNotCovered},
		{"premium activated not covered within quota hotspot", TierPremium, Situation{true, false, false, ConnHotspot}, true, false, ReasonExternal},
		{"premium activated not covered over quota cellular", TierPremium, Situation{true, false, true, ConnCellular}, false, false, ReasonNotCovered},
		{"premium activated not covered over quota hotspot", TierPremium, Situation{true, false, true, ConnHotspot}, true, false, ReasonExternal},
		{"premium not activated covered within quota cellular", TierPremium, Situation{false, true, false, ConnCellular}, false, false, ReasonNotActivated},
		{"premium not activated covered within quota hotspot", TierPremium, Situation{false, true, false, ConnHotspot}, false, false, ReasonNotActivated},
		{"premium not activated covered over quota cellular", TierPremium, Situation{false, true, true, ConnCellular}, false, false, ReasonNotActivated},
		{"premium not activated covered over quota hotspot", TierPremium, Situation{false, true, true, ConnHotspot}, false, false, ReasonNotActivated},
		{"premium not activated not covered within quota cellular", TierPremium, Situation{false, false, false, ConnCellular}, false, false, ReasonNotActivated},
		{"premium not activated not covered within quota hotspot", TierPremium, Situation{false, false, false, ConnHotspot}, false, false, ReasonNotActivated},
		{"premium not activated not covered over quota cellular", TierPremium, Situation{false, false, true, ConnCellular}, false, false, ReasonNotActivated},
		{"premium not activated not covered over quota hotspot", TierPremium, Situation{false, false, true, ConnHotspot}, false, false, ReasonNotActivated},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := "music_streaming"
			if tt.tier == TierBasic {
				code = "navigation"
			}
			d := Decide(code, tt.tier, tt.sit)
			if d.Allowed != tt.allowed || d.Throttled != tt.throttled || d.Reason != tt.reason {
				t.Errorf("Decide(%s, %+v) = allowed %v throttled %v reason %q, want allowed %v throttled %v reason %q",
					tt.tier, tt.sit, d.Allowed, d.Throttled, d.Reason, tt.allowed, tt.throttled, tt.reason)
			}
			if d.Feature != code || d.Tier != tt.tier {
				t.Errorf("Decide(%s, %s) = feature %q tier %q, want them echoed", code, tt.tier, d.Feature, d.Tier)
			}
			if d.Throttled && !d.Allowed {
				t.Errorf("Decide(%s, %+v) is throttled but not allowed", tt.tier, tt.sit)
			}
		})
		key := string(tt.tier) + string(tt.sit.Connection)
		for _, b := range []bool{tt.sit.Activated, tt.sit.Covered, tt.sit.QuotaExceeded} {
			key += map[bool]string{true: "1", false: "0"}[b]
		}
		if seen[key] {
			t.Errorf("case %q repeats a combination", tt.name)
		}
		seen[key] = true
	}
	if len(seen) != 32 {
		t.Errorf("table covers %d combinations, want all 32", len(seen))
	}
}

func TestDecideAll(t *testing.T) {
	f := Features{Basic: []string{"navigation", "remote_control"}, Premium: []string{"music_streaming", "gaming"}}
	got := f.DecideAll(Situation{Activated: true, Covered: false, Connection: ConnCellular})
	want := []Decision{
		{Feature: "navigation", Tier: TierBasic, Allowed: true, Reason: ReasonBasic},
		{Feature: "remote_control", Tier: TierBasic, Allowed: true, Reason: ReasonBasic},
		{Feature: "music_streaming", Tier: TierPremium, Reason: ReasonNotCovered},
		{Feature: "gaming", Tier: TierPremium, Reason: ReasonNotCovered},
	}
	if !slices.Equal(got, want) {
		t.Errorf("DecideAll() = %+v, want %+v", got, want)
	}
	if got := (Features{}).DecideAll(Situation{Activated: true}); len(got) != 0 {
		t.Errorf("DecideAll() of no features = %+v, want none", got)
	}
}

func TestParseConnection(t *testing.T) {
	tests := []struct {
		in      string
		want    Connection
		wantErr bool
	}{
		{"", ConnCellular, false},
		{"cellular", ConnCellular, false},
		{"hotspot", ConnHotspot, false},
		{"HOTSPOT", "", true},
		{" hotspot", "", true},
		{"wifi", "", true},
		{"external", "", true},
	}
	for _, tt := range tests {
		t.Run("connection="+tt.in, func(t *testing.T) {
			got, err := ParseConnection(tt.in)
			if got != tt.want {
				t.Errorf("ParseConnection(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !tt.wantErr {
				if err != nil {
					t.Errorf("ParseConnection(%q) error = %v, want nil", tt.in, err)
				}
				return
			}
			if !IsCode(err, EInvalid) {
				t.Fatalf("ParseConnection(%q) error = %v, want code %q", tt.in, err, EInvalid)
			}
			var e *Error
			if !errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0] != (FieldError{"connection", "invalid"}) {
				t.Errorf("ParseConnection(%q) fields = %+v, want [{connection invalid}]", tt.in, e)
			}
		})
	}
}

func TestFeaturesTier(t *testing.T) {
	f := Features{
		Basic:   []string{"navigation", "remote_control", "ota_updates", "driver_assistance", "app_updates", "voice_assistant"},
		Premium: []string{"music_streaming", "video_streaming", "karaoke", "gaming", "sentry_remote_view", "offline_map_download"},
	}
	tests := []struct {
		code string
		want Tier
		ok   bool
	}{
		{"navigation", TierBasic, true},
		{"voice_assistant", TierBasic, true},
		{"music_streaming", TierPremium, true},
		{"offline_map_download", TierPremium, true},
		{"Navigation", "", false},
		{"teleport", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run("code="+tt.code, func(t *testing.T) {
			got, ok := f.Tier(tt.code)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Tier(%q) = %q, %v, want %q, %v", tt.code, got, ok, tt.want, tt.ok)
			}
		})
	}
}
