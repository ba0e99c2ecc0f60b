package billing

// IdempotencyKey names a request that may be retried: the caller's scope
// (who is asking), the Idempotency-Key they sent, and a hash of what they
// asked (method, path and normalised body). The same scope and key with
// another hash is EIdempotencyKeyReused.
type IdempotencyKey struct {
	Scope       string
	Key         string
	RequestHash string
}

// StoredResponse is what a request answered, kept under its idempotency
// key and replayed verbatim to a retry.
type StoredResponse struct {
	Status   int
	Body     []byte
	Replayed bool // true when this is the stored answer of an earlier request
}

// Render turns the result of a write into the response stored with it.
type Render[T any] func(T) (status int, body []byte, err error)
