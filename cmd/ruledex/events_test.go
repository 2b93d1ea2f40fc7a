package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/winevent"
)

// events runs `ruledex events args...` in-process against db and returns its output
// and exit code.
func events(t *testing.T, db string, asJSON bool, args ...string) (string, int) {
	t.Helper()
	oldDB, oldData := globals.db, globals.data
	defer func() { globals.db, globals.data = oldDB, oldData }()
	globals.db, globals.data = db, corpustest.Dir(t)
	var buf bytes.Buffer
	err := runEvents(context.Background(), &buf, args, asJSON, 20)
	code := 0
	if err != nil {
		code = exitFailure
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return buf.String(), code
}

// TestEventsWalkAll renders every provider and event page, text and JSON, without a
// catalog, and checks the headline counts against the data's README.
func TestEventsWalkAll(t *testing.T) {
	noDB := filepath.Join(t.TempDir(), "none.db")
	wc, err := winevent.Load(winevent.Dir(corpustest.Dir(t)))
	if err != nil {
		t.Fatal(err)
	}
	out, code := events(t, noDB, true)
	var idx struct {
		Providers []providerJSON `json:"providers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &idx) != nil || len(idx.Providers) != len(wc.Providers()) {
		t.Fatalf("index: code %d\n%s", code, out)
	}
	pages := 0
	for _, p := range wc.Providers() {
		for _, asJSON := range []bool{false, true} {
			out, code := events(t, noDB, asJSON, p.Slug)
			if code != 0 || !strings.Contains(out, p.Name) {
				t.Errorf("provider %s: code %d", p.Name, code)
			}
			pages++
			for _, e := range p.Events {
				out, code := events(t, noDB, asJSON, p.Name, fmt.Sprint(e.ID))
				if code != 0 || !strings.Contains(out, e.Title[:min(len(e.Title), 20)]) {
					t.Errorf("event %s %d: code %d", p.Name, e.ID, code)
				}
				if asJSON && !json.Valid([]byte(out)) {
					t.Errorf("event %s %d: invalid JSON", p.Name, e.ID)
				}
				pages++
			}
		}
	}
	t.Logf("%d pages rendered", pages)
	out, _ = events(t, noDB, false, "microsoft-windows-sysmon")
	if !strings.Contains(out, "30 events across 1 channel") {
		t.Errorf("Sysmon headline missing:\n%s", out[:200])
	}
	out, _ = events(t, noDB, false, "Microsoft-Windows-Security-Auditing")
	if !strings.Contains(out, "392 events across 1 channel") {
		t.Errorf("Security-Auditing headline missing")
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"no-such-provider"}, exitNoMatch},
		{[]string{"sysmon", "9999"}, exitNoMatch},
		{[]string{"sysmon", "one"}, exitUsage},
		{[]string{"sysmon"}, 0},              // a unique part of a name
		{[]string{"microsoft"}, exitNoMatch}, // ambiguous part
	} {
		if _, code := events(t, noDB, false, tc.args...); code != tc.code {
			t.Errorf("events %v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
	globals.data = ""
	var buf bytes.Buffer
	if err := runEvents(context.Background(), &buf, nil, false, 20); err == nil {
		t.Error("events without --data succeeded")
	}
}

// TestEventsRuleCounts ingests three real rules and checks the counts the event pages
// show against what the rules test (worked out by hand from the YAML):
//   - the seed tests NewProcessName and CommandLine: Security 4688 only;
//   - the sticky-keys rule tests ParentImage, Image, CommandLine: Sysmon 1 and 4688;
//   - the bitsadmin rule tests Image, OriginalFileName, CommandLine: Sysmon 1 only.
func TestEventsRuleCounts(t *testing.T) {
	corpus := corpustest.Dir(t)
	db := filepath.Join(t.TempDir(), "c.db")
	oldDB, oldData := globals.db, globals.data
	globals.db, globals.data = db, corpus
	cat, err := openCatalog(false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ingestPaths(context.Background(), cat, []string{
		filepath.Join(corpus, "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml"),
		filepath.Join(corpus, "sigma", "sigmahq", "rules", "windows", "process_creation", "proc_creation_win_cmd_sticky_key_like_backdoor_execution.yml"),
		filepath.Join(corpus, "sigma", "sigmahq", "rules", "windows", "process_creation", "proc_creation_win_bitsadmin_download.yml"),
	}, ingestOptions{})
	cat.Close()
	globals.db, globals.data = oldDB, oldData
	if err != nil {
		t.Fatal(err)
	}
	type page struct {
		Rules  int `json:"rules"`
		Fields []struct {
			Name  string `json:"name"`
			Rules int    `json:"rules"`
		} `json:"fields"`
		Indicators []struct {
			Field string `json:"field"`
			Kind  string `json:"kind"`
			Value string `json:"value"`
			Rules int    `json:"rules"`
		} `json:"common_indicators"`
	}
	read := func(args ...string) page {
		out, code := events(t, db, true, args...)
		var p page
		if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
			t.Fatalf("events %v: code %d\n%s", args, code, out)
		}
		return p
	}
	counts := func(p page) map[string]int {
		m := map[string]int{}
		for _, f := range p.Fields {
			if f.Rules > 0 {
				m[f.Name] = f.Rules
			}
		}
		return m
	}
	s1 := read("Microsoft-Windows-Sysmon", "1")
	if want := map[string]int{"Image": 2, "CommandLine": 2, "ParentImage": 1, "OriginalFileName": 1}; s1.Rules != 2 || fmt.Sprint(counts(s1)) != fmt.Sprint(want) {
		t.Errorf("Sysmon 1: %d rules, fields %v, want 2 and %v", s1.Rules, counts(s1), want)
	}
	sec := read("Microsoft-Windows-Security-Auditing", "4688")
	if want := map[string]int{"NewProcessName": 2, "CommandLine": 2, "ParentProcessName": 1}; sec.Rules != 2 || fmt.Sprint(counts(sec)) != fmt.Sprint(want) {
		t.Errorf("4688: %d rules, fields %v, want 2 and %v", sec.Rules, counts(sec), want)
	}
	// On 4688 the seed's \bitsadmin.exe is tested by the seed alone (the bitsadmin rule
	// needs OriginalFileName, so it is not a 4688 rule).
	found := false
	for _, in := range sec.Indicators {
		if in.Field == "NewProcessName" && in.Kind == "ends_with" && in.Value == `\bitsadmin.exe` {
			found = in.Rules == 1
		}
	}
	if !found {
		t.Errorf("4688 indicators: %+v", sec.Indicators)
	}
	out, _ := events(t, db, false)
	if !strings.Contains(out, "Microsoft-Windows-Sysmon") || strings.Contains(out, "need a catalog") {
		t.Errorf("index with catalog:\n%s", out)
	}
	// --field lists the rules behind a field count: on 4688, ParentProcessName is the
	// sticky-keys rule's ParentImage.
	globals.db, globals.data = db, corpus
	var buf bytes.Buffer
	err = runEventRules(context.Background(), &buf, []string{"security-auditing", "4688"}, "parentprocessname", false)
	globals.db, globals.data = oldDB, oldData
	if err != nil || !strings.Contains(buf.String(), "1 rule testing ParentProcessName") || !strings.Contains(buf.String(), "Sticky") {
		t.Errorf("--field: %v\n%s", err, buf.String())
	}
}
