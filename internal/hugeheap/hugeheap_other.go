//go:build !linux

package hugeheap

import "time"

// Advise does nothing outside Linux: MADV_HUGEPAGE is Linux's.
func Advise() int { return 0 }

// Keep does nothing outside Linux.
func Keep(time.Duration) (stop func()) { return func() {} }
