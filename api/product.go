package api

import (
	"net/http"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

type productView struct {
	Code              string `json:"code"`
	Name              string `json:"name"`
	PriceFen          int64  `json:"price_fen"`
	Currency          string `json:"currency"`
	Days              int    `json:"days"`
	DataBytesPerMonth int64  `json:"data_bytes_per_month"`
}

// listProducts handles GET /v1/products: the packages on sale now.
func (s *Server) listProducts(c *gin.Context) {
	out := make([]productView, 0, len(s.catalog.Products))
	for _, p := range s.catalog.Products {
		out = append(out, productView{
			Code: p.Code, Name: p.Name, PriceFen: p.PriceFen, Currency: billing.Currency,
			Days: p.Days, DataBytesPerMonth: p.DataBytesPerMonth,
		})
	}
	c.JSON(http.StatusOK, out)
}
