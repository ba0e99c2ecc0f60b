//go:build linux && cgo

package store

/*
#include <malloc.h>
*/
import "C"

import "sync"

// keepFreedCHeap raises the C allocator's trim threshold to bytes, once
// per process. SQLite, in the service's process, allocates a statement
// journal kept in memory (writer.journalsInMemory) in chunks of about
// 1 KiB and frees it when the statement ends: a few MiB per chunk of a
// usage batch. With glibc's default threshold (128 KiB, raised only by
// freed large blocks) the freed memory went back to the kernel at the
// end of each statement and was faulted in again, page by page, by the
// next: ingest spread over the fleet went from 10.7 k to 8.7–10.4 k
// records/s when the journals moved to memory, and to 11.9–12.5 k with
// this threshold (the harness's usage-spread phase, one build each,
// alternating; docs/storage.md). The memory kept is what the process
// freed at most, not more than bytes.
func keepFreedCHeap(bytes int) {
	trimOnce.Do(func() { C.mallopt(C.M_TRIM_THRESHOLD, C.int(bytes)) })
}

var trimOnce sync.Once
