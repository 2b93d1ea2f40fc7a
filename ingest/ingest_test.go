package ingest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

// fakeParser reads a tiny line format so catalog behaviour can be tested with
// hand-built IR, independent of any real language parser:
//
//	rule <id> <title words...>     starts a rule
//	pred <field> <kind> <value>    adds a predicate to the rule's only stage
//	not <field> <kind> <value>     adds an exclusion stage
//	diag <code>                    adds an error diagnostic to the rule
//	panic                          makes Parse panic
//
// Files must start with "#fake <language>".
type fakeParser struct{ lang rule.Language }

func (p fakeParser) Language() rule.Language { return p.lang }

func (p fakeParser) Detect(path string, data []byte) bool {
	return strings.HasPrefix(string(data), "#fake "+string(p.lang)+"\n")
}

func (p fakeParser) Parse(src rule.Source, data []byte) ([]*rule.Rule, []rule.Diagnostic) {
	var rules []*rule.Rule
	var cur *rule.Rule
	var sel, excl []*rule.Node
	flush := func() {
		if cur == nil {
			return
		}
		cur.Stages = []rule.Stage{{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: "selection"}}
		if len(sel) > 0 {
			n := rule.Ref("selection", rule.And(sel...))
			cur.Stages = append(cur.Stages, rule.Stage{Index: 1, Kind: rule.StageSelection, Label: "selection", Node: n})
		}
		if len(excl) > 0 {
			n := rule.Not(rule.Ref("filter", rule.And(excl...)))
			cur.Stages = append(cur.Stages, rule.Stage{Index: len(cur.Stages), Kind: rule.StageSelection, Label: "not filter", Negated: true, Node: n})
		}
		rules = append(rules, cur)
		cur, sel, excl = nil, nil, nil
	}
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "panic":
			panic("fake parser told to panic")
		case "rule":
			flush()
			s := src
			s.Line, s.Index = i+1, len(rules)
			cur = &rule.Rule{ID: f[1], Language: p.lang, Source: s, Title: strings.Join(f[2:], " "), Class: rule.Detection,
				LogSource: rule.LogSource{Product: "windows", Category: "process_creation"}, Body: line, BodyLang: "text",
				Tactics: []string{"persistence"}, Techniques: []string{"T1197"}}
			if p.lang == rule.Kusto {
				cur.LogSource = rule.LogSource{Tables: []string{"DeviceProcessEvents"}}
			}
		case "pred", "not":
			pr := &rule.Pred{Field: f[1], Kind: rule.Kind(f[2]), Values: []rule.Value{{S: f[3]}}, Pos: rule.Pos{File: src.Path, Line: i + 1}}
			if f[0] == "pred" {
				sel = append(sel, rule.Leaf(pr))
			} else {
				excl = append(excl, rule.Leaf(pr))
			}
		case "diag":
			cur.Diagnostics = append(cur.Diagnostics, rule.Diagnostic{Severity: rule.Error, Code: f[1], Pos: rule.Pos{File: src.Path, Line: i + 1, Col: 1}, Message: "told so"})
		}
	}
	flush()
	return rules, nil
}

