package billing

// Snapshot is what an entitlement is computed from, read together: the
// vehicle, its timeline and its usage in one cycle.
type Snapshot struct {
	Vehicle  Vehicle
	Timeline Timeline
	Usage    Usage
}
