package hunt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

const seedRuleText = `title: BITS download
id: 11111111-1111-1111-1111-111111111111
level: medium
status: test
tags:
    - attack.persistence
    - attack.t1197
logsource:
    product: windows
    category: process_creation
detection:
    sel:
        Image|endswith: '\bitsadmin.exe'
        CommandLine|contains: '/transfer'
    condition: sel
`

func compileText(t *testing.T, texts ...string) *Hunter {
	t.Helper()
	var rules []*rule.Rule
	for i, text := range texts {
		rs, diags := sigma.Parser{}.Parse(rule.Source{Repo: "t", Path: fmt.Sprintf("r%d.yml", i)}, []byte(text))
		if len(diags) > 0 {
			t.Fatal(diags)
		}
		rules = append(rules, rs...)
	}
	router, err := winevent.Routing()
	if err != nil {
		t.Fatal(err)
	}
	return New(rules, engine.Options{Router: engine.CatalogRouter{Catalog: router}})
}

// bitsLine is a Sysmon 1 event as a JSON line, matching seedRuleText when hit.
func bitsLine(i int, hit bool, at time.Time) string {
	img := `C:\\Windows\\System32\\cmd.exe`
	if hit {
		img = `C:\\Windows\\System32\\bitsadmin.exe`
	}
	return fmt.Sprintf(`{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Computer":"pc%d","TimeCreated":"%s","Image":"%s","CommandLine":"x /transfer j%d"}`,
		i, at.Format(time.RFC3339Nano), img, i)
}

// gatedInput sends n parts of one matching event each; after `after` parts it waits
// until the output has received something, proving that output streams while input
// is still being read.
type gatedInput struct {
	n, after int
	written  chan struct{}
	timedOut bool
}

func (g *gatedInput) Name() string { return "gated" }

func (g *gatedInput) Parts(send func(Part) bool) error {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < g.n; i++ {
		if i == g.after {
			select {
			case <-g.written:
			case <-time.After(10 * time.Second):
				g.timedOut = true
			}
		}
		line := bitsLine(i, true, t0.Add(time.Duration(i)*time.Second))
		if !send(Part{Line: i, Open: func() (logread.Reader, error) {
			return logread.NewJSONReader("gated", strings.NewReader(line)), nil
		}}) {
			return nil
		}
	}
	return nil
}

type notifyOutput struct {
	Output
	written chan struct{}
	once    bool
}

func (n *notifyOutput) Write(p []byte) error {
	if !n.once {
		n.once = true
		close(n.written)
	}
	return n.Output.Write(p)
}

