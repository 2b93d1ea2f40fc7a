package corpustest

import (
	"syscall"
	"testing"
	"time"

	"github.com/ruledex/ruledex/rule"
)

// RuleFile is one rule file read for a parse benchmark: its path as the parser sees it
// and its bytes.
type RuleFile struct {
	Rel  string
	Data []byte
}

// BenchParse parses every file once per iteration with parse and reports rules per
// second and, because the machine is shared, rules per CPU-second (the parser's own
// cost under contention).
func BenchParse(b *testing.B, files []RuleFile, parse func(rule.Source, []byte) []*rule.Rule) {
	cpu0 := CPUTime()
	b.ResetTimer()
	rules, bytes := 0, 0
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			rules += len(parse(rule.Source{Repo: "corpus", Path: f.Rel}, f.Data))
			bytes += len(f.Data)
		}
	}
	b.SetBytes(int64(bytes / max(b.N, 1)))
	b.ReportMetric(float64(rules)/b.Elapsed().Seconds(), "rules/s")
	if cpu := CPUTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(rules)/cpu.Seconds(), "rules/cpu-s")
	}
}

// CPUTime is the process's user and system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
