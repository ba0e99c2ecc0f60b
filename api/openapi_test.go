package api_test

import (
	"os"
	"strings"
	"testing"

	"entitlements/api"
	"entitlements/billing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIIsReadyForGenerators checks what client generators and
// linters rely on beyond validity: a unique operationId on every
// operation, a description for every tag, a license, and a documented
// client-error response on every operation.
func TestOpenAPIIsReadyForGenerators(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(openapi3.NewLoader().Context); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	if doc.Info.License == nil || doc.Info.License.Name == "" {
		t.Error("info.license is missing")
	}
	for _, tag := range doc.Tags {
		if tag.Description == "" {
			t.Errorf("tag %s has no description", tag.Name)
		}
	}
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := seen[op.OperationID]; dup {
				t.Errorf("operationId %s is used by %s and %s", op.OperationID, other, where)
			}
			seen[op.OperationID] = where
			has4xx := false
			for code := range op.Responses.Map() {
				has4xx = has4xx || strings.HasPrefix(code, "4")
			}
			if !has4xx {
				t.Errorf("%s documents no 4xx response", where)
			}
		}
	}
}

// TestOpenAPITextLimits: every request text field's schema states the
// limits the service enforces (billing's TextField): maxLength, minLength
// 1 exactly when the field is required, and the pattern of its kind.
func TestOpenAPITextLimits(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[billing.TextKind]string{
		billing.Identifier:     `^[\p{L}\p{M}\p{N}\p{P}\p{S}]+$`,
		billing.Line:           `^[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]*$`,
		billing.Lines:          `^[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}\n\r]*$`,
		billing.PrintableASCII: `^[ -~]+$`,
	}
	check := func(where string, s *openapi3.Schema, f billing.TextField) {
		t.Helper()
		if s == nil {
			t.Errorf("%s: no schema", where)
			return
		}
		if s.MaxLength == nil {
			t.Errorf("%s: no maxLength, want %d", where, f.Max)
		} else if int(*s.MaxLength) != f.Max {
			t.Errorf("%s: maxLength %d, want %d", where, *s.MaxLength, f.Max)
		}
		if min := f.Required; (s.MinLength == 1) != min {
			t.Errorf("%s: minLength %d, want 1 only when required (%v)", where, s.MinLength, min)
		}
		want := patterns[f.Kind]
		if f.Required {
			want = strings.Replace(want, "]*$", "]+$", 1)
		}
		if s.Pattern != want {
			t.Errorf("%s: pattern %q, want %q", where, s.Pattern, want)
		}
	}
	fields := []struct {
		schema, property string
		field            billing.TextField
	}{
		{"ActivationRequest", "owner_id", billing.OwnerIDField},
		{"ActivationRequest", "model", billing.ModelField},
		{"OwnerRequest", "owner_id", billing.OwnerIDField},
		{"OrderRequest", "product", billing.ProductField},
		{"PaymentNotification", "event_id", billing.EventIDField},
		{"PaymentNotification", "order_id", billing.OrderIDField},
		{"PaymentNotification", "currency", billing.CurrencyField},
		{"PaymentNotification", "transaction_id", billing.TransactionIDField},
		{"RefundRequest", "note", billing.NoteField},
		{"UsageRecord", "id", billing.UsageRecordIDField},
	}
	for _, c := range fields {
		ref := doc.Components.Schemas[c.schema]
		if ref == nil || ref.Value.Properties[c.property] == nil {
			t.Errorf("%s.%s is not in openapi.yaml", c.schema, c.property)
			continue
		}
		check(c.schema+"."+c.property, ref.Value.Properties[c.property].Value, c.field)
	}
	if p := doc.Components.Parameters["IdempotencyKey"]; p == nil {
		t.Error("parameter IdempotencyKey is not in openapi.yaml")
	} else {
		// Required by the service, optional in the document so that a
		// missing key reaches the service's own 400.
		f := billing.IdempotencyKeyField
		check("parameter Idempotency-Key", p.Value.Schema.Value, f)
	}
}
