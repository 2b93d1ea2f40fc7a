package ingest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
)

var sigmaParsers = []Parser{sigma.Parser{}}

// BenchmarkIngestSigma measures a first ingest of the whole Sigma corpus into a new
// catalog (target: 2,000 rules/s on 2 cores); see BenchmarkReingestSigma for the
// unchanged re-ingest.
func BenchmarkIngestSigma(b *testing.B) {
	dir := corpustest.Path(b, "sigma")
	rules := 0
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, err := catalog.Open(filepath.Join(b.TempDir(), "cat.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := corpustest.CPUTime()
		s, err := Run(context.Background(), c, []string{dir}, Options{Parsers: sigmaParsers})
		if err != nil {
			b.Fatal(err)
		}
		cpu += corpustest.CPUTime() - c0
		rules = s.Rules
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rules)*float64(b.N)/b.Elapsed().Seconds(), "rules/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkReingestSigma measures an unchanged re-ingest of the Sigma corpus (target:
// at least 10 times faster than the first ingest).
func BenchmarkReingestSigma(b *testing.B) {
	dir := corpustest.Path(b, "sigma")
	c, err := catalog.Open(filepath.Join(b.TempDir(), "cat.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	first, err := Run(context.Background(), c, []string{dir}, Options{Parsers: sigmaParsers})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	c0 := corpustest.CPUTime()
	for i := 0; i < b.N; i++ {
		s, err := Run(context.Background(), c, []string{dir}, Options{Parsers: sigmaParsers})
		if err != nil {
			b.Fatal(err)
		}
		if s.Changed != 0 || s.TotalRules != first.TotalRules {
			b.Fatalf("re-ingest changed something: %+v", s)
		}
	}
	b.ReportMetric(float64(first.TotalRules)*float64(b.N)/b.Elapsed().Seconds(), "catalog-rules/s")
	b.ReportMetric((corpustest.CPUTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
}