// TestStreaming (item 9): the first matches are written before the input is read to
// the end, and the output is in input order whatever the number of workers.
func TestStreaming(t *testing.T) {
	h := compileText(t, seedRuleText)
	var outs []string
	for _, workers := range []int{1, 2, 4} {
		g := &gatedInput{n: 200, after: 50, written: make(chan struct{})}
		var buf bytes.Buffer
		out := &notifyOutput{Output: NewOutput(&buf, JSON), written: g.written}
		sum, err := h.Run([]Input{g}, out, Options{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		out.Close()
		if g.timedOut {
			t.Errorf("workers %d: nothing written after %d of %d parts: output does not stream", workers, g.after, g.n)
		}
		if sum.Matches != 200 || sum.Events != 200 {
			t.Errorf("workers %d: %d matches of %d events, want 200", workers, sum.Matches, sum.Events)
		}
		outs = append(outs, buf.String())
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		for i, l := range lines {
			if !strings.Contains(l, fmt.Sprintf(`"computer":"pc%d"`, i)) {
				t.Fatalf("workers %d: line %d out of order: %s", workers, i, l)
			}
		}
	}
	if outs[0] != outs[1] || outs[0] != outs[2] {
		t.Error("output differs with the number of workers")
	}
}

// TestJSONLinesBatches: a JSON-lines file larger than a batch splits into parts that
// are matched in parallel; every event is read once, and an error's line number is its
// line in the file, not in the batch.
func TestJSONLinesBatches(t *testing.T) {
	h := compileText(t, seedRuleText)
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var b strings.Builder
	n := 0
	badLine := 0
	for b.Len() < 3*batchBytes {
		if n == 9000 {
			b.WriteString("{not json\n")
			badLine = n + 1
			n++
			continue
		}
		b.WriteString(bitsLine(n, n%100 == 0, t0.Add(time.Duration(n)*time.Millisecond)) + "\n")
		n++
	}
	p := filepath.Join(t.TempDir(), "big.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	parts := 0
	FileInput(p).Parts(func(Part) bool { parts++; return true })
	if parts < 3 {
		t.Errorf("%d parts for %d bytes", parts, b.Len())
	}
	var errs []error
	var buf bytes.Buffer
	out := NewOutput(&buf, JSON)
	sum, err := h.Run([]Input{FileInput(p)}, out, Options{Workers: 2, Report: func(e error) { errs = append(errs, e) }})
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	if sum.Events != int64(n-1) {
		t.Errorf("%d events, want %d", sum.Events, n-1)
	}
	// Every 100th line matches, but line 9000 is the broken one.
	if want := (n-1)/100 + 1 - 1; sum.Matches != want {
		t.Errorf("%d matches, want %d", sum.Matches, want)
	}
	var le *logread.Error
	if len(errs) != 1 || !errors.As(errs[0], &le) || le.Line != badLine {
		t.Errorf("errors %v, want one at line %d", errs, badLine)
	}
}

// TestTimeRangeAndTimeline (item 9): --from/--to keep events in [from, to); the
// timeline sorts every match by time across inputs.
func TestTimeRangeAndTimeline(t *testing.T) {
	h := compileText(t, seedRuleText)
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	late := jsonInput(t, bitsLine(1, true, t0.Add(3*time.Hour)), bitsLine(2, true, t0.Add(time.Hour)))
	early := jsonInput(t, bitsLine(3, true, t0), bitsLine(4, true, t0.Add(2*time.Hour)), `{"EventID":1,"Image":"x"}`)
	tests := []struct {
		name     string
		from, to time.Time
		timeline bool
		want     []string // computers in output order
		outside  int64
	}{
		{"stream, input order", time.Time{}, time.Time{}, false, []string{"pc2", "pc1", "pc3", "pc4"}, 0},
		{"timeline", time.Time{}, time.Time{}, true, []string{"pc3", "pc2", "pc4", "pc1"}, 0},
		{"from", t0.Add(time.Hour), time.Time{}, true, []string{"pc2", "pc4", "pc1"}, 2},
		{"from and to (to excluded)", t0.Add(time.Hour), t0.Add(3 * time.Hour), false, []string{"pc2", "pc4"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			out := NewOutput(&buf, JSON)
			if tc.timeline {
				out = NewTimeline(&buf, JSON)
			}
			sum, err := h.Run([]Input{late, early}, out, Options{Workers: 2, From: tc.from, To: tc.to})
			if err != nil {
				t.Fatal(err)
			}
			out.Close()
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				got = append(got, m["computer"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") || sum.OutOfRange != tc.outside {
				t.Errorf("computers %v (outside %d), want %v (outside %d)", got, sum.OutOfRange, tc.want, tc.outside)
			}
		})
	}
}

// TestFilter (item 9): --min-level, --status, --tag/--technique and --exclude.
func TestFilter(t *testing.T) {
	mk := func(id, level, status, path string, tags ...string) *rule.Rule {
		r := &rule.Rule{ID: id, Title: "rule " + id, Severity: level, Status: status, Tags: tags, Source: rule.Source{Path: path}}
		for _, tg := range tags {
			if strings.HasPrefix(tg, "attack.t") {
				r.Techniques = append(r.Techniques, strings.ToUpper(strings.TrimPrefix(tg, "attack.")))
			} else if strings.HasPrefix(tg, "attack.") {
				r.Tactics = append(r.Tactics, strings.ReplaceAll(strings.TrimPrefix(tg, "attack."), "_", "-"))
			}
		}
		return r
	}
	rules := []*rule.Rule{
		mk("a", "low", "stable", "rules/windows/a.yml", "attack.t1197"),
		mk("b", "high", "test", "rules/windows/sub/b.yml", "attack.t1059.001", "attack.execution"),
		mk("c", "critical", "experimental", "rules/linux/c.yml", "attack.persistence"),
		mk("d", "", "stable", "other/d.yml"),
	}
	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"none", Filter{}, "a,b,c,d"},
		{"min-level high", Filter{MinLevel: "high"}, "b,c"},
		{"status", Filter{Status: []string{"stable", "TEST"}}, "a,b,d"},
		{"technique with sub-techniques", Filter{Tags: []string{"T1059"}}, "b"},
		{"tag as written", Filter{Tags: []string{"attack.t1197"}}, "a"},
		{"tactic", Filter{Tags: []string{"persistence", "execution"}}, "b,c"},
		{"exclude id and title", Filter{Exclude: []string{"a", "rule b"}}, "c,d"},
		{"exclude folder", Filter{Exclude: []string{"rules/windows"}}, "c,d"},
		{"exclude glob", Filter{Exclude: []string{"*.yml"}}, ""},
		{"exclude glob on path", Filter{Exclude: []string{"rules/*/c.yml"}}, "a,b,d"},
	}
	for _, tc := range tests {
		var got []string
		for _, r := range tc.f.apply(rules) {
			got = append(got, r.ID)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
}

// TestAppendJSONString: the hand-written encoder (the hot path of --json) writes what
// encoding/json writes without HTML escaping.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `C:\Windows\"x"`, "tab\tnl\ncr\r", "\x00\x1f\x7f", "é→😀", "bad\xffutf8\xc3",
		"\u2028\u2029", "<a&b>", strings.Repeat("x", 300)} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got := string(appendJSONString(nil, s)); got != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("%q: %s, encoding/json %s", s, got, want.String())
		}
	}
	// Every byte that needs escaping at every offset of a word, among plain bytes and
	// after other such bytes (the encoder jumps from word to word and to the first byte
	// that may need a look).
	specials := []string{`\`, `"`, "\x00", "\x1f", "\n", "é", "\xff", "\u2028", "😀", "\x7f", " ", "~"}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		var sb strings.Builder
		for sb.Len() < 40 {
			if rng.IntN(3) == 0 {
				sb.WriteString(specials[rng.IntN(len(specials))])
			} else {
				sb.WriteString("Cx/:9"[rng.IntN(5):][:1])
			}
		}
		s := sb.String()[rng.IntN(8):]
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got := string(appendJSONString([]byte("x"), s)); got != "x"+strings.TrimSuffix(want.String(), "\n") {
			t.Fatalf("%q: %s, encoding/json %s", s, got, want.String())
		}
	}
}

