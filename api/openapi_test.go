package api_test

import (
	"os"
	"strings"
	"testing"

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
