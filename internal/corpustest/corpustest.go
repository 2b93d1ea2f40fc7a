// Package corpustest locates the shared real-data corpus (../shared/corpus beside the
// repository, or $RULEDEX_CORPUS) for tests and benchmarks. Tests fail, never skip,
// when it is missing: CI has it, and a silently skipped test proves nothing.
package corpustest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the corpus root, failing tb when it cannot be found.
func Dir(tb testing.TB) string {
	tb.Helper()
	d, err := Find()
	if err != nil {
		tb.Fatalf("corpus: %v (set RULEDEX_CORPUS or place it at ../shared/corpus beside the repository)", err)
	}
	return d
}

// Path joins elem to the corpus root.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	return filepath.Join(append([]string{Dir(tb)}, elem...)...)
}

// Find looks for the corpus without a testing.TB (benchmark programs).
func Find() (string, error) {
	if d := os.Getenv("RULEDEX_CORPUS"); d != "" {
		if _, err := os.Stat(d); err != nil {
			return "", err
		}
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	// Walk up to the module root (go.mod), then look beside it.
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(filepath.Dir(dir), "shared", "corpus")
			if _, err := os.Stat(c); err == nil {
				return c, nil
			}
		}
		if filepath.Dir(dir) == dir {
			return "", os.ErrNotExist
		}
	}
}
