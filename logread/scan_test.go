package logread

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
)

func key(ev *event.Event) string {
	var b strings.Builder
	for _, f := range ev.Fields {
		b.WriteString(f.Name)
		b.WriteByte('=')
		b.WriteString(f.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// TestScanMatchesSequential: the parallel scan yields exactly the events (and errors)
// of reading the same inputs one after another, including a multi-chunk file with a
// damaged chunk.
func TestScanMatchesSequential(t *testing.T) {
	dir := t.TempDir()
	hdr, chunks := multiChunk(t, append(mdecrevoisier(t), regressionCases(t)[:20]...))
	bad := bytes.Clone(chunks[5])
	copy(bad, "BadChnk\x00")
	cs := append(append(append([][]byte{}, chunks[:5]...), bad), chunks[6:]...)
	writeFile(t, dir, "multi.evtx", append([][]byte{hdr}, cs...)...)
	paths := []string{dir, corpustest.Path(t, "regression", "regression_data", "rules", "windows", "process_creation")}

	var want []string
	wantErrs := 0
	for _, p := range paths {
		evs, errs := readAll(t, p)
		for _, fs := range evs {
			want = append(want, key(&event.Event{Fields: fs}))
		}
		wantErrs += len(errs)
	}
	for _, workers := range []int{1, 2, 4} {
		var mu sync.Mutex
		var got []string
		var errs []error
		Scan(paths, workers, func(w int, ev *event.Event) {
			k := key(ev)
			mu.Lock()
			got = append(got, k)
			mu.Unlock()
		}, func(err error) { errs = append(errs, err) })
		sort.Strings(got)
		w := append([]string(nil), want...)
		sort.Strings(w)
		if len(got) != len(w) {
			t.Fatalf("workers %d: %d events, want %d", workers, len(got), len(w))
		}
		for i := range w {
			if got[i] != w[i] {
				t.Fatalf("workers %d: event sets differ at %d", workers, i)
			}
		}
		if len(errs) != wantErrs || wantErrs != 1 {
			t.Errorf("workers %d: errors %v, want %d (the bad chunk)", workers, errs, wantErrs)
		}
	}
}

func TestScanMissingPath(t *testing.T) {
	var errs []error
	Scan([]string{filepath.Join(t.TempDir(), "nope.evtx")}, 2, func(int, *event.Event) {}, func(err error) { errs = append(errs, err) })
	if len(errs) != 1 || !os.IsNotExist(errorsUnwrapAll(errs[0])) {
		t.Errorf("errors %v", errs)
	}
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// BenchmarkScanEVTX decodes one multi-chunk file in parallel (chunks across workers).
func BenchmarkScanEVTX(b *testing.B) {
	hdr, chunks := multiChunk(b, append(mdecrevoisier(b), regressionCases(b)...))
	p := writeFile(b, b.TempDir(), "all.evtx", append([][]byte{hdr}, chunks...)...)
	st, _ := os.Stat(p)
	b.SetBytes(st.Size())
	for b.Loop() {
		Scan([]string{p}, 2, func(int, *event.Event) {}, func(err error) { b.Fatal(err) })
	}
}
