package hunt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/winevent"
)

// TestFeedAheadSameAsRun: a hunt whose parts were decoded ahead (all of them, or up
// to a small budget) reports exactly what a hunt without decoding ahead reports:
// same output bytes, same summary, same located read errors (line numbers included),
// over JSON lines with broken lines, evtx_dump JSON documents and EVTX files.
func TestFeedAheadSameAsRun(t *testing.T) {
	loaded, err := LoadRules([]string{sigmaRule(t, "sigmahq", "rules", "windows")}, []Parser{sigma.Parser{}}, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := winevent.Routing()
	if err != nil {
		t.Fatal(err)
	}
	h := New(loaded.Rules, engine.Options{Router: engine.CatalogRouter{Catalog: router}})

	// JSON lines over several batches, with broken lines among them.
	var lines strings.Builder
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; lines.Len() < 3*batchBytes; i++ {
		lines.WriteString(bitsLine(i, i%7 == 0, t0.Add(time.Duration(i%50)*time.Second)) + "\n")
		if i%1000 == 500 {
			lines.WriteString("{\"EventID\":1,,}\n")
		}
	}
	jl := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(jl, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	inputs := []Input{FileInput(jl)}
	jsons, _ := filepath.Glob(filepath.Join(corpustest.Dir(t), "regression", "regression_data", "rules", "windows", "process_creation", "*", "*.json"))
	evtxs, _ := filepath.Glob(filepath.Join(corpustest.Dir(t), "regression", "regression_data", "rules", "windows", "process_creation", "*", "*.evtx"))
	if len(jsons) < 10 || len(evtxs) < 10 {
		t.Fatalf("%d JSON and %d EVTX regression files", len(jsons), len(evtxs))
	}
	for _, p := range append(jsons[:10], evtxs[:10]...) {
		inputs = append(inputs, FileInput(p))
	}
	inputs = append(inputs, FileInput(mdecEVTX(t, "Antivirus", "ID1151-Defender health status.evtx")))

	hunt := func(f *Feed) (string, *Summary, []string) {
		var buf bytes.Buffer
		out := NewOutput(&buf, JSON)
		var errs []string
		sum, err := h.RunFeed(f, out, Options{Workers: 2, Report: func(e error) { errs = append(errs, e.Error()) }})
		if err != nil {
			t.Fatal(err)
		}
		out.Close()
		sum.Seconds = 0
		return buf.String(), sum, errs
	}
	wantOut, wantSum, wantErrs := hunt(StartFeed(inputs, FeedOptions{}))
	if wantSum.Events < 5000 || wantSum.Matches == 0 || len(wantErrs) < 3 {
		t.Fatalf("%d events, %d matches, errors %v", wantSum.Events, wantSum.Matches, wantErrs)
	}
	for _, budget := range []int{1 << 40, 3 << 20} {
		f := StartFeed(inputs, FeedOptions{AheadBytes: budget})
		<-f.aheadDone // everything (or the budget) decoded before the run starts
		if f.aheadParts.Load() == 0 {
			t.Fatal("nothing decoded ahead")
		}
		got, sum, errs := hunt(f)
		if got != wantOut {
			t.Errorf("budget %d: output differs (%d bytes, want %d)", budget, len(got), len(wantOut))
		}
		if diff := cmp.Diff(wantSum, sum); diff != "" {
			t.Errorf("budget %d: summary (-want +got):\n%s", budget, diff)
		}
		if diff := cmp.Diff(wantErrs, errs); diff != "" {
			t.Errorf("budget %d: errors (-want +got):\n%s", budget, diff)
		}
	}
	// A feed runs once; a discarded one stops.
	f := StartFeed(inputs, FeedOptions{AheadBytes: 1 << 20})
	f.Discard()
	if _, err := h.RunFeed(f, NewOutput(&bytes.Buffer{}, JSON), Options{Workers: 1}); err == nil {
		t.Error("a discarded feed runs")
	}
}
