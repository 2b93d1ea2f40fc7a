package elastic

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ruledex/ruledex/rule"
)

// BenchmarkParseElastic parses every Elastic rule and hunting file of the corpus once per
// iteration and reports rules per second (parsing alone, all query languages).
func BenchmarkParseElastic(b *testing.B) {
	root, paths := corpusFiles(b)
	type file struct {
		rel  string
		data []byte
	}
	var files []file
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, file{filepath.ToSlash(rel), data})
	}
	var p Parser
	cpu0 := cpuTime()
	b.ResetTimer()
	rules, bytes := 0, 0
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			rs, _ := p.Parse(rule.Source{Repo: "corpus", Path: f.rel}, f.data)
			rules += len(rs)
			bytes += len(f.data)
		}
	}
	b.SetBytes(int64(bytes / max(b.N, 1)))
	b.ReportMetric(float64(rules)/b.Elapsed().Seconds(), "rules/s")
	// The machine is shared: CPU time shows the parser's own cost under contention.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(rules)/cpu.Seconds(), "rules/cpu-s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