// TestSummaryOutputs (item 9): per-level and per-rule counts, inputs without events,
// and the JSON summary object.
func TestSummaryOutputs(t *testing.T) {
	h := compileText(t, seedRuleText)
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := NewOutput(io.Discard, Text)
	sum, err := h.Run([]Input{jsonInput(t, bitsLine(1, true, t0), bitsLine(2, true, t0), bitsLine(3, false, t0)), FileInput(empty)}, out, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var table, js bytes.Buffer
	sum.WriteTable(&table, false)
	if err := sum.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 files, 3 events, 2 matches", "medium               2", "       2  medium        BITS download [11111111-1111-1111-1111-111111111111]",
		"warning: " + empty + " yielded no events"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var m struct {
		Events  int            `json:"events"`
		Matches int            `json:"matches"`
		ByLevel map[string]int `json:"by_level"`
		ByRule  []RuleCount    `json:"by_rule"`
		Empty   []string       `json:"inputs_without_events"`
	}
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Events != 3 || m.Matches != 2 || m.ByLevel["medium"] != 2 || len(m.ByRule) != 1 || m.ByRule[0].Matches != 2 || len(m.Empty) != 1 {
		t.Errorf("summary %+v", m)
	}
}

// TestEVTXChunksInParallel: one EVTX file splits into one part per chunk, so a single
// large log is decoded and matched by every worker; the output does not depend on how
// many there are.
func TestEVTXChunksInParallel(t *testing.T) {
	p := mdecEVTX(t, "Antivirus", "ID1151-Defender health status.evtx")
	parts := 0
	if err := FileInput(p).Parts(func(pt Part) bool {
		parts++
		r, err := pt.Open()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if parts < 20 {
		t.Errorf("%d parts for a file of 33 chunks", parts)
	}
	h := compileText(t, `title: Defender health
id: 22222222-2222-2222-2222-222222222222
level: low
logsource:
    product: windows
    service: windefend
detection:
    sel:
        EventID: 1151
        RTP state: '%%901'
    condition: sel
`)
	var outs []string
	for _, w := range []int{1, 2, 3} {
		var buf bytes.Buffer
		out := NewOutput(&buf, CSV)
		sum, err := h.Run([]Input{FileInput(p)}, out, Options{Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		out.Close()
		if sum.Events != 455 || sum.Matches == 0 || sum.ReadErrors != 0 {
			t.Errorf("workers %d: %d events, %d matches, %d read errors", w, sum.Events, sum.Matches, sum.ReadErrors)
		}
		outs = append(outs, buf.String())
	}
	if outs[0] != outs[1] || outs[0] != outs[2] {
		t.Error("output depends on the number of workers")
	}
}

// TestJSONLinesLongLine: a line longer than several batches (a 5 MB command line) is
// one event, read whole, and the lines after it keep their numbers in errors.
func TestJSONLinesLongLine(t *testing.T) {
	h := compileText(t, seedRuleText)
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	long := bitsLine(1, true, t0)
	long = strings.Replace(long, `x /transfer j1`, `x /transfer j1 `+strings.Repeat("A", 5*batchBytes), 1)
	var b strings.Builder
	b.WriteString(bitsLine(0, true, t0) + "\n")
	b.WriteString(long + "\n")
	b.WriteString("{broken\n")
	b.WriteString(bitsLine(2, true, t0.Add(time.Second)) + "\n")
	p := filepath.Join(t.TempDir(), "long.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var errs []error
	var buf bytes.Buffer
	out := NewOutput(&buf, JSON)
	sum, err := h.Run([]Input{FileInput(p)}, out, Options{Workers: 2, Report: func(e error) { errs = append(errs, e) }})
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	if sum.Events != 3 || sum.Matches != 3 {
		t.Errorf("%d events, %d matches, want 3 and 3", sum.Events, sum.Matches)
	}
	var le *logread.Error
	if len(errs) != 1 || !errors.As(errs[0], &le) || le.Line != 3 {
		t.Errorf("errors %v, want one at line 3", errs)
	}
	if !strings.Contains(buf.String(), strings.Repeat("A", 5*batchBytes)+`"`) {
		t.Error("the long command line is not in the output whole")
	}
}

// TestPartTimeOrder: within a part, records follow event time, and records of equal
// time keep their order in the input (the sort is stable), whatever the number of
// ties and however long the part.
func TestPartTimeOrder(t *testing.T) {
	h := compileText(t, seedRuleText)
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	// 300 events: times cycle backwards over 7 values, so each time has about 43 ties
	// scattered through the part.
	var lines []string
	type key struct {
		at time.Time
		i  int
	}
	var want []key
	for i := 0; i < 300; i++ {
		at := t0.Add(time.Duration(6-i%7) * time.Second)
		lines = append(lines, bitsLine(i, true, at))
		want = append(want, key{at, i})
	}
	slices.SortStableFunc(want, func(a, b key) int { return a.at.Compare(b.at) })
	var buf bytes.Buffer
	out := NewOutput(&buf, JSON)
	if _, err := h.Run([]Input{jsonInput(t, lines...)}, out, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for k, l := range got {
		if !strings.Contains(l, fmt.Sprintf(`"computer":"pc%d"`, want[k].i)) {
			t.Fatalf("record %d is %s, want pc%d at %s", k, l, want[k].i, want[k].at.Format(time.RFC3339))
		}
	}
}
