package main

import (
	"os"
	"runtime/debug"
)

// tuneGC sets the collector's percent and memory limit for one phase of a command and
// returns what restores the previous ones. GOGC or GOMEMLIMIT in the environment
// win: whoever set them meant it.
func tuneGC(percent int, limit int64) (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	gc := debug.SetGCPercent(percent)
	lim := debug.SetMemoryLimit(limit)
	return func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(lim)
	}
}
