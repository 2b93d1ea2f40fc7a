package main

// Tests of issue 15: the CLI driven as a careful (and a careless) user drives it.

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/internal/corpustest"
)

// cli describes one run of the binary: its catalog, working folder and --data.
type cli struct {
	db   string
	data string // "" runs without --data (and without RULEDEX_DATA)
	dir  string
}

// env is the environment of a run: no RULEDEX_DATA, and a default catalog location
// that is not the user's.
func (c cli) env(t *testing.T) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "RULEDEX_DATA=") && !strings.HasPrefix(e, "XDG_DATA_HOME=") && !strings.HasPrefix(e, "XDG_CACHE_HOME=") {
			env = append(env, e)
		}
	}
	return append(env, "XDG_DATA_HOME="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir())
}

func (c cli) cmd(t *testing.T, args ...string) *exec.Cmd {
	pre := []string{"--db", c.db}
	if c.data != "" {
		pre = append(pre, "--data", c.data)
	}
	cmd := exec.Command(cliBin, append(pre, args...)...)
	cmd.Env = c.env(t)
	cmd.Dir = c.dir
	return cmd
}

// run runs the binary and returns stdout, stderr and the exit status.
func (c cli) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := c.cmd(t, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := exitCode(t, cmd.Run())
	return stdout.String(), stderr.String(), code
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// statsOf is what `stats --json` says about the size of a catalog.
type statsOf struct {
	Files              int `json:"files"`
	Rules              int `json:"rules"`
	Errors             int `json:"errors"`
	FileErrors         int `json:"file_errors"`
	WarningDiagnostics int `json:"warning_diagnostics"`
	Roots              []struct {
		Path   string `json:"path"`
		Files  int    `json:"files"`
		Rules  int    `json:"rules"`
		Exists bool   `json:"exists"`
	} `json:"roots"`
	WarningsByCode map[string]int `json:"warnings_by_code"`
}

func (c cli) stats(t *testing.T) statsOf {
	t.Helper()
	out, stderr, code := c.run(t, "stats", "--json")
	if code != 0 {
		t.Fatalf("stats --json: exit %d: %s", code, stderr)
	}
	var st statsOf
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	return st
}

// ingestSummary is the part of `ingest --json` these tests read.
type ingestSummary struct {
	Files     int `json:"files"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Deleted   int `json:"deleted"`
	Skipped   int `json:"skipped"`
	Rules     int `json:"rules"`
	RuleErrs  int `json:"rules_with_errors"`
	FileErrs  int `json:"file_errors"`
	Warnings  int `json:"warnings"`
	TooLarge  []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"too_large"`
	Steps []struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	} `json:"steps"`
	Seconds float64  `json:"seconds"`
	Notes   []string `json:"notes"`
}

