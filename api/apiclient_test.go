package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/api/apiclient"
)

// TestGeneratedClientTalksToTheService calls the real router through the
// client oapi-codegen generates from openapi.yaml: the document is usable
// by generators, and what the service answers decodes into the types the
// document promises, errors included.
func TestGeneratedClientTalksToTheService(t *testing.T) {
	h := newHarness(t, "sqlite")
	srv := httptest.NewServer(h.handler)
	defer srv.Close()
	as := func(role api.Role, sub string) *apiclient.ClientWithResponses {
		c, err := apiclient.NewClientWithResponses(srv.URL, apiclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+h.token(role, sub))
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	v := vin("LSVAX4E10P2700001")

	act, err := as(api.RoleOps, "delivery").ActivateVehicleWithResponse(ctx, v, apiclient.ActivationRequest{
		ActivatedAt: time.Date(2026, 6, 1, 10, 0, 0, 0, shanghai), OwnerId: "owner-1"})
	if err != nil || act.StatusCode() != http.StatusCreated || act.JSON201 == nil || act.JSON201.State != "trial" {
		t.Fatalf("ActivateVehicle = %v, %v, %s", err, act.StatusCode(), act.Body)
	}
	car := as(api.RoleVehicle, v)
	hotspot := apiclient.CheckFeatureParamsConnection("hotspot")
	feat, err := car.CheckFeatureWithResponse(ctx, v, "karaoke", &apiclient.CheckFeatureParams{Connection: &hotspot})
	if err != nil || feat.JSON200 == nil || !feat.JSON200.Allowed || feat.JSON200.Reason != apiclient.ExternalNetwork {
		t.Fatalf("CheckFeature = %v, %s", err, feat.Body)
	}
	key := apiclient.IdempotencyKey("client-order-1")
	ord, err := as(api.RoleOwner, "owner-1").CreateOrderWithResponse(ctx, v, &apiclient.CreateOrderParams{IdempotencyKey: &key},
		apiclient.OrderRequest{Product: "monthly"})
	if err != nil || ord.JSON201 == nil || ord.JSON201.AmountFen != 1990 {
		t.Fatalf("CreateOrder = %v, %d %s", err, ord.StatusCode(), ord.Body)
	}
	got, err := as(api.RoleBilling, "bob").GetOrderWithResponse(ctx, ord.JSON201.Id)
	if err != nil || got.JSON200 == nil || got.JSON200.Id != ord.JSON201.Id {
		t.Fatalf("GetOrder = %v, %d %s", err, got.StatusCode(), got.Body)
	}
	// A client error decodes as the documented problem.
	denied, err := car.ListNoticesWithResponse(ctx, v, nil)
	if err != nil || denied.ApplicationproblemJSON403 == nil || denied.ApplicationproblemJSON403.Code == "" {
		t.Fatalf("ListNotices as the car = %v, %d %s, want a 403 problem", err, denied.StatusCode(), denied.Body)
	}
	health, err := car.GetHealthWithResponse(ctx)
	if err != nil || health.JSON200 == nil || health.JSON200.Status == "" {
		t.Fatalf("GetHealth = %v, %s", err, health.Body)
	}
}