var parsers = []Parser{fakeParser{rule.Sigma}, fakeParser{rule.Kusto}}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// bump sets a file's mtime into the future so the ingest notices a same-size change.
func bump(t *testing.T, p string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(d)
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func openCat(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(filepath.Join(t.TempDir(), "cat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// state is everything observable about a catalog, for before/after comparisons.
func state(t *testing.T, c *catalog.Catalog) []string {
	t.Helper()
	var out []string
	q := func(prefix, sql string) {
		rows, err := c.DB().Query(sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, prefix+fmt.Sprint(vals...))
		}
	}
	q("rule ", `SELECT language, id, title, path FROM rules`)
	q("ind ", `SELECT r.id, i.key, i.negated FROM indicators i JOIN rules r ON r.pk=i.rule_pk`)
	q("count ", `SELECT key, language, negated, rules FROM indicator_counts`)
	q("diag ", `SELECT code, file, line FROM diagnostics`)
	q("file ", `SELECT path, language, rules FROM files`)
	q("stage ", `SELECT r.id, s.idx, s.label FROM stages s JOIN rules r ON r.pk=s.rule_pk`)
	q("fts ", `SELECT rowid, title FROM rules_fts`)
	sort.Strings(out)
	return out
}

func run(t *testing.T, c *catalog.Catalog, roots ...string) *Summary {
	t.Helper()
	s, err := Run(context.Background(), c, roots, Options{Parsers: parsers, Fingerprint: "test"})
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return s
}

func TestIncremental(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.rule", "#fake sigma\nrule A1 Rule A one\npred Image ends_with \\bitsadmin.exe\nrule A2 Rule A two\npred CommandLine match /transfer\n")
	b := write(t, dir, "sub/b.rule", "#fake sigma\nrule B1 Rule B\npred NewProcessName ends_with \\BITSADMIN.exe\nnot User eq SYSTEM\n")
	write(t, dir, "sub/k.kql", "#fake kusto\nrule K1 Kusto one\npred FolderPath ends_with \\bitsadmin.exe\n")
	write(t, dir, "readme.txt", "not a rule\n")
	write(t, dir, ".git/config", "#fake sigma\nrule G1 must never be read\n")
	c := openCat(t)

	s := run(t, c, dir)
	want := Summary{Files: 4, Changed: 3, Skipped: 1, Rules: 4, TotalRules: 4}
	got := Summary{Files: s.Files, Changed: s.Changed, Unchanged: s.Unchanged, Deleted: s.Deleted, Skipped: s.Skipped, Rules: s.Rules, TotalRules: s.TotalRules}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first ingest summary (-want +got):\n%s", diff)
	}
	first := state(t, c)

	// Corpus counts: Image, NewProcessName and FolderPath are one field; the value is
	// case-folded; the kusto rule counts under kusto.
	ctx := context.Background()
	r, err := c.Rule(ctx, rule.Sigma, "A1")
	if err != nil {
		t.Fatal(err)
	}
	counts, err := c.RuleIndicatorCounts(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	key := r.Indicators[0].Key
	wantCount := catalog.Count{Key: key, Total: 3, ByLanguage: []catalog.LangCount{{Language: rule.Sigma, Rules: 2}, {Language: rule.Kusto, Rules: 1}}}
	if diff := cmp.Diff(wantCount, counts[key]); diff != "" {
		t.Errorf("count of %q (-want +got):\n%s", key, diff)
	}

	// Unchanged re-ingest: nothing parsed, catalog identical.
	s = run(t, c, dir)
	if s.Changed != 0 || s.Unchanged != 3 || s.Skipped != 1 || s.Rules != 0 || s.TotalRules != 4 {
		t.Errorf("unchanged re-ingest: %+v", s)
	}
	if diff := cmp.Diff(first, state(t, c)); diff != "" {
		t.Errorf("unchanged re-ingest changed the catalog (-before +after):\n%s", diff)
	}

	// Touched but identical content: hashed, not parsed.
	bump(t, b, time.Hour)
	s = run(t, c, dir)
	if s.Changed != 0 || s.Unchanged != 3 {
		t.Errorf("touched file: %+v", s)
	}
	if diff := cmp.Diff(first, state(t, c)); diff != "" {
		t.Errorf("touch changed the catalog (-before +after):\n%s", diff)
	}

	// A changed file replaces its rules.
	write(t, dir, "sub/b.rule", "#fake sigma\nrule B2 Rule B renamed\npred CommandLine match /download\n")
	bump(t, b, 2*time.Hour)
	s = run(t, c, dir)
	if s.Changed != 1 || s.Rules != 1 || s.TotalRules != 4 {
		t.Errorf("changed file: %+v", s)
	}
	if _, err := c.Rule(ctx, rule.Sigma, "B1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("old rule B1 still there: %v", err)
	}
	if r, err := c.Rule(ctx, rule.Sigma, "B2"); err != nil || r.Title != "Rule B renamed" {
		t.Errorf("new rule B2: %v %v", r, err)
	}
	counts, _ = c.IndicatorCounts(ctx, []string{key}, false)
	if counts[key].Total != 2 {
		t.Errorf("count after change = %+v, want 2", counts[key])
	}
	negs, _ := c.DB().Query(`SELECT 1 FROM indicators WHERE negated=1`)
	if negs.Next() {
		t.Errorf("exclusion of replaced rule B1 survived")
	}
	negs.Close()

	// A deleted file disappears with its rules.
	if err := os.Remove(filepath.Join(dir, "sub", "k.kql")); err != nil {
		t.Fatal(err)
	}
	s = run(t, c, dir)
	if s.Deleted != 1 || s.TotalRules != 3 {
		t.Errorf("deleted file: %+v", s)
	}
	if _, err := c.Rule(ctx, rule.Kusto, "K1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("rule of deleted file still there: %v", err)
	}
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 3 || st.Rules != 3 || st.ByLanguage["kusto"] != nil && st.ByLanguage["kusto"].Rules != 0 {
		t.Errorf("stats after delete: %+v", st)
	}
}

func TestIngestSubRootLeavesSiblingsAlone(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "x/a.rule", "#fake sigma\nrule A Rule A\n")
	write(t, dir, "y/b.rule", "#fake sigma\nrule B Rule B\n")
	c := openCat(t)
	run(t, c, dir)
	// Re-ingesting only x must not delete y's rules.
	s := run(t, c, filepath.Join(dir, "x"))
	if s.Deleted != 0 || s.TotalRules != 2 {
		t.Errorf("sub-root ingest: %+v", s)
	}
	// A single file as root.
	s = run(t, c, filepath.Join(dir, "y", "b.rule"))
	if s.Files != 1 || s.Unchanged != 1 || s.TotalRules != 2 {
		t.Errorf("file root: %+v", s)
	}
}

func TestInterruptedIngestKeepsCatalog(t *testing.T) {
	dir := t.TempDir()
	for i := range 40 {
		write(t, dir, fmt.Sprintf("r%02d.rule", i), fmt.Sprintf("#fake sigma\nrule R%d Rule %d\npred CommandLine match v%d\n", i, i, i))
	}
	c := openCat(t)
	run(t, c, dir)
	before := state(t, c)

	// Change every file, then cancel halfway through storing them.
	for i := range 40 {
		p := write(t, dir, fmt.Sprintf("r%02d.rule", i), fmt.Sprintf("#fake sigma\nrule S%d Changed %d\npred CommandLine match w%d\n", i, i, i))
		bump(t, p, time.Hour)
	}
	if err := os.Remove(filepath.Join(dir, "r00.rule")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Run(ctx, c, []string{dir}, Options{Parsers: parsers, Fingerprint: "test", Progress: func(done, total int) {
		if done >= 10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ingest returned %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(before, state(t, c)); diff != "" {
		t.Errorf("cancelled ingest changed the catalog (-before +after):\n%s", diff)
	}
	// A missing root fails before touching the catalog.
	if _, err := Run(context.Background(), c, []string{filepath.Join(dir, "nope")}, Options{Parsers: parsers}); err == nil {
		t.Errorf("missing root: no error")
	}
	if diff := cmp.Diff(before, state(t, c)); diff != "" {
		t.Errorf("failed ingest changed the catalog (-before +after):\n%s", diff)
	}
	// The next ingest completes the change.
	s := run(t, c, dir)
	if s.Changed != 39 || s.Deleted != 1 || s.TotalRules != 39 {
		t.Errorf("resumed ingest: %+v", s)
	}
}

func TestReadersSeeOldOrNew(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.rule", "#fake sigma\nrule A Rule A\n")
	c := openCat(t)
	run(t, c, dir)
	ctx := context.Background()
	// Read transactions must be ReadOnly: others take the write lock (BEGIN IMMEDIATE).
	rtx, err := c.DB().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var n int
	if err := rtx.QueryRow(`SELECT count(*) FROM rules`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("reader before: %d %v", n, err)
	}
	write(t, dir, "b.rule", "#fake sigma\nrule B Rule B\n")
	run(t, c, dir) // must not wait for the reader
	if err := rtx.QueryRow(`SELECT count(*) FROM rules`).Scan(&n); err != nil || n != 1 {
		t.Errorf("reader snapshot during re-ingest sees %d rules (%v), want the old 1", n, err)
	}
	rtx.Rollback()
	if err := c.DB().QueryRow(`SELECT count(*) FROM rules`).Scan(&n); err != nil || n != 2 {
		t.Errorf("new reader sees %d rules (%v), want 2", n, err)
	}
}

func TestBadFilesNeverStopIngest(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.rule", "#fake sigma\nrule A Rule A\ndiag test/broken\n")
	write(t, dir, "boom.rule", "#fake sigma\nrule P Panics\npanic\n")
	write(t, dir, "empty.rule", "#fake sigma\n")
	write(t, dir, "bin.rule", "#fake sigma\nrule X\x00binary\n")
	c := openCat(t)
	s := run(t, c, dir)
	if s.TotalRules != 1 || s.Skipped != 1 || s.Errors != 2 {
		t.Errorf("summary: %+v", s)
	}
	ds, err := c.Diagnostics(context.Background(), catalog.DiagFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%s %s %s:%d", d.Severity, d.Code, d.Pos.File, d.Pos.Line))
	}
	want := []string{
		"error test/broken a.rule:3",
		"error ingest/parser-panic boom.rule:0",
		"warning ingest/no-rules empty.rule:0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	st, _ := c.Stats(context.Background())
	if st.Errors != 1 || st.FileErrors != 1 || st.ErrorsByCode["test/broken"] != 1 || st.ErrorsByCode["ingest/parser-panic"] != 1 {
		t.Errorf("stats: %+v", st)
	}
}

func TestDuplicateIDs(t *testing.T) {
	mk := func(t *testing.T, order []string) (*catalog.Catalog, string) {
		dir := t.TempDir()
		c := openCat(t)
		for _, name := range order {
			write(t, dir, name, "#fake sigma\nrule SAME Title of "+name+"\n")
			run(t, c, dir)
		}
		return c, dir
	}
	ids := func(c *catalog.Catalog) map[string]string {
		out := map[string]string{}
		rows, err := c.DB().Query(`SELECT path, id FROM rules`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var p, id string
			rows.Scan(&p, &id)
			out[p] = id
		}
		return out
	}
	c1, dir := mk(t, []string{"b.rule", "a.rule", "c.rule"})
	c2, _ := mk(t, []string{"c.rule", "a.rule", "b.rule"})
	got1, got2 := ids(c1), ids(c2)
	if got1["a.rule"] != "SAME" || got1["b.rule"] == "SAME" || got1["c.rule"] == "SAME" || got1["b.rule"] == got1["c.rule"] {
		t.Errorf("ids = %v; want a.rule to keep SAME and the others distinct suffixes", got1)
	}
	// The same files give the same ids whatever the ingest order (the repo part of the
	// suffix is the temp dir, so compare the shape only across catalogs).
	if len(got2) != 3 || got2["a.rule"] != "SAME" {
		t.Errorf("other order: %v", got2)
	}
	ctx := context.Background()
	r, err := c1.Rule(ctx, rule.Sigma, got1["b.rule"])
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Diagnostics); n != 1 || r.Diagnostics[0].Code != catalog.DuplicateCode || r.Diagnostics[0].Severity != rule.Warning {
		t.Errorf("duplicate diagnostics: %+v", r.Diagnostics)
	}
	// Lookup by the upstream id is ambiguous and says so.
	_, err = c1.RuleByRef(ctx, "SAME")
	if err != nil {
		t.Fatalf("RuleByRef(SAME) = %v; the exact catalog id should win", err)
	}
	var le *catalog.LookupError
	if _, err := c1.RuleByRef(ctx, "Title of"); !errors.As(err, &le) || le.Ambiguous() || len(le.Suggestions) == 0 {
		t.Errorf("RuleByRef(partial title) = %v, want not found with suggestions", err)
	}
	// Removing the keeper hands the id to the next file.
	if err := os.Remove(filepath.Join(dir, "a.rule")); err != nil {
		t.Fatal(err)
	}
	run(t, c1, dir)
	got1 = ids(c1)
	if got1["b.rule"] != "SAME" || got1["c.rule"] == "SAME" {
		t.Errorf("after removing a.rule: %v", got1)
	}
}

func TestRuleByRef(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "win/My Rule.yml", "#fake sigma\nrule 11111111-aaaa My Great Rule\n")
	write(t, dir, "win/other.yml", "#fake sigma\nrule 22222222-bbbb Another Rule\n")
	write(t, dir, "k/other.kql", "#fake kusto\nrule 33333333-cccc Another Rule\n")
	c := openCat(t)
	run(t, c, dir)
	ctx := context.Background()
	tests := []struct {
		ref, want string // want "" means an error
		ambiguous bool
	}{
		{"11111111-aaaa", "11111111-aaaa", false},
		{"sigma/11111111-aaaa", "11111111-aaaa", false},
		{"/rules/kusto/33333333-cccc/", "33333333-cccc", false},
		{"my great rule", "11111111-aaaa", false},
		{"My Rule", "11111111-aaaa", false},
		{filepath.Join(dir, "win", "My Rule.yml"), "11111111-aaaa", false},
		{"win/My Rule.yml", "11111111-aaaa", false},
		{"Another Rule", "", true},
		{"other", "", true},
		{"k/other.kql", "33333333-cccc", false},
		{"nothing like it", "", false},
	}
	for _, tt := range tests {
		r, err := c.RuleByRef(ctx, tt.ref)
		var le *catalog.LookupError
		switch {
		case tt.want != "":
			if err != nil || r.ID != tt.want {
				t.Errorf("RuleByRef(%q) = %v, %v; want %s", tt.ref, r, err, tt.want)
			}
		case !errors.As(err, &le):
			t.Errorf("RuleByRef(%q) = %v, want a LookupError", tt.ref, err)
		case le.Ambiguous() != tt.ambiguous:
			t.Errorf("RuleByRef(%q) ambiguous = %v, want %v (%v)", tt.ref, le.Ambiguous(), tt.ambiguous, err)
		case !tt.ambiguous && !errors.Is(err, catalog.ErrNotFound):
			t.Errorf("RuleByRef(%q): not-found error does not match ErrNotFound", tt.ref)
		}
	}
}

func TestConcurrentIngestsSerialize(t *testing.T) {
	dir := t.TempDir()
	for i := range 30 {
		write(t, dir, fmt.Sprintf("a/r%02d.rule", i), fmt.Sprintf("#fake sigma\nrule A%d Rule A%d\npred CommandLine match v%d\n", i, i, i))
		write(t, dir, fmt.Sprintf("b/r%02d.rule", i), fmt.Sprintf("#fake sigma\nrule B%d Rule B%d\npred CommandLine match v%d\n", i, i, i))
	}
	c := openCat(t)
	errs := make(chan error, 4)
	// Different roots, and twice the same root: each ingest plans under the write lock.
	for _, sub := range []string{"a", "b", ".", "."} {
		go func() {
			_, err := Run(context.Background(), c, []string{filepath.Join(dir, sub)}, Options{Parsers: parsers, Fingerprint: "test"})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent ingest: %v", err)
		}
	}
	counts, err := c.IndicatorCounts(context.Background(), []string{"commandline\x1fmatch\x1f\x1fv7"}, false)
	if err != nil || counts["commandline\x1fmatch\x1f\x1fv7"].Total != 2 {
		t.Errorf("after both ingests: %+v %v", counts, err)
	}
}

func TestSourceChangeReparses(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "win/a.rule", "#fake sigma\nrule A Rule A\n")
	c := openCat(t)
	ingestURL := func(u string) *Summary {
		s, err := Run(context.Background(), c, []string{dir}, Options{Parsers: parsers, Fingerprint: "test", SourceURL: u})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ingestURL("https://github.com/acme/one")
	if s := ingestURL("https://github.com/acme/one"); s.Changed != 0 {
		t.Errorf("same source: %+v", s)
	}
	if s := ingestURL("https://github.com/acme/two"); s.Changed != 1 {
		t.Errorf("new source: %+v", s)
	}
	r, err := c.Rule(context.Background(), rule.Sigma, "A")
	if err != nil {
		t.Fatal(err)
	}
	want := rule.Source{Repo: "github.com/acme/two", RepoURL: "https://github.com/acme/two", Path: "win/a.rule", Line: 2,
		UpstreamURL: "https://github.com/acme/two/blob/HEAD/win/a.rule"}
	if r.Source != want {
		t.Errorf("source after re-ingest:\n got %+v\nwant %+v", r.Source, want)
	}
	st, _ := c.Stats(context.Background())
	if len(st.BySource) != 1 || st.BySource["github.com/acme/two"] == nil {
		t.Errorf("stats by source: %+v", st.BySource)
	}
}
