package billing

// Currency of every price; the service sells in one currency.
const Currency = "CNY"

// Product is a package owners can buy. Prices are in fen.
type Product struct {
	Code              string
	Name              string
	PriceFen          int64
	Days              int
	DataBytesPerMonth int64 // 0 = unlimited
}

// Catalog is the configured offer: trial terms, products and features.
type Catalog struct {
	Trial    TrialTerms
	Products []Product
	Features Features
}

// Product returns the product with the given code.
func (c Catalog) Product(code string) (Product, bool) {
	for _, p := range c.Products {
		if p.Code == code {
			return p, true
		}
	}
	return Product{}, false
}
