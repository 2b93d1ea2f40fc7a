package elastic

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// BenchmarkParseElastic parses every Elastic rule and hunting file of the corpus once per
// iteration and reports rules per second (parsing alone, all query languages).
func BenchmarkParseElastic(b *testing.B) {
	root, paths := corpusFiles(b)
	var files []corpustest.RuleFile
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, corpustest.RuleFile{Rel: filepath.ToSlash(rel), Data: data})
	}
	corpustest.BenchParse(b, files, func(src rule.Source, data []byte) []*rule.Rule {
		rs, _ := Parser{}.Parse(src, data)
		return rs
	})
}
