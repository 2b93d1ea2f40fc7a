package yaral

import (
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// BenchmarkParse parses the whole Chronicle corpus per iteration and reports rules/s
// (target: at least 2,000).
func BenchmarkParse(b *testing.B) {
	files := corpusFiles(b)
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.data))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, f := range files {
			rs, _ := Parser{}.Parse(rule.Source{Path: f.rel}, f.data)
			n += len(rs)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rules/s")
}
