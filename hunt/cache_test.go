package hunt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// loadCached loads dir through a rule cache in cacheDir.
func loadCached(t *testing.T, dir, cacheDir, fingerprint string) *Loaded {
	t.Helper()
	l, err := Load([]string{dir}, LoadOptions{Parsers: []Parser{sigma.Parser{}}, CacheDir: cacheDir, Fingerprint: fingerprint,
		CacheError: func(err error) { t.Errorf("cache: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A cached load gives the rules a fresh parse gives (minus the documentation fields
// trim drops), with each stage's Node shared with Root again, for every mdecrevoisier
// rule (correlations, multi-document files, list-valued log sources among them).
func TestRuleCacheSameRules(t *testing.T) {
	dir := sigmaRule(t, "mdecrevoisier")
	fresh, err := LoadRules([]string{dir}, []Parser{sigma.Parser{}}, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range fresh.Rules {
		trim(r)
	}
	cacheDir := t.TempDir()
	first := loadCached(t, dir, cacheDir, "fp")
	second := loadCached(t, dir, cacheDir, "fp")
	if first.Cached != 0 || second.Cached == 0 {
		t.Fatalf("cached files: first load %d (want 0), second %d (want all)", first.Cached, second.Cached)
	}
	if len(fresh.Rules) < 300 {
		t.Fatalf("only %d rules parsed", len(fresh.Rules))
	}
	for _, l := range []*Loaded{first, second} {
		if diff := cmp.Diff(fresh, l, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Loaded{}, "Cached")); diff != "" {
			t.Fatalf("cached load differs from a fresh parse (-fresh +cached):\n%s", diff)
		}
	}
	shared := 0
	for _, r := range second.Rules {
		in := map[*rule.Node]bool{}
		rule.Walk(r.Root, func(n *rule.Node, _ bool) bool { in[n] = true; return true })
		for _, st := range r.Stages {
			if st.Node != nil && in[st.Node] {
				shared++
			}
		}
	}
	if shared == 0 {
		t.Error("no stage of a cached rule shares its Node with Root")
	}
}

// The cache is keyed by content and build: every change that could change a rule
// parses the file again, and nothing else does.
func TestRuleCacheInvalidation(t *testing.T) {
	src := []string{
		"windows-bits/win-os-BITS abuse for payload download (command).yaml",
		"windows-os/win-os-brutforce enumeration with unexisting users.yaml", // a correlation
		"windows-os/win-os-DCOMexec abuse via MMC (command).yaml",
	}
	type step struct {
		name   string
		change func(t *testing.T, dir, cacheDir string) // before the load
		fp     string
		cached int
		check  func(t *testing.T, l *Loaded)
	}
	title := func(want string, present bool) func(t *testing.T, l *Loaded) {
		return func(t *testing.T, l *Loaded) {
			found := false
			for _, r := range l.Rules {
				found = found || r.Title == want
			}
			if found != present {
				t.Errorf("rule %q loaded: %v, want %v", want, found, present)
			}
		}
	}
	first := filepath.Base(src[0])
	var origTitle string
	steps := []step{
		{name: "cold", fp: "a", cached: 0},
		{name: "warm", fp: "a", cached: 3},
		{name: "touched, same content", fp: "a", cached: 3, change: func(t *testing.T, dir, _ string) {
			later := time.Now().Add(time.Hour)
			os.Chtimes(filepath.Join(dir, first), later, later)
		}},
		{name: "title edited, time kept", fp: "a", cached: 2, change: func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, first)
			st, _ := os.Stat(p)
			b, _ := os.ReadFile(p)
			orig, _, _ := strings.Cut(strings.SplitN(string(b), "title:", 2)[1], "\n")
			origTitle = strings.TrimSpace(orig)
			b = []byte(strings.Replace(string(b), "title:"+orig, "title: Edited title", 1))
			os.WriteFile(p, b, 0o644)
			os.Chtimes(p, st.ModTime(), st.ModTime())
		}, check: title("Edited title", true)},
		{name: "file removed", fp: "a", cached: 2, change: func(t *testing.T, dir, _ string) {
			os.Remove(filepath.Join(dir, first))
		}, check: title("Edited title", false)},
		{name: "other build", fp: "b", cached: 0},
		{name: "damaged cache", fp: "b", cached: 0, change: func(t *testing.T, _, cacheDir string) {
			ms, _ := filepath.Glob(filepath.Join(cacheDir, "*.rules"))
			for _, m := range ms {
				b, _ := os.ReadFile(m)
				os.WriteFile(m, b[:len(b)/2], 0o644)
			}
		}},
		{name: "rewritten after damage", fp: "b", cached: 2},
		{name: "garbage cache", fp: "b", cached: 0, change: func(t *testing.T, _, cacheDir string) {
			ms, _ := filepath.Glob(filepath.Join(cacheDir, "*.rules"))
			for _, m := range ms {
				b, _ := os.ReadFile(m)
				for i := len(cacheMagic) + 100; i < len(b); i += 7 {
					b[i] ^= 0x5a
				}
				os.WriteFile(m, b, 0o644)
			}
		}},
	}
	dir := t.TempDir()
	for _, s := range src {
		b, err := os.ReadFile(sigmaRule(t, "mdecrevoisier", s))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(s)), b, 0o644)
	}
	cacheDir := t.TempDir()
	var want int
	for i, s := range steps {
		if s.change != nil {
			s.change(t, dir, cacheDir)
		}
		l := loadCached(t, dir, cacheDir, s.fp)
		fresh, err := LoadRules([]string{dir}, []Parser{sigma.Parser{}}, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range fresh.Rules {
			trim(r)
		}
		if i == 0 {
			want = len(l.Rules)
		}
		if l.Cached != s.cached {
			t.Errorf("%s: %d files from the cache, want %d", s.name, l.Cached, s.cached)
		}
		if diff := cmp.Diff(fresh.Rules, l.Rules, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: rules differ from a fresh parse (-fresh +cached):\n%s", s.name, diff)
		}
		if s.check != nil {
			s.check(t, l)
		}
	}
	if want < 3 || origTitle == "" {
		t.Errorf("setup: %d rules, original title %q", want, origTitle)
	}
}

// Old cache files are pruned: the newest cacheKeep stay, nothing older than
// cacheMaxAge, and stale temporary files go.
func TestRuleCachePrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ages := []time.Duration{0, time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 5 * time.Hour,
		6 * time.Hour, 7 * time.Hour, 8 * time.Hour, 40 * 24 * time.Hour}
	var names []string
	for i, a := range ages {
		n := filepath.Join(dir, strings.Repeat(string(rune('a'+i)), 4)+".rules")
		os.WriteFile(n, []byte("x"), 0o644)
		os.Chtimes(n, now.Add(-a), now.Add(-a))
		names = append(names, n)
	}
	tmp := filepath.Join(dir, ".tmp-123")
	os.WriteFile(tmp, nil, 0o644)
	os.Chtimes(tmp, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	other := filepath.Join(dir, "README")
	os.WriteFile(other, nil, 0o644)
	prune(dir, names[0], now)
	for i, n := range names {
		_, err := os.Stat(n)
		kept := err == nil
		// names[0] is the file just written; the next cacheKeep-1 newest stay.
		want := i < cacheKeep
		if kept != want {
			t.Errorf("%s (age %v): kept %v, want %v", filepath.Base(n), ages[i], kept, want)
		}
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Error("stale temporary file kept")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("a file that is not a cache file was removed")
	}
}

// TestLoadUnreadableRuleFiles: a rule file that cannot be read, or is larger than
// ingest's limit, is listed as skipped with its path and the reason, with and without
// the rule cache, and the other rules load.
func TestLoadUnreadableRuleFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ok.yml"), []byte(seedRuleText), 0o644); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(dir, "big.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(ingest.DefaultMaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	big.Close()
	if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "dangling.yml")); err != nil {
		t.Fatal(err)
	}
	for _, cache := range []string{"", t.TempDir()} {
		for run := 0; run < 2; run++ {
			l, err := Load([]string{dir}, LoadOptions{Parsers: []Parser{sigma.Parser{}}, CacheDir: cache, Fingerprint: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Rules) != 1 || l.Rules[0].Title != "BITS download" {
				t.Errorf("cache %q run %d: %d rules", cache, run, len(l.Rules))
			}
			skipped := strings.Join(l.Skipped, "\n")
			if len(l.Skipped) != 2 || !strings.Contains(skipped, filepath.Join(dir, "big.yml")+": skipped: larger than 8 MiB") ||
				!strings.Contains(skipped, filepath.Join(dir, "dangling.yml")+": open ") {
				t.Errorf("cache %q run %d: skipped %q", cache, run, l.Skipped)
			}
		}
	}
}
