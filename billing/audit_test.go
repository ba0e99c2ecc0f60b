package billing

import (
	"context"
	"testing"
)

func TestActorString(t *testing.T) {
	for _, c := range []struct {
		a    Actor
		want string
	}{
		{Actor{Role: "billing", Subject: "alice"}, "billing:alice"},
		{SystemActor("expire"), "system:expire"},
		{Actor{Role: ActorProvider, RequestID: "r1"}, "provider"},
		{Actor{}, "unknown"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.a, got, c.want)
		}
	}
}

func TestActorTravelsInTheContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := ActorFrom(ctx); ok {
		t.Error("a bare context carries an actor")
	}
	want := Actor{Role: "ops", Subject: "delivery", RequestID: "req-1"}
	if got, ok := ActorFrom(WithActor(ctx, want)); !ok || got != want {
		t.Errorf("ActorFrom(WithActor(%+v)) = %+v, %v", want, got, ok)
	}
}

func TestAuditActionValid(t *testing.T) {
	for _, a := range AuditActions {
		if !a.Valid() {
			t.Errorf("%s is not valid", a)
		}
	}
	if AuditAction("vehicle.deleted").Valid() {
		t.Error("an unknown action is valid")
	}
}
