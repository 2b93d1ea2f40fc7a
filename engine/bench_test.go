package engine

import (
	"github.com/ruledex/ruledex/internal/corpustest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ruledex/ruledex/event"
)

// regressionEvents decodes every regression EVTX once.
func regressionEvents(tb testing.TB) []event.Event {
	tb.Helper()
	var out []event.Event
	for _, c := range regressionCases(tb) {
		evs, err := readEvents(c.EVTX)
		if err != nil {
			tb.Logf("%s: %v", c.EVTX, err)
		}
		out = append(out, evs...)
	}
	if len(out) == 0 {
		tb.Fatal("no regression events")
	}
	return out
}

var (
	benchOnce    sync.Once
	benchMatcher *Matcher
	benchEvents  []event.Event
)

// benchSetup compiles the rules and decodes the events once per process, not once per
// benchmark round.
func benchSetup(b *testing.B) (*Matcher, []event.Event) {
	benchOnce.Do(func() {
		rules, cat := windowsRules(b)
		start := time.Now()
		benchMatcher, _ = Compile(rules, Options{Router: CatalogRouter{cat}})
		b.Logf("compiled %d rules in %v", len(rules), time.Since(start))
		benchEvents = regressionEvents(b)
		// Build every bucket before timing: buckets are built on first use.
		for i := range benchEvents {
			benchMatcher.Match(&benchEvents[i], nil)
		}
	})
	return benchMatcher, benchEvents
}

// BenchmarkMatch evaluates all Windows SigmaHQ rules over the decoded regression
// events; one op is one event. Run with -cpu 1,2 for the single-core and parallel
// figures.
func BenchmarkMatch(b *testing.B) {
	m, evs := benchSetup(b)
	b.ReportAllocs()
	cpu0 := corpustest.CPUTime()
	b.ResetTimer()
	var next int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		var out []Match
		mu.Lock()
		i := int(next)
		next += 7919
		mu.Unlock()
		for pb.Next() {
			out = m.Match(&evs[i%len(evs)], out[:0])
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// The machine is shared: CPU time consumed says more than wall time.
	b.ReportMetric(float64(b.N)/(corpustest.CPUTime()-cpu0).Seconds(), "events/cpu-s")
}

// BenchmarkMatchNonMatching measures the events no rule matches: they must not allocate.
func BenchmarkMatchNonMatching(b *testing.B) {
	m, evs := benchSetup(b)
	var quiet []event.Event
	for _, e := range evs {
		if len(m.Match(&e, nil)) == 0 {
			quiet = append(quiet, e)
		}
	}
	if len(quiet) == 0 {
		b.Fatal("every regression event matches some rule")
	}
	b.ReportAllocs()
	cpu0 := corpustest.CPUTime()
	b.ResetTimer()
	var out []Match
	for i := 0; i < b.N; i++ {
		out = m.Match(&quiet[i%len(quiet)], out[:0])
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/(corpustest.CPUTime()-cpu0).Seconds(), "events/cpu-s")
}

// TestNoAllocsOnNonMatchingEvents pins the zero-allocation property of the hot path.
func TestNoAllocsOnNonMatchingEvents(t *testing.T) {
	rules, cat := windowsRules(t)
	m, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
	evs := regressionEvents(t)
	var quiet []event.Event
	for i := range evs {
		if len(m.Match(&evs[i], nil)) == 0 {
			quiet = append(quiet, evs[i])
		}
	}
	t.Logf("%d of %d regression events match no rule", len(quiet), len(evs))
	out := make([]Match, 0, 16)
	// Warm the route cache and the state pool first.
	for i := range quiet {
		out = m.Match(&quiet[i], out[:0])
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	for i := range quiet {
		a := testing.AllocsPerRun(5, func() { out = m.Match(&quiet[i], out[:0]) })
		if a != 0 {
			ch, _ := quiet[i].Get("Channel")
			t.Errorf("%s event %d (%s): %.1f allocations", strings.TrimSpace(quiet[i].File), i, ch, a)
		}
	}
}

// BenchmarkCompile compiles every Windows SigmaHQ rule with the catalog router (the
// start-up cost of a hunt), then builds the buckets of the regression events, which the
// first events of a hunt pay.
func BenchmarkCompile(b *testing.B) {
	rules, cat := windowsRules(b)
	evs := regressionEvents(b)
	b.ReportAllocs()
	cpu0 := corpustest.CPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
		for j := range evs {
			m.Match(&evs[j], nil)
		}
	}
	b.StopTimer()
	b.ReportMetric((corpustest.CPUTime()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkEventTime reads the time of every regression event (hunt does it for each
// matched event); the "slow" case is the reference implementation, for comparison.
func BenchmarkEventTime(b *testing.B) {
	_, evs := benchSetup(b)
	for _, c := range []struct {
		name string
		f    func(*event.Event) (time.Time, bool)
	}{{"onepass", EventTime}, {"slow", eventTimeSlow}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.f(&evs[i%len(evs)])
			}
		})
	}
}
