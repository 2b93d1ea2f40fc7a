package sigma

import (
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// BenchmarkParseCorpus parses every Sigma file of the corpus once per iteration and
// reports rules per second (parsing alone; ingest adds hashing, indicators and storage).
func BenchmarkParseCorpus(b *testing.B) {
	var files []corpustest.RuleFile
	for _, f := range loadCorpus(b) {
		files = append(files, corpustest.RuleFile{Rel: f.rel, Data: f.data})
	}
	corpustest.BenchParse(b, files, func(src rule.Source, data []byte) []*rule.Rule {
		rs, _ := Parser{}.Parse(src, data)
		return rs
	})
}
