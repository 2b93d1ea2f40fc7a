package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

// hunt runs the hunt command in-process with the corpus as --data.
func hunt(t *testing.T, args []string, o huntOptions) (stdout, stderr string, err error) {
	t.Helper()
	if !strings.HasPrefix(os.Getenv("XDG_CACHE_HOME"), os.TempDir()) {
		// The rule cache goes to a test folder (the test's own when it set one), never
		// the user's.
		t.Setenv("XDG_CACHE_HOME", t.TempDir())
	}
	prev := globals.data
	globals.data = corpustest.Dir(t)
	defer func() { globals.data = prev }()
	if o.workers == 0 {
		o.workers = runtime.GOMAXPROCS(0)
	}
	var out, errb bytes.Buffer
	err = runHunt(&out, &errb, args, o)
	return out.String(), errb.String(), err
}

func seedRulePath(t *testing.T) string {
	return corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml")
}

func seedEVTX(t *testing.T) string {
	return corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID4688-BITS transfer initiated.evtx")
}

func jsonRecords(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON object per line: %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestHuntSeedJSON(t *testing.T) {
	out, stderr, err := hunt(t, []string{seedEVTX(t)}, huntOptions{rules: []string{seedRulePath(t)}, json: true})
	if err != nil {
		t.Fatalf("hunt: %v\n%s", err, stderr)
	}
	recs := jsonRecords(t, out)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1:\n%s", len(recs), out)
	}
	r := recs[0]
	var keys []string
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "channel,computer,event_id,fields,file,level,rule_id,time,title" {
		t.Errorf("keys %s", got)
	}
	if r["title"] != "BITS payload downloaded via commandline" || r["level"] != "medium" || r["channel"] != "Security" ||
		r["event_id"] != float64(4688) || r["computer"] != "jump01.offsec.lan" || !strings.HasPrefix(r["time"].(string), "2021-02-22T23:07:20") {
		t.Errorf("record %v", r)
	}
	fields, _ := r["fields"].(map[string]any)
	if !strings.HasSuffix(strings.ToLower(fields["NewProcessName"].(string)), `\bitsadmin.exe`) ||
		!strings.Contains(fields["CommandLine"].(string), "/transfer") {
		t.Errorf("fields %v", fields)
	}
	if !strings.Contains(stderr, "1 file, 2 events, 1 match") || !strings.Contains(stderr, "rules: 1 loaded, 0 skipped") {
		t.Errorf("summary:\n%s", stderr)
	}
}

