package hunt

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/winevent"
)

// BenchmarkHuntJSONLines runs the SigmaHQ Windows rules over $HUNT_BENCH_EVENTS (a
// JSON-lines file, e.g. the one bench/huntcli writes) or, without it, the regression
// JSON files: decode, match and JSON encoding, rule loading excluded.
func BenchmarkHuntJSONLines(b *testing.B) {
	loaded, err := LoadRules([]string{corpustest.Path(b, "sigma", "sigmahq", "rules", "windows")}, []Parser{sigma.Parser{}}, Filter{})
	if err != nil {
		b.Fatal(err)
	}
	router, err := winevent.Routing()
	if err != nil {
		b.Fatal(err)
	}
	h := New(loaded.Rules, engine.Options{Router: engine.CatalogRouter{Catalog: router}})
	var inputs []Input
	var size int64
	if p := os.Getenv("HUNT_BENCH_EVENTS"); p != "" {
		inputs = []Input{FileInput(p)}
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	} else {
		files, _ := filepath.Glob(filepath.Join(corpustest.Dir(b), "regression", "regression_data", "rules", "windows", "*", "*", "*.json"))
		for _, f := range files {
			inputs = append(inputs, FileInput(f))
			if st, err := os.Stat(f); err == nil {
				size += st.Size()
			}
		}
	}
	b.SetBytes(size)
	b.ResetTimer()
	var events int64
	for b.Loop() {
		out := NewOutput(bufio.NewWriter(io.Discard), JSON)
		sum, err := h.Run(inputs, out, Options{Workers: 2})
		if err != nil {
			b.Fatal(err)
		}
		events += sum.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
