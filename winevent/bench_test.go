package winevent

import (
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

func BenchmarkLoad(b *testing.B) {
	dir := Dir(corpustest.Dir(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCoverage measures coverage of the seed rule (field checks against the
// logsource candidates and the 4688 alternate).
func BenchmarkCoverage(b *testing.B) {
	c := catalog(b)
	r := parseSigma(b, "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml")
	b.ReportAllocs()
	for b.Loop() {
		if len(c.Coverage(r)) != 1 {
			b.Fatal("coverage changed")
		}
	}
}
