//go:build !(linux && cgo)

package store

// keepFreedCHeap does nothing where the C allocator is not glibc's (see
// malloc_glibc.go).
func keepFreedCHeap(int) {}