func (c cli) ingest(t *testing.T, args ...string) ingestSummary {
	t.Helper()
	out, stderr, code := c.run(t, append([]string{"ingest", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("ingest %v: exit %d: %s", args, code, stderr)
	}
	var s ingestSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("ingest --json: %v\n%s", err, out)
	}
	return s
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// copyCatalog copies a closed catalog file (with its WAL, if any) to a new path.
func copyCatalog(t *testing.T, src, dst string) {
	t.Helper()
	for _, suf := range []string{"", "-wal"} {
		b, err := os.ReadFile(src + suf)
		if errors.Is(err, os.ErrNotExist) && suf != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suf, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Item 1: SIGINT at several points of an ingest. Each run starts from the same old
// catalog (one small folder) and re-ingests the whole Sigma corpus with --force; the
// signal comes while parsing, while storing, and just after the rules were committed
// (while event coverage and neighbors are derived). Whatever the point, the process
// says in one line what it left, exits 130 (or 0 when it had finished), prints no
// SQL, and stats shows the old or the new catalog, never a mix.
func TestCLIInterruptedIngest(t *testing.T) {
	cliSetup(t)
	corpus := corpustest.Dir(t)
	full := cli{db: cliDB, data: corpus}.stats(t)
	base := t.TempDir()
	old := cli{db: filepath.Join(base, "old.db"), data: corpus}
	old.ingest(t, filepath.Join(corpus, "sigma", "mdecrevoisier"))
	oldSt := old.stats(t)
	if oldSt.Rules >= full.Rules || oldSt.Rules == 0 {
		t.Fatalf("old catalog %d rules, new %d: cannot tell them apart", oldSt.Rules, full.Rules)
	}
	const (
		unchanged = "ruledex: interrupted: catalog unchanged"
		saved     = "ruledex: interrupted after the rules were saved; derived data will be completed on next use"
	)
	tests := []struct {
		name        string
		delay       time.Duration // 0: right after the commit
		wantMessage string        // "" accepts either
	}{
		{"while parsing", 300 * time.Millisecond, unchanged},
		{"later", 1500 * time.Millisecond, ""},
		{"later still", 3 * time.Second, ""},
		{"after the commit", 0, saved},
	}
	seen := map[string]bool{}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cli{db: filepath.Join(base, fmt.Sprintf("run%d.db", i)), data: corpus}
			copyCatalog(t, old.db, c.db)
			var stdout, stderr bytes.Buffer
			cmd := c.cmd(t, "ingest", "--force", filepath.Join(corpus, "sigma"))
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// The catalog's shared-memory file appears when ruledex opens it, after its
			// signal handler is in place: a signal before that would just kill it.
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if _, err := os.Stat(c.db + "-shm"); err == nil {
					break
				}
			}
			if tc.delay > 0 {
				time.Sleep(tc.delay)
			} else {
				waitForCommit(t, c.db, oldSt.Rules, done)
			}
			cmd.Process.Signal(syscall.SIGINT)
			code := exitCode(t, <-done)
			msg := strings.TrimSpace(stderr.String())
			st := c.stats(t)
			switch {
			case code == 0:
				t.Logf("finished before the signal")
				if st.Rules != full.Rules {
					t.Errorf("finished ingest: %d rules, want %d", st.Rules, full.Rules)
				}
				return
			case code != exitInterrupted:
				t.Fatalf("exit %d, want 130; stderr:\n%s", code, msg)
			}
			if strings.Count(msg, "\n") != 0 || (msg != unchanged && msg != saved) {
				t.Errorf("stderr is not one of the two one-line messages:\n%s", msg)
			}
			if tc.wantMessage != "" && msg != tc.wantMessage {
				t.Errorf("stderr %q, want %q", msg, tc.wantMessage)
			}
			for _, sqlWord := range []string{"INSERT", "SELECT", "VALUES", "DELETE FROM"} {
				if strings.Contains(msg, sqlWord) {
					t.Errorf("stderr shows SQL: %s", msg)
				}
			}
			seen[msg] = true
			want := oldSt
			if msg == saved {
				want = full
			}
			if st.Rules != want.Rules || st.Files != want.Files {
				t.Errorf("after %q: stats %d files %d rules, want %d and %d (old %d/%d, new %d/%d)", msg,
					st.Files, st.Rules, want.Files, want.Rules, oldSt.Files, oldSt.Rules, full.Files, full.Rules)
			}
			if msg == saved {
				// The next command that shows derived data completes it.
				out, stderr, code := c.run(t, "neighbors", "New PowerShell Instance Created")
				if code != 0 || !strings.Contains(out, "Equivalent") && !strings.Contains(out, "Broader") && !strings.Contains(out, "Stricter") {
					t.Errorf("neighbors after an interrupted derive: exit %d\n%s\n%s", code, out, stderr)
				}
			}
		})
	}
	if !seen[unchanged] || !seen[saved] {
		t.Errorf("the runs did not cover both outcomes: %v", seen)
	}
}