func TestHuntJSONLinesAndCSV(t *testing.T) {
	dir := t.TempDir()
	lines := `{"EventID":4688,"NewProcessName":"C:\\Windows\\System32\\bitsadmin.exe","CommandLine":"bitsadmin /download /transfer j http://x/y c:\\y"}
{"EventID":4688,"NewProcessName":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd /c dir"}
`
	p := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(p, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := hunt(t, []string{p}, huntOptions{rules: []string{seedRulePath(t)}, csv: true})
	if err != nil {
		t.Fatalf("hunt: %v\n%s", err, stderr)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 2 || rows[0] != "rule_id,title,level,time,computer,channel,event_id,file,fields" {
		t.Fatalf("csv:\n%s", out)
	}
	if !strings.Contains(rows[1], "BITS payload downloaded via commandline,medium,") || !strings.Contains(rows[1], ",4688,") {
		t.Errorf("row %q", rows[1])
	}
}

func TestHuntMinLevel(t *testing.T) {
	_, stderr, err := hunt(t, []string{seedEVTX(t)}, huntOptions{rules: []string{seedRulePath(t)}, json: true, minLevel: "high"})
	// The medium seed rule is filtered out, so nothing is loaded: that is a failure to report.
	if err == nil || !strings.Contains(stderr, "rules: 0 loaded") {
		t.Errorf("err %v, stderr:\n%s", err, stderr)
	}
	out, _, err := hunt(t, []string{seedEVTX(t)}, huntOptions{rules: []string{seedRulePath(t)}, json: true, minLevel: "medium"})
	if err != nil || len(jsonRecords(t, out)) != 1 {
		t.Errorf("min-level medium: err %v, out %s", err, out)
	}
}

// A damaged EVTX gives a located error; the other inputs are still hunted and the exit
// status stays 0. A missing input makes the status 1, after hunting the rest.
func TestHuntBadInput(t *testing.T) {
	data, err := os.ReadFile(seedEVTX(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := append([]byte(nil), data...)
	// Overwrite the middle of the first chunk's records.
	for i := 4096 + 600; i < 4096+900; i++ {
		bad[i] = 0xA5
	}
	badPath := filepath.Join(dir, "damaged.evtx")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	truncPath := filepath.Join(dir, "truncated.evtx")
	if err := os.WriteFile(truncPath, data[:4096+700], 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := hunt(t, []string{badPath, truncPath, seedEVTX(t)}, huntOptions{rules: []string{seedRulePath(t)}, json: true})
	if err != nil {
		t.Fatalf("damaged inputs should not fail the hunt: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "damaged.evtx") || !strings.Contains(stderr, "truncated.evtx") {
		t.Errorf("no located errors for the damaged files:\n%s", stderr)
	}
	if n := len(jsonRecords(t, out)); n < 1 {
		t.Errorf("the intact file's match is missing:\n%s", out)
	}
	_, stderr, err = hunt(t, []string{filepath.Join(dir, "missing.evtx"), seedEVTX(t)}, huntOptions{rules: []string{seedRulePath(t)}, json: true})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFailure || !strings.Contains(stderr, "1 match") {
		t.Errorf("missing input: err %v, stderr:\n%s", err, stderr)
	}
}

func TestHuntAggregation(t *testing.T) {
	dir := t.TempDir()
	ruleText := `title: Many processes on one host
id: 22222222-2222-2222-2222-222222222222
level: high
logsource:
  product: windows
  category: process_creation
detection:
  sel:
    Image|endswith: '.exe'
  timeframe: 5m
  condition: sel | count() by Computer > 2
`
	rp := filepath.Join(dir, "agg.yml")
	if err := os.WriteFile(rp, []byte(ruleText), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, host := range []string{"pc1", "pc2", "pc1", "pc1"} {
		b.WriteString(`{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Image":"C:\\x.exe","Computer":"` + host +
			`","TimeCreated":"2024-05-01T10:00:0` + string(rune('0'+i)) + `Z"}` + "\n")
	}
	ep := filepath.Join(dir, "ev.jsonl")
	if err := os.WriteFile(ep, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := hunt(t, []string{ep}, huntOptions{rules: []string{rp}, json: true})
	if err != nil {
		t.Fatalf("hunt: %v\n%s", err, stderr)
	}
	recs := jsonRecords(t, out)
	if len(recs) != 1 {
		t.Fatalf("want one aggregation alert (base matches suppressed), got:\n%s", out)
	}
	f := recs[0]["fields"].(map[string]any)
	if recs[0]["computer"] != "pc1" || f["count"] != "3" {
		t.Errorf("alert %v", recs[0])
	}
}

// A folder holding a regression case's EVTX and evtx_dump JSON: the case's rule fires
// once from each, and the non-event info.yml is ignored.
func TestHuntFolderEVTXAndJSON(t *testing.T) {
	dir := corpustest.Path(t, "regression", "regression_data", "rules-emerging-threats", "2026", "Exploits", "RedSun",
		"win_defender_exploit_redsun_tiering_engine_detected_as_eicar")
	rulePath := corpustest.Path(t, "sigma", "sigmahq", "rules-emerging-threats", "2026", "Exploits", "RedSun",
		"win_defender_exploit_redsun_tiering_engine_detected_as_eicar.yml")
	out, stderr, err := hunt(t, []string{dir}, huntOptions{rules: []string{rulePath}, json: true})
	if err != nil {
		t.Fatalf("hunt: %v\n%s", err, stderr)
	}
	recs := jsonRecords(t, out)
	files := map[string]bool{}
	for _, r := range recs {
		if r["rule_id"] != "a7c3e5f2-8b1d-4e9a-b6c2-3d7f5e8a9b4c" || r["event_id"] != float64(1119) {
			t.Errorf("record %v", r)
		}
		files[filepath.Ext(r["file"].(string))] = true
	}
	if len(recs) != 2 || !files[".evtx"] || !files[".json"] {
		t.Errorf("want one match from the .evtx and one from the .json, got:\n%s", out)
	}
	if !strings.Contains(stderr, "2 files, 2 events") {
		t.Errorf("summary:\n%s", stderr)
	}
}

// TestHuntFlagsAndSilence (issue 13, items 6 and 9): a symlinked log folder is hunted;
// a folder without events warns and exits 1; -o, --json-summary and --timeline write
// where they are told.
func TestHuntFlagsAndSilence(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(seedEVTX(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logs, "seed.evtx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(logs, link); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "empty")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	outFile, sumFile := filepath.Join(dir, "hits.jsonl"), filepath.Join(dir, "summary.json")
	tests := []struct {
		name       string
		args       []string
		o          huntOptions
		exit       int // 0 for no error
		stdoutRecs int
		stderrHas  string
	}{
		{"symlinked folder", []string{link}, huntOptions{json: true}, 0, 1, "1 file, 2 events, 1 match"},
		{"folder without events", []string{emptyDir}, huntOptions{json: true}, exitFailure, 0, "no .evtx, .json, .jsonl or .ndjson file"},
		{"-o and --json-summary", []string{seedEVTX(t)}, huntOptions{json: true, output: outFile, summary: sumFile}, 0, 0, "1 match"},
		{"timeline csv", []string{link}, huntOptions{timeline: "csv"}, 0, 2, "1 match"},
		{"excluded by technique", []string{link}, huntOptions{json: true, tags: []string{"T1003"}}, exitFailure, 0, "rules: 0 loaded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.rules = []string{seedRulePath(t)}
			out, stderr, err := hunt(t, tc.args, tc.o)
			var ee *exitError
			switch {
			case tc.exit == 0 && err != nil:
				t.Fatalf("hunt: %v\n%s", err, stderr)
			case tc.exit != 0 && (!errors.As(err, &ee) || ee.code != tc.exit):
				t.Fatalf("err %v, want exit %d\n%s", err, tc.exit, stderr)
			}
			if got := len(strings.Split(strings.TrimSpace(out), "\n")); strings.TrimSpace(out) == "" && tc.stdoutRecs != 0 || out != "" && got != tc.stdoutRecs {
				t.Errorf("stdout has %d lines, want %d:\n%s", got, tc.stdoutRecs, out)
			}
			if !strings.Contains(stderr, tc.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderrHas, stderr)
			}
		})
	}
	hits, err := os.ReadFile(outFile)
	if err != nil || len(jsonRecords(t, string(hits))) != 1 {
		t.Errorf("-o file: %v %q", err, hits)
	}
	var sum struct {
		Events  int `json:"events"`
		Matches int `json:"matches"`
	}
	b, err := os.ReadFile(sumFile)
	if err != nil || json.Unmarshal(b, &sum) != nil || sum.Events != 2 || sum.Matches != 1 {
		t.Errorf("--json-summary: %v %s", err, b)
	}
}

// The second hunt over the same rules reads them from the rule cache and prints
// exactly what a hunt without the cache prints; an edited rule is read again.
func TestHuntRuleCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	rules := t.TempDir()
	for _, f := range []string{seedRulePath(t), corpustest.Path(t, "sigma", "mdecrevoisier", "windows-os", "win-os-brutforce enumeration with unexisting users.yaml")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(rules, filepath.Base(f)), b, 0o644)
	}
	events := []string{seedEVTX(t)}
	o := huntOptions{rules: []string{rules}, json: true}
	want, _, err := hunt(t, events, huntOptions{rules: o.rules, json: true, noCache: true})
	if err != nil || len(jsonRecords(t, want)) != 1 {
		t.Fatalf("hunt --no-cache: %v\n%s", err, want)
	}
	for i := 0; i < 2; i++ {
		got, _, err := hunt(t, events, o)
		if err != nil || got != want {
			t.Errorf("run %d with the cache: %v\n%s\nwant\n%s", i, err, got, want)
		}
	}
	if ms, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "ruledex", "hunt-rules", "*.rules")); len(ms) != 1 {
		t.Errorf("cache files %v, want one", ms)
	}
	seed := filepath.Join(rules, filepath.Base(seedRulePath(t)))
	b, _ := os.ReadFile(seed)
	os.WriteFile(seed, []byte(strings.Replace(string(b), "title: BITS payload downloaded via commandline", "title: Edited BITS rule", 1)), 0o644)
	got, _, err := hunt(t, events, o)
	if err != nil || !strings.Contains(got, `"title":"Edited BITS rule"`) {
		t.Errorf("after editing the rule: %v\n%s", err, got)
	}
}

// TestHuntAbsentFields: the summary names the rules that test fields their Sysmon events
// never carry (a hunter over raw Sysmon logs would wait for them in vain), in the table
// and in --json-summary, and only those.
func TestHuntAbsentFields(t *testing.T) {
	python := corpustest.Path(t, "sigma", "sigmahq", "rules", "windows", "network_connection", "net_connection_win_python.yml")
	sumFile := filepath.Join(t.TempDir(), "summary.json")
	_, stderr, err := hunt(t, []string{seedEVTX(t)}, huntOptions{json: true, summary: sumFile,
		rules: []string{seedRulePath(t), python}})
	if err != nil {
		t.Fatalf("hunt: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "rules: 2 loaded, 0 skipped, 1 testing fields their Sysmon events never carry (--verbose lists them)") {
		t.Errorf("summary table:\n%s", stderr)
	}
	var sum struct {
		Absent []string `json:"rules_testing_absent_fields"`
	}
	b, err := os.ReadFile(sumFile)
	if err != nil || json.Unmarshal(b, &sum) != nil {
		t.Fatalf("--json-summary: %v %s", err, b)
	}
	want := []string{python + " (Python Initiated Connection): CommandLine, ParentImage not in Microsoft-Windows-Sysmon 3"}
	if !slices.Equal(sum.Absent, want) {
		t.Errorf("rules_testing_absent_fields %q, want %q", sum.Absent, want)
	}
}
