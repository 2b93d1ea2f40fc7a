package translate

import (
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
)

// BenchmarkTranslateCorpus translates and verifies (parses back and compares) every
// rule of the Sigma, KQL and SPL corpus into KQL: one iteration is the whole corpus.
// The target is ≤10 s per iteration; rules/s is reported.
func BenchmarkTranslateCorpus(b *testing.B) {
	root := corpustest.Dir(b)
	ps := testParsers()
	rules := loadRules(b, ps,
		filepath.Join(root, "sigma"), filepath.Join(root, "kql"), filepath.Join(root, "spl", "splunk"))
	fm := fieldmap.Default()
	read := testReader(ps)
	b.ResetTimer()
	ok := 0
	for i := 0; i < b.N; i++ {
		ok = 0
		for _, r := range rules {
			if _, err := Convert(fm, r, KQL, Options{}, read); err == nil {
				ok++
			}
		}
	}
	b.ReportMetric(float64(len(rules)*b.N)/b.Elapsed().Seconds(), "rules/s")
	b.ReportMetric(float64(ok), "translated")
}