// waitForCommit polls the catalog until its rule count differs from before (the
// ingest committed), or the process ends.
func waitForCommit(t *testing.T, db string, before int, done chan error) {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(`SELECT coalesce(sum(rules), 0) FROM files`).Scan(&n); err == nil && n != before {
			return
		}
		select {
		case err := <-done:
			done <- err
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the ingest never committed")
}

// Item 2: a moved folder. The old path stays listed (as gone) until it is ingested
// again, which empties it, or removed; a source can be removed as a whole; files
// deleted under a root leave the catalog.
func TestCLIMovedFolderAndRemove(t *testing.T) {
	corpus := corpustest.Dir(t)
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	copyTree(t, corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits"), a)
	copyTree(t, corpustest.Path(t, "sigma", "mdecrevoisier", "windows-firewall"), filepath.Join(base, "other"))
	c := cli{db: filepath.Join(base, "c.db"), data: corpus}
	c.ingest(t, a)
	c.ingest(t, "--source-url", "https://github.com/mdecrevoisier/SIGMA-detection-rules", filepath.Join(base, "other"))
	st := c.stats(t)
	before := st.Rules
	if len(st.Roots) != 2 || st.Roots[0].Path != a || !st.Roots[0].Exists || st.Roots[0].Rules == 0 {
		t.Fatalf("roots after the first ingest: %+v", st.Roots)
	}
	inA := st.Roots[0].Rules
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	c.ingest(t, b)
	st = c.stats(t)
	if len(st.Roots) != 3 || st.Roots[0].Path != a || st.Roots[0].Exists || st.Roots[1].Path != b || st.Roots[1].Rules != inA {
		t.Fatalf("roots after moving a to b: %+v", st.Roots)
	}
	out, _, _ := c.run(t, "stats")
	if !strings.Contains(out, a+"  ") || !strings.Contains(out, "no longer exists") {
		t.Errorf("stats does not list the gone root:\n%s", out)
	}
	// Ingesting the old path empties it.
	again := c.ingest(t, a)
	if again.Deleted != inA && again.Deleted < 1 || len(again.Notes) == 0 {
		t.Errorf("ingest of the gone root: %+v", again)
	}
	st = c.stats(t)
	if st.Rules != before || st.WarningsByCode["catalog/duplicate-id"] != 0 || len(st.Roots) != 2 {
		t.Errorf("after ingesting the gone root: %d rules (want %d), duplicate-id %d, roots %+v",
			st.Rules, before, st.WarningsByCode["catalog/duplicate-id"], st.Roots)
	}
	// A deleted file leaves the catalog on re-ingest.
	var one string
	filepath.WalkDir(b, func(p string, d os.DirEntry, err error) error {
		if one == "" && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			one = p
		}
		return nil
	})
	os.Remove(one)
	if s := c.ingest(t, b); s.Deleted != 1 {
		t.Errorf("re-ingest after deleting %s: %d deleted", one, s.Deleted)
	}
	// remove PATH, remove SOURCE, remove of nothing.
	tests := []struct {
		target    string
		code      int
		wantRoots int
	}{
		{b, 0, 1},
		{b, exitNoMatch, 1},
		{"https://github.com/mdecrevoisier/SIGMA-detection-rules", 0, 1}, // a source by its URL
		{filepath.Join(base, "never-ingested"), exitNoMatch, 1},
	}
	for _, tc := range tests {
		out, stderr, code := c.run(t, "remove", tc.target)
		if code != tc.code {
			t.Errorf("remove %s: exit %d, want %d: %s%s", tc.target, code, tc.code, out, stderr)
		}
		if st := c.stats(t); len(st.Roots) != tc.wantRoots {
			t.Errorf("after remove %s: roots %+v", tc.target, st.Roots)
		}
	}
	if st := c.stats(t); st.Rules != 0 {
		t.Errorf("after removing both: %d rules", st.Rules)
	}
}

// controlByte finds a raw control byte (other than \n and \t) or invalid UTF-8 in
// human-readable output.
func controlByte(s string) (int, bool) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return i, true
			}
		}
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r < 0xa0) {
			return i, true
		}
	}
	return 0, false
}

// nasty are the hostile pieces the fuzz-style test mixes into rule files and event
// logs: terminal escapes (colour, title, clear screen, OSC 8 links), bare controls, C1
// controls, invalid UTF-8 and a lone surrogate encoding.
var nasty = []string{
	"\x1b[31m", "\x1b]0;pwned\x07", "\x1b[2J\x1b[H", "\x1b]8;;http://evil/\x1b\\", "\r", "\b\b\b", "\x07",
	"\u009b31m", "\u0085", "\x7f", "\xff\xfe", "\xed\xa0\x80", "\xc3", "ok",
}

// yamlQuote writes s as a YAML double-quoted scalar: controls as escapes (YAML forbids
// them raw), invalid UTF-8 raw (the parser must then report the file, located).
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteByte(s[i])
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 || (r >= 0x7f && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('"')
	return b.String()
}

