package eql

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// BenchmarkEQL parses every EQL query of the Elastic rules corpus once per iteration
// (queries per second; the TOML around them is not read).
func BenchmarkEQL(b *testing.B) {
	root := corpustest.Path(b, "elastic", "detection-rules", "rules")
	var qs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".toml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(data), `language = "eql"`) {
			return nil
		}
		if _, rest, ok := strings.Cut(string(data), "\nquery = '''\n"); ok {
			if q, _, ok := strings.Cut(rest, "'''"); ok {
				qs = append(qs, q)
			}
		}
		return nil
	})
	if len(qs) < 900 {
		b.Fatalf("found %d EQL queries, want the corpus's (over 900)", len(qs))
	}
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, q := range qs {
			Parse(q, rule.Pos{Line: 1, Col: 1})
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "queries/s")
}
