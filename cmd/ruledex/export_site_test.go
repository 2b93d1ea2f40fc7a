package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent reads the collector's GOGC setting without changing it.
func gcPercent() int {
	v := debug.SetGCPercent(100)
	debug.SetGCPercent(v)
	return v
}

// TestExportSiteGC: an export collects at exportGCPercent under exportMemoryLimit and
// puts the settings back after; GOGC or GOMEMLIMIT in the environment are left alone.
func TestExportSiteGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	restore := tuneGC(exportGCPercent, exportMemoryLimit)
	if gcPercent() != exportGCPercent || debug.SetMemoryLimit(-1) != exportMemoryLimit {
		t.Errorf("during an export: GOGC %d, limit %d; want %d, %d", gcPercent(), debug.SetMemoryLimit(-1), exportGCPercent, exportMemoryLimit)
	}
	restore()
	if gcPercent() != 100 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("after: GOGC %d, limit %d; want the settings from before", gcPercent(), debug.SetMemoryLimit(-1))
	}
	t.Setenv("GOGC", "50")
	restore = tuneGC(exportGCPercent, exportMemoryLimit)
	if gcPercent() != 100 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("with GOGC set: GOGC %d, limit %d; the environment's settings must win", gcPercent(), debug.SetMemoryLimit(-1))
	}
	restore()
}
