package logread

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
)

// readAll reads every event of path, copying fields (readers reuse storage), and the
// located errors.
func readAll(t testing.TB, path string) ([][]event.Field, []error) {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer r.Close()
	var out [][]event.Field
	var errs []error
	var ev event.Event
	for n := 0; ; n++ {
		if n > 1_000_000 {
			t.Fatalf("%s: reader does not terminate", path)
		}
		err := r.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: unlocated error %T: %v", path, err, err)
			}
			errs = append(errs, err)
			continue
		}
		fs := make([]event.Field, len(ev.Fields))
		for i, f := range ev.Fields {
			fs[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
		}
		out = append(out, fs)
	}
	return out, errs
}

// regressionCases lists the EVTX files of the SigmaHQ regression data; each has a JSON
// export (evtx_dump) beside it.
func regressionCases(t testing.TB) []string {
	dir := corpustest.Path(t, "regression", "regression_data")
	files, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, ".evtx") {
			out = append(out, f)
		}
	}
	if len(out) < 100 {
		t.Fatalf("only %d regression EVTX files under %s", len(out), dir)
	}
	return out
}

// TestRegressionEVTXMatchesJSON: the EVTX and its evtx_dump JSON export give the same
// events, field for field, in the same order.
func TestRegressionEVTXMatchesJSON(t *testing.T) {
	for _, evtxPath := range regressionCases(t) {
		jsonPath := strings.TrimSuffix(evtxPath, ".evtx") + ".json"
		name, _ := filepath.Rel(corpustest.Dir(t), evtxPath)
		t.Run(name, func(t *testing.T) {
			fromEVTX, errs := readAll(t, evtxPath)
			for _, e := range errs {
				t.Errorf("evtx: %v", e)
			}
			fromJSON, errs := readAll(t, jsonPath)
			for _, e := range errs {
				t.Errorf("json: %v", e)
			}
			if len(fromEVTX) == 0 {
				t.Fatal("no events from EVTX")
			}
			if diff := cmp.Diff(fromJSON, fromEVTX); diff != "" {
				t.Errorf("EVTX and JSON differ (-json +evtx):\n%s", diff)
			}
		})
	}
}