// Item 3 and the fuzz-style acceptance test: control characters, escape sequences and
// invalid UTF-8 in rule titles, authors, descriptions, field names and values, file
// names and event logs reach no human-readable output raw; JSON output keeps them.
func TestCLIHostileTextIsEscaped(t *testing.T) {
	corpus := corpustest.Dir(t)
	base := t.TempDir()
	rules := filepath.Join(base, "rules")
	os.MkdirAll(rules, 0o755)
	seed := uint32(2026)
	invalid := false        // whether next may use the invalid UTF-8 pieces
	next := func() string { // a deterministic mix of two or three pieces around text
		var b strings.Builder
		for range 2 + seed%2 {
			seed = seed*1664525 + 1013904223
			p := nasty[seed>>8%uint32(len(nasty))]
			if !invalid && !utf8.ValidString(p) {
				p = "\x1b[0m"
			}
			b.WriteString(p)
			b.WriteString("x")
		}
		return b.String()
	}
	type written struct{ id, title, value string }
	var valid []written
	for i := range 24 {
		// Every fourth file carries raw invalid UTF-8: the parser reports it, located.
		invalid = i%4 == 3
		title, author, value := "Evil "+next()+fmt.Sprint(i), next(), "evil"+next()+".exe"
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		body := fmt.Sprintf(`title: %s
id: %s
status: test
author: %s
description: %s
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: %s
        %s: %s
    condition: selection
level: high
`, yamlQuote(title), id, yamlQuote(author), yamlQuote(next()), yamlQuote(value), "Field"+fmt.Sprint(i), yamlQuote(next()))
		name := fmt.Sprintf("rule%d.yml", i)
		if i%6 == 0 {
			name = fmt.Sprintf("rule%d\x1b[31m\r.yml", i) // a hostile file name
		}
		if err := os.WriteFile(filepath.Join(rules, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if !invalid {
			valid = append(valid, written{id, title, value})
		}
	}
	// A KQL file with raw controls in its query, and a broken YAML file with raw escapes.
	os.WriteFile(filepath.Join(rules, "q.kql"), []byte("// \x1b]0;pwned\x07 title\nDeviceProcessEvents\n| where FileName == \"\x1b[31mevil.exe\"\n"), 0o644)
	os.WriteFile(filepath.Join(rules, "broken.yml"), []byte("title: \x1b[2J\ndetection: [\x1b]0;x\x07\ncondition: selection\nlogsource: {product: windows}\n"), 0o644)
	if len(valid) < 5 {
		t.Fatalf("only %d rules with valid UTF-8 text; the generator is broken", len(valid))
	}
	// An event log whose computer names, titles and values carry the same.
	var log bytes.Buffer
	invalid = true
	for i, w := range valid {
		ev := map[string]any{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "host" + next(),
			"Image": `C:\x\` + w.value, "CommandLine": next(), fmt.Sprintf("Field%d", i): next()}
		b, _ := json.Marshal(ev)
		log.Write(b)
		log.WriteByte('\n')
	}
	log.WriteString("{\"EventID\": 1, \"Computer\": \"raw\x1b]0;pwned\x07\xff\"}\n\"\x1b[31m\"\n")
	logFile := filepath.Join(base, "events\x1b[31m.jsonl")
	os.WriteFile(logFile, log.Bytes(), 0o644)

	c := cli{db: filepath.Join(base, "c.db"), data: corpus}
	runs := [][]string{
		{"ingest", rules},
		{"stats"},
		{"stats", "--errors"},
		{"overlap"},
		{"events", "Microsoft-Windows-Sysmon", "1"},
		{"hunt", "--rules", rules, logFile},
		{"hunt", "--rules", rules, "--csv", logFile}, // stderr is human-readable
		{"show", "Evil"},
		{"indicator", "Image", "endswith", "nothing-like-this"},
		{"remove", "\x1b]0;pwned\x07"},
	}
	for _, w := range valid {
		runs = append(runs, []string{"show", w.id}, []string{"indicator", "Image", "endswith", w.value},
			[]string{"neighbors", w.id}, []string{"show", w.title})
	}
	for _, args := range runs {
		out, stderr, code := c.run(t, args...)
		if code != 0 && code != exitNoMatch {
			t.Errorf("ruledex %q: exit %d: %s", args, code, stderr)
		}
		isCSV := len(args) > 2 && args[2] == "--csv"
		for name, s := range map[string]string{"stdout": out, "stderr": stderr} {
			if name == "stdout" && isCSV {
				continue
			}
			if i, bad := controlByte(s); bad {
				t.Errorf("ruledex %q: raw control byte in %s at %d: %q", args, name, i, s[max(0, i-40):min(len(s), i+40)])
			}
		}
	}
	// Escaped, not dropped: the title is recognizable; JSON keeps the exact text.
	for _, w := range valid[:3] {
		out, _, code := c.run(t, "show", w.id)
		if code != 0 || !strings.Contains(out, escapeText(w.title)) {
			t.Errorf("show %s: exit %d; want the escaped title %q in\n%s", w.id, code, escapeText(w.title), out)
		}
		js, _, _ := c.run(t, "show", "--json", w.id)
		var r struct {
			Title string `json:"title"`
		}
		if err := json.Unmarshal([]byte(js), &r); err != nil || r.Title != w.title {
			t.Errorf("show --json %s: title %q, want %q (%v)", w.id, r.Title, w.title, err)
		}
	}
}

// Item 4: exit statuses and flag values as documented.
func TestCLIUsageErrorsAndVersion(t *testing.T) {
	cliSetup(t)
	c := cli{db: cliDB, data: corpustest.Dir(t)}
	tests := []struct {
		args    []string
		code    int
		stderr  string // substring of stderr
		nonJSON bool
	}{
		{[]string{"bogus"}, exitUsage, `unknown command "bogus"`, false},
		{[]string{"export"}, exitUsage, "navigator", false},
		{[]string{"export", "bogus"}, exitUsage, `unknown export format "bogus"`, false},
		{[]string{"export", "navigator", "--severity", "nonsense"}, exitUsage, "critical, high, informational, low, medium", false},
		{[]string{"export", "navigator", "--source", "nonsense"}, exitUsage, "github.com/SigmaHQ/sigma", false},
		{[]string{"export", "navigator", "--language", "bogus"}, exitUsage, "sigma", false},
		{[]string{"indicator", "--transform", "bogus", "Image", "endswith", `\x.exe`}, exitUsage, "windash", false},
		{[]string{"remove"}, exitUsage, "accepts 1 arg", false},
		{[]string{"version", "extra"}, exitUsage, "unknown command", false},
	}
	for _, tc := range tests {
		out, stderr, code := c.run(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) || out != "" {
			t.Errorf("ruledex %q: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.args, code, tc.code, out, stderr, tc.stderr)
		}
	}
	// A filter value in another case means the same value.
	upper, _, code1 := c.run(t, "export", "navigator", "--severity", "HIGH")
	lower, _, code2 := c.run(t, "export", "navigator", "--severity", "high")
	if code1 != 0 || code2 != 0 || upper != lower || !strings.Contains(lower, `"techniqueID"`) {
		t.Errorf("--severity HIGH: exit %d/%d, same output %v", code1, code2, upper == lower)
	}
	// version and --version print the same line, from the build information.
	v1, _, code1 := c.run(t, "version")
	v2, _, code2 := c.run(t, "--version")
	if code1 != 0 || code2 != 0 || v1 != v2 || !regexp.MustCompile(`^ruledex \S+, (revision [0-9a-f]+|revision unknown).*, go1\.\d+`).MatchString(v1) {
		t.Errorf("version: %q (exit %d), --version: %q (exit %d)", v1, code1, v2, code2)
	}
}

// Item 5: labelled counts that agree between ingest and stats, the derived steps in
// the time, and the size limit reported as such (ingest and hunt).
func TestCLISummariesAndSizeLimit(t *testing.T) {
	corpus := corpustest.Dir(t)
	base := t.TempDir()
	rules := filepath.Join(base, "rules")
	copyTree(t, corpustest.Path(t, "sigma", "mdecrevoisier"), rules)
	big := filepath.Join(rules, "huge.yml")
	var b bytes.Buffer
	b.WriteString("title: huge\nlogsource: {product: windows}\ndetection:\n  sel:\n    CommandLine|contains:\n")
	for b.Len() <= 8<<20 {
		b.WriteString("      - '" + strings.Repeat("A", 1000) + "'\n")
	}
	b.WriteString("  condition: sel\n")
	os.WriteFile(big, b.Bytes(), 0o644)

	c := cli{db: filepath.Join(base, "c.db"), data: corpus}
	start := time.Now()
	s := c.ingest(t, rules)
	wall := time.Since(start).Seconds()
	if len(s.TooLarge) != 1 || s.TooLarge[0].Path != big || s.TooLarge[0].Reason != "larger than 8 MiB" {
		t.Errorf("too_large: %+v", s.TooLarge)
	}
	var names []string
	var steps float64
	for _, st := range s.Steps {
		names = append(names, st.Name)
		steps += st.Seconds
	}
	if strings.Join(names, ",") != "event coverage,neighbors" || steps <= 0 || steps > s.Seconds {
		t.Errorf("steps %+v of %.2fs", s.Steps, s.Seconds)
	}
	// The reported time is the command's: most of the wall clock (start-up aside).
	if s.Seconds > wall || s.Seconds < 0.5*wall {
		t.Errorf("ingest says %.2fs, the wall clock %.2fs", s.Seconds, wall)
	}
	st := c.stats(t)
	if st.Errors != s.RuleErrs || st.FileErrors != s.FileErrs || st.WarningDiagnostics != s.Warnings {
		t.Errorf("ingest: %d rules with errors, %d file errors, %d warnings; stats: %d, %d, %d",
			s.RuleErrs, s.FileErrs, s.Warnings, st.Errors, st.FileErrors, st.WarningDiagnostics)
	}
	// The human summary labels each count, and lists the big file.
	os.Chtimes(filepath.Join(rules, "windows-bits"), time.Now(), time.Now())
	out, _, _ := c.run(t, "ingest", "--force", rules)
	for _, want := range []string{
		fmt.Sprintf("%d rules with errors, %d files with file-level errors, %d warning diagnostics", s.RuleErrs, s.FileErrs, s.Warnings),
		"skipped:   " + big + ": larger than 8 MiB",
		"larger than 8 MiB)",
		"(of which event coverage ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ingest output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = c.run(t, "stats")
	if !strings.Contains(out, fmt.Sprintf("%d rules with errors", st.Errors)) || !strings.Contains(out, fmt.Sprintf("%d warning diagnostics", s.Warnings)) {
		t.Errorf("stats labels:\n%s", out)
	}
	// hunt applies the same limit, without echoing the file.
	_, stderr, code := c.run(t, "hunt", "--rules", big+","+filepath.Join(rules, "windows-bits"), corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID4688-BITS transfer initiated.evtx"))
	if code != 0 || !strings.Contains(stderr, "skipped: larger than 8 MiB") || len(stderr) > 4096 {
		t.Errorf("hunt --rules huge: exit %d, %d bytes of stderr: %.300s", code, len(stderr), stderr)
	}
}

// Item 6: the parse cache does not depend on the executable. A second binary (another
// size and time, as `go run` makes) re-ingests an unchanged folder without parsing.
func TestCLIParseCacheSurvivesRebuild(t *testing.T) {
	corpus := corpustest.Dir(t)
	base := t.TempDir()
	c := cli{db: filepath.Join(base, "c.db"), data: corpus}
	dir := corpustest.Path(t, "sigma", "mdecrevoisier")
	first := c.ingest(t, dir)
	bin, err := os.ReadFile(cliBin)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(base, "ruledex-other")
	if err := os.WriteFile(other, append(bin, make([]byte, 4096)...), 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd := exec.Command(other, "--db", c.db, "--data", corpus, "ingest", "--json", dir)
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	var again ingestSummary
	json.Unmarshal(stdout.Bytes(), &again)
	if first.Changed == 0 || again.Changed != 0 || again.Unchanged != first.Changed {
		t.Errorf("first ingest %d changed; with another binary %d changed, %d unchanged", first.Changed, again.Changed, again.Unchanged)
	}
}

// Item 7: every --help example runs against the corpus and succeeds. Examples run in a
// copy of the test catalog, from the checkout (as the README runs them); each remove
// example gets its own fresh copy; `| jq` is checked as "stdout is JSON".
func TestCLIHelpExamplesRun(t *testing.T) {
	cliSetup(t)
	corpus := corpustest.Dir(t)
	base := t.TempDir()
	c := cli{db: filepath.Join(base, "c.db"), dir: mustGetwd(t, 2)} // the checkout, as the README runs
	rel := corpus
	copyCatalog(t, cliDB, c.db)
	type example struct{ cmd, line string }
	var examples, last []example
	for _, cmd := range root.Commands() {
		for _, sub := range append([]*cobra.Command{cmd}, cmd.Commands()...) {
			for _, line := range strings.Split(sub.Example, "\n") {
				line = strings.TrimSpace(line)
				if line == "" {
					continue
				}
				if sub.Name() == "remove" {
					last = append(last, example{sub.CommandPath(), line})
				} else {
					examples = append(examples, example{sub.CommandPath(), line})
				}
			}
		}
	}
	if len(examples) < 20 {
		t.Fatalf("only %d examples found", len(examples))
	}
	for _, cmd := range []string{"ruledex overlap", "ruledex export", "ruledex export navigator", "ruledex remove", "ruledex version", "ruledex show"} {
		found := false
		for _, e := range append(examples, last...) {
			found = found || e.cmd == cmd
		}
		if !found {
			t.Errorf("%s has no example", cmd)
		}
	}
	for i, e := range append(examples, last...) {
		t.Run(e.line, func(t *testing.T) {
			c := c
			if i >= len(examples) {
				c.db = filepath.Join(base, fmt.Sprintf("remove%d.db", i))
				copyCatalog(t, cliDB, c.db)
			}
			line := e.line
			if !strings.HasPrefix(line, "ruledex ") {
				t.Fatalf("example of %s does not start with ruledex: %s", e.cmd, line)
			}
			pipe, redirect := "", ""
			if i := strings.Index(line, " | "); i > 0 {
				line, pipe = line[:i], line[i+3:]
			}
			if i := strings.Index(line, " > "); i > 0 {
				line, redirect = line[:i], strings.TrimSpace(line[i+3:])
			}
			args := shellWords(t, strings.TrimPrefix(line, "ruledex "))
			for i, a := range args {
				args[i] = strings.Replace(a, "../shared/corpus", rel, 1)
				args[i] = strings.Replace(args[i], "~/src/sigma-fork/rules", rel+"/sigma/mdecrevoisier", 1)
				if a == "--out" && i+1 < len(args) {
					args[i+1] = filepath.Join(base, args[i+1])
				}
			}
			if args[0] == "serve" || len(args) > 2 && args[2] == "serve" {
				runServeExample(t, c, args)
				return
			}
			out, stderr, code := c.run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\nstderr: %.2000s", code, stderr)
			}
			if strings.HasPrefix(pipe, "jq") && !json.Valid([]byte(out)) && !jsonLines(out) {
				t.Errorf("piped to jq but stdout is not JSON: %.300s", out)
			}
			if redirect != "" && out == "" {
				t.Errorf("redirected to %s but printed nothing", redirect)
			}
		})
	}
}

func jsonLines(s string) bool {
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if !json.Valid([]byte(l)) {
			return false
		}
	}
	return true
}

func mustGetwd(t *testing.T, up int) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for range up {
		wd = filepath.Dir(wd)
	}
	return wd
}

// runServeExample starts a serve example on a free port, waits until it serves, and
// stops it with SIGINT: it must exit 0.
func runServeExample(t *testing.T, c cli, args []string) {
	t.Helper()
	for i, a := range args {
		if a == "--addr" && i+1 < len(args) {
			args[i+1] = "127.0.0.1:0"
		}
	}
	if !containsStr(args, "--addr") {
		args = append(args, "--addr", "127.0.0.1:0")
	}
	cmd := c.cmd(t, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan bool, 1)
	var logs bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stderr.Read(buf)
			logs.Write(buf[:n])
			if bytes.Contains(logs.Bytes(), []byte("msg=serving")) {
				ready <- true
				io.Copy(io.Discard, stderr)
				return
			}
			if err != nil {
				ready <- false
				return
			}
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("serve ended before serving:\n%s", logs.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("serve did not start")
	}
	cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd.Wait()); code != 0 {
		t.Errorf("serve stopped with exit %d", code)
	}
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// shellWords splits an example line as sh would: single and double quotes, no
// expansions.
func shellWords(t *testing.T, s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == ' ':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unterminated quote in %s", s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// Item 7: a path through a symlink finds the rule ingest recorded under the resolved path.
func TestCLIShowPathThroughSymlink(t *testing.T) {
	cliSetup(t)
	corpus := corpustest.Dir(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(filepath.Join(corpus, "sigma", "mdecrevoisier"), link); err != nil {
		t.Fatal(err)
	}
	c := cli{db: cliDB, data: corpus}
	for _, p := range []string{
		filepath.Join(link, "windows-bits", "win-os-BITS abuse for payload download (command).yaml"),
		filepath.Join(corpus, "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml"),
	} {
		out, stderr, code := c.run(t, "show", "--json", p)
		if code != 0 || !strings.Contains(out, `"title": "BITS payload downloaded via commandline"`) {
			t.Errorf("show %s: exit %d: %s", p, code, stderr)
		}
	}
}

// Item 8: modifier spellings users type, and the nearest existing keys when nothing
// matches exactly.
func TestCLIIndicatorSpellingsAndHints(t *testing.T) {
	cliSetup(t)
	c := cli{db: cliDB, data: corpustest.Dir(t)}
	total := func(args ...string) int {
		out, stderr, code := c.run(t, append([]string{"indicator", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("indicator %q: exit %d: %s", args, code, stderr)
		}
		var r struct {
			Total int `json:"total"`
		}
		json.Unmarshal([]byte(out), &r)
		return r.Total
	}
	want := total("Image", "ends_with", `\bitsadmin.exe`)
	if want < 10 {
		t.Fatalf("only %d rules test Image ends_with bitsadmin.exe", want)
	}
	for _, kind := range []string{"endswith", "|endswith", "ENDSWITH", "ends-with"} {
		if got := total("Image", kind, `\bitsadmin.exe`); got != want {
			t.Errorf("kind %q: %d rules, want %d", kind, got, want)
		}
	}
	if a, b := total("CommandLine", "contains", "/transfer"), total("CommandLine", "|contains", "/transfer"); a != b || a == 0 {
		t.Errorf("contains %d, |contains %d", a, b)
	}
	_, stderr, code := c.run(t, "indicator", "Image", "endswith", "bitsadmin.exe")
	hint := fmt.Sprintf("Image ends_with \\bitsadmin.exe — %d rules", want)
	if code != exitNoMatch || !strings.Contains(stderr, hint) {
		t.Errorf("indicator Image endswith bitsadmin.exe: exit %d, stderr lacks %q:\n%s", code, hint, stderr)
	}
}

// Item 9: every JSON-lines line that is not an object is reported with its number.
func TestCLIJSONLinesReportsEveryNonObject(t *testing.T) {
	dir := t.TempDir()
	lines := []string{`{"EventID": 1, "Image": "C:\\a.exe"}`, `"a string"`, `null`, `42`, `true`, `{"EventID": 2}`, `[1, 2]`, `{"EventID": 3}`}
	f := filepath.Join(dir, "x.jsonl")
	os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	c := cli{db: filepath.Join(dir, "c.db")}
	out, stderr, code := c.run(t, "hunt", "--rules", corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits"), "--json", f)
	if code != 0 {
		t.Fatalf("hunt: exit %d: %s", code, stderr)
	}
	_ = out
	for _, n := range []int{2, 3, 4, 5, 7} {
		if !strings.Contains(stderr, fmt.Sprintf("x.jsonl:%d ", n)) {
			t.Errorf("line %d (%s) not reported:\n%s", n, lines[n-1], stderr)
		}
	}
	for _, n := range []int{1, 6, 8} {
		if strings.Contains(stderr, fmt.Sprintf("x.jsonl:%d ", n)) {
			t.Errorf("object line %d reported:\n%s", n, stderr)
		}
	}
}

// Item 10: serve, events and export on a catalog ingested with --data need no --data.
func TestCLIRemembersDataFolder(t *testing.T) {
	cliSetup(t)
	c := cli{db: cliDB} // no --data, no RULEDEX_DATA
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"events"}, "Microsoft-Windows-Sysmon"},
		{[]string{"events", "sysmon", "1"}, "Image"},
		{[]string{"export", "navigator"}, `"techniqueID"`},
		{[]string{"show", "BITS payload downloaded via commandline"}, "Microsoft-Windows-Security-Auditing"},
	}
	for _, tc := range tests {
		out, stderr, code := c.run(t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("ruledex %q without --data: exit %d, want %q in output: %.300s %s", tc.args, code, tc.want, out, stderr)
		}
	}
	runServeExample(t, c, []string{"serve"})
}

// Item 1: database errors in plain words, never SQL.
func TestCLICatalogErrorsInPlainWords(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "notes.txt")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a database, just some notes\n"), 200), 0o644)
	fileAsDir := filepath.Join(dir, "file")
	os.WriteFile(fileAsDir, []byte("x"), 0o644)
	rules := corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits")
	tests := []struct {
		name string
		db   string
		args []string
		want string
	}{
		{"stats on a text file", garbage, []string{"stats"}, "not a catalog file"},
		{"ingest into a text file", garbage, []string{"ingest", rules}, "not a catalog file"},
		{"catalog under a regular file", filepath.Join(fileAsDir, "c.db"), []string{"ingest", rules}, "not a directory"},
	}
	for _, tc := range tests {
		_, stderr, code := cli{db: tc.db}.run(t, tc.args...)
		if code != exitFailure || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q, want one line with %q", tc.name, code, stderr, tc.want)
		}
		for _, w := range []string{"SELECT", "INSERT", "PRAGMA", "VALUES"} {
			if strings.Contains(stderr, w) {
				t.Errorf("%s: SQL in %q", tc.name, stderr)
			}
		}
	}
	if b, _ := os.ReadFile(garbage); !bytes.HasPrefix(b, []byte("not a database")) {
		t.Errorf("the text file was changed")
	}
}

// Item 5: on a terminal, the seconds after the progress bar reaches 100% say what runs.
// script(1) gives ruledex a pseudo-terminal, as a user's shell would.
func TestCLIProgressShowsDerivedSteps(t *testing.T) {
	corpus := corpustest.Dir(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script(1) (util-linux) is needed to give ruledex a terminal: %v", err)
	}
	db := filepath.Join(t.TempDir(), "c.db")
	line := fmt.Sprintf("%q --db %q --data %q ingest %q", cliBin, db, corpus, filepath.Join(corpus, "sigma", "mdecrevoisier"))
	cmd := exec.Command("script", "-qec", line, "/dev/null")
	cmd.Env = cli{}.env(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s := string(out)
	ingest := strings.Index(s, "ingest")
	events := strings.Index(s, "deriving: event coverage")
	neighbors := strings.Index(s, "deriving: neighbors")
	summary := strings.Index(s, "time:")
	if ingest < 0 || events < ingest || neighbors < events || summary < neighbors {
		t.Errorf("terminal output lacks, in order, the bar, the derived steps and the summary (%d %d %d %d):\n%q", ingest, events, neighbors, summary, s)
	}
}
