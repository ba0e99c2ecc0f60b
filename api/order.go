package api

import (
	"net/http"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

type orderRequest struct {
	Product *string `json:"product"`
}

type orderView struct {
	ID            string              `json:"id"`
	VIN           string              `json:"vin"`
	OwnerID       string              `json:"owner_id"`
	Product       string              `json:"product"`
	AmountFen     int64               `json:"amount_fen"`
	Currency      string              `json:"currency"`
	Days          int                 `json:"days"`
	Status        billing.OrderStatus `json:"status"`
	CreatedAt     string              `json:"created_at"`
	ExpiresAt     string              `json:"expires_at"`
	PaidAt        *string             `json:"paid_at"`
	CancelledAt   *string             `json:"cancelled_at"`
	RefundedFen   int64               `json:"refunded_fen"`
	TransactionID *string             `json:"transaction_id"`
}

type orderListView struct {
	Orders     []orderView `json:"orders"`
	NextCursor *string     `json:"next_cursor"`
}

// orderView shows o as it stands at now: a pending order past its
// expires_at shows as cancelled even before the job has cancelled it.
func (s *Server) orderView(o billing.Order, now time.Time) orderView {
	v := orderView{
		ID: o.ID, VIN: string(o.VIN), OwnerID: o.OwnerID, Product: o.Product,
		AmountFen: o.AmountFen, Currency: o.Currency, Days: o.Days, Status: o.StatusAt(now),
		CreatedAt: stamp(o.CreatedAt, s.loc), ExpiresAt: stamp(o.ExpiresAt, s.loc),
		RefundedFen: o.RefundedFen, TransactionID: strPtr(o.TransactionID),
	}
	if o.PaidAt != nil {
		v.PaidAt = stampPtr(*o.PaidAt, s.loc)
	}
	switch {
	case o.CancelledAt != nil && v.Status == billing.OrderCancelled:
		v.CancelledAt = stampPtr(*o.CancelledAt, s.loc)
	case v.Status == billing.OrderCancelled:
		v.CancelledAt = stampPtr(o.ExpiresAt, s.loc)
	}
	return v
}

// createOrder handles POST /v1/vehicles/{vin}/orders (owner, own vehicle,
// Idempotency-Key required): 201 with the pending order, priced from the
// catalog now.
func (s *Server) createOrder(c *gin.Context) {
	vin, err := billing.ParseVIN(c.Param("vin"))
	if err != nil {
		s.fail(c, err)
		return
	}
	// Who may buy for this car is answered before the request is looked at.
	if _, _, err := s.vehicleFor(c); err != nil {
		s.fail(c, err)
		return
	}
	var req orderRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := billing.ProductField.Error(deref(req.Product)); err != nil {
		s.fail(c, err)
		return
	}
	k, err := idempotencyKey(c, map[string]string{"vin": string(vin), "product": *req.Product})
	if err != nil {
		s.fail(c, err)
		return
	}
	p, ok := s.catalog.Product(*req.Product)
	if !ok {
		s.fail(c, &billing.Error{Code: billing.EUnknownProduct, Message: "product " + *req.Product + " is not on sale",
			Fields: []billing.FieldError{{Field: "product", Code: "unknown"}}})
		return
	}
	now := s.now()
	o := billing.NewOrder(vin, principal(c).Subject, p, now, s.unpaidTTL)
	res, err := s.store.CreateOrder(c.Request.Context(), o, k,
		renderJSON(http.StatusCreated, func(o billing.Order) any { return s.orderView(o, now) }))
	if billing.IsCode(err, billing.ENotActivated) || billing.IsCode(err, billing.EVehicleNotFound) {
		err = billing.VehicleNotFound(vin) // the car was transferred meanwhile
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	writeStored(c, res)
}

// getOrder handles GET /v1/orders/{id}: an owner sees the orders they
// placed; billing and ops see every order.
func (s *Server) getOrder(c *gin.Context) {
	id := c.Param("id")
	if err := billing.PathIDField.Error(id); err != nil {
		s.fail(c, err)
		return
	}
	o, err := s.store.Order(c.Request.Context(), id)
	if err == nil && !viewer(c).MaySeeOrder(o) {
		err = billing.OrderNotFound(id)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.orderView(o, s.now()))
}

// listOrders handles GET /v1/vehicles/{vin}/orders: newest first, a page
// at a time. An owner sees the orders they placed for their car.
func (s *Server) listOrders(c *gin.Context) {
	vin, _, err := s.vehicleFor(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	limit, cur, err := pageParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	q := viewer(c).OrderQuery(billing.OrderQuery{VIN: vin, After: cur, Limit: limit})
	orders, next, err := s.store.Orders(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	out := orderListView{Orders: make([]orderView, len(orders)), NextCursor: encodeCursor(next)}
	for i, o := range orders {
		out.Orders[i] = s.orderView(o, now)
	}
	c.JSON(http.StatusOK, out)
}
