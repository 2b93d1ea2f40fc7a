package gitsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/file"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/internal/gittest"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
)

// upstream is a repository a test commits to, standing for a rule repository.
type upstream = gittest.Repo

func newUpstream(t *testing.T) *upstream { return gittest.New(t, "upstream") }

// sigmaRules returns n real Sigma rule files from the corpus, by name.
func sigmaRules(t *testing.T, n int) (names []string, data map[string][]byte) {
	t.Helper()
	dir := corpustest.Path(t, "sigma", "sigmahq", "rules", "windows", "process_creation")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	data = map[string][]byte{}
	for _, e := range ents {
		if len(names) == n {
			break
		}
		if strings.HasSuffix(e.Name(), ".yml") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, e.Name())
			data[e.Name()] = b
		}
	}
	if len(names) < n {
		t.Fatalf("corpus has %d process_creation rules, want %d", len(names), n)
	}
	return names, data
}

func testParsers() []ingest.Parser {
	return []ingest.Parser{sigma.Parser{}, &spl.Parser{}, kql.Parser{}}
}

// harness syncs into one catalog and remembers the last ingest summary.
type harness struct {
	t     *testing.T
	cat   *catalog.Catalog
	cache string
	last  *ingest.Summary
	env   Env
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return &harness{t: t, cat: cat, cache: filepath.Join(dir, "cache"), env: func(string) string { return "" }}
}

func (h *harness) sync(srcs ...Source) (*Report, error) {
	h.t.Helper()
	h.last = nil
	return Sync(context.Background(), srcs, Options{CacheDir: h.cache, Env: h.env,
		Ingest: func(ctx context.Context, in Fetched) (*ingest.Summary, error) {
			sum, err := ingest.Run(ctx, h.cat, in.Roots, ingest.Options{Parsers: testParsers(), Mirrors: in.Mirrors})
			h.last = sum
			return sum, err
		}})
}

// ruleCommits maps each stored rule's upstream path to its recorded commit, and
// checks that the title and link agree with it.
func (h *harness) ruleCommits() map[string]string {
	h.t.Helper()
	rules, err := h.cat.AllRules(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rules {
		if _, dup := out[r.Source.Path]; dup {
			h.t.Errorf("two rules from %s", r.Source.Path)
		}
		out[r.Source.Path] = r.Source.Commit
	}
	return out
}

func (h *harness) titles() map[string]string {
	h.t.Helper()
	rules, err := h.cat.AllRules(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rules {
		out[r.Source.Path] = r.Title
	}
	return out
}

func fileURL(dir string) string { return "file://" + filepath.ToSlash(dir) }

// TestSyncFollowsRepository walks one repository through a first sync, an edit + a
// delete + an add, a rename, a force-push and a sync with nothing new. After each,
// the catalog holds exactly the upstream rules under paths, only the changed files
// were parsed, and every rule records the commit its text was fetched at.
func TestSyncFollowsRepository(t *testing.T) {
	names, data := sigmaRules(t, 7)
	up := newUpstream(t)
	for _, n := range names[:6] {
		up.Write("rules/"+n, data[n])
	}
	// Outside paths: a rule file that must never reach the catalog.
	up.Write("deprecated/"+names[0], data[names[0]])
	up.Write("README.md", []byte("# rules\n"))
	cA := up.Commit("A")

	h := newHarness(t)
	src := Source{Name: "up", URL: fileURL(up.Dir), Paths: []string{"rules"}}
	r, n := func(i int) string { return "rules/" + names[i] }, names

	type step struct {
		name    string
		change  func() string // edits upstream, returns the new head
		status  string
		changes Changes
		parsed  int // files ingest parsed
		deleted int // files ingest removed
		commits func(head string) map[string]string
	}
	var cB, cC string
	steps := []step{
		{name: "first sync", change: func() string { return cA }, status: "new",
			changes: Changes{Added: 6, Full: true}, parsed: 6,
			commits: func(string) map[string]string {
				return map[string]string{r(0): cA, r(1): cA, r(2): cA, r(3): cA, r(4): cA, r(5): cA}
			}},
		{name: "edit one, delete one, add one", change: func() string {
			up.Write(r(0), []byte(strings.Replace(string(data[n[0]]), "title: ", "title: Edited ", 1)))
			up.Remove(r(1))
			up.Write("rules/added.yml", data[n[6]])
			cB = up.Commit("B")
			return cB
		}, status: "updated", changes: Changes{Added: 1, Modified: 1, Deleted: 1}, parsed: 2, deleted: 1,
			commits: func(h string) map[string]string {
				return map[string]string{r(0): h, "rules/added.yml": h, r(2): cA, r(3): cA, r(4): cA, r(5): cA}
			}},
		{name: "rename", change: func() string {
			up.Rename(r(2), "rules/moved/"+n[2])
			cC = up.Commit("C")
			return cC
		}, status: "updated", changes: Changes{Renamed: 1}, parsed: 1, deleted: 1,
			commits: func(h string) map[string]string {
				return map[string]string{r(0): cB, "rules/added.yml": cB, "rules/moved/" + n[2]: h, r(3): cA, r(4): cA, r(5): cA}
			}},
		{name: "force-push", change: func() string {
			// History rewritten: C is dropped, D is built on B. The rename is undone and
			// another rule is edited.
			up.ResetHard(cB)
			up.Write(r(3), []byte(strings.Replace(string(data[n[3]]), "title: ", "title: Forced ", 1)))
			return up.Commit("D")
		}, status: "updated", changes: Changes{Renamed: 1, Modified: 1}, parsed: 2, deleted: 1,
			commits: func(h string) map[string]string {
				return map[string]string{r(0): cB, "rules/added.yml": cB, r(2): h, r(3): h, r(4): cA, r(5): cA}
			}},
		{name: "nothing new", change: func() string { head, _ := up.Repo.Head(); return head.Hash().String() },
			status: "unchanged", parsed: 0,
			commits: func(string) map[string]string { return nil }},
	}
	var prev map[string]string
	for _, s := range steps {
		head := s.change()
		rep, err := h.sync(src)
		if err != nil {
			t.Fatalf("%s: %v %+v", s.name, err, rep.Repos)
		}
		rr := rep.Repos[0]
		if rr.Status != s.status || rr.Commit != head || !reflect.DeepEqual(rr.Changes, s.changes) {
			t.Errorf("%s: status %s commit %.7s changes %+v, want %s %.7s %+v", s.name, rr.Status, rr.Commit, rr.Changes, s.status, head, s.changes)
		}
		if rep.Ingest == nil || rep.Ingest.Changed != s.parsed || rep.Ingest.Deleted != s.deleted {
			t.Errorf("%s: ingest %+v, want %d parsed and %d deleted", s.name, rep.Ingest, s.parsed, s.deleted)
		}
		got := h.ruleCommits()
		want := s.commits(head)
		if want == nil {
			want = prev
		}
		if !equalMaps(got, want) {
			t.Errorf("%s: rule commits\n got %v\nwant %v", s.name, got, want)
		}
		prev = want
	}
	titles := h.titles()
	if !strings.HasPrefix(titles[r(0)], "Edited ") || !strings.HasPrefix(titles[r(3)], "Forced ") {
		t.Errorf("edited titles not in the catalog: %q, %q", titles[r(0)], titles[r(3)])
	}
	// The rule moved back by the force-push links to the new commit; local remotes
	// have no browsable URL, so the link is empty and the repository is the URL.
	rules, _ := h.cat.AllRules(context.Background())
	for _, ru := range rules {
		if ru.Source.Repo != src.URL || ru.Source.UpstreamURL != "" {
			t.Errorf("%s: repo %q link %q, want %q and no link", ru.Source.Path, ru.Source.Repo, ru.Source.UpstreamURL, src.URL)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSyncFailingRepository: one repository that cannot be fetched is reported with
// its error while the others are synced, and its rules stay in the catalog.
func TestSyncFailingRepository(t *testing.T) {
	names, data := sigmaRules(t, 4)
	a, b := newUpstream(t), newUpstream(t)
	a.Write("rules/"+names[0], data[names[0]])
	a.Write("rules/"+names[1], data[names[1]])
	a.Commit("a1")
	b.Write("rules/"+names[2], data[names[2]])
	b.Commit("b1")
	h := newHarness(t)
	srcs := []Source{{Name: "a", URL: fileURL(a.Dir)}, {Name: "b", URL: fileURL(b.Dir)}}
	if _, err := h.sync(srcs...); err != nil {
		t.Fatal(err)
	}
	if got := len(h.ruleCommits()); got != 3 {
		t.Fatalf("first sync: %d rules, want 3", got)
	}
	// b disappears upstream; a gets a new rule.
	if err := os.Rename(b.Dir, b.Dir+".gone"); err != nil {
		t.Fatal(err)
	}
	a.Write("rules/"+names[3], data[names[3]])
	a.Commit("a2")
	rep, err := h.sync(srcs...)
	if !errors.Is(err, ErrSomeFailed) {
		t.Fatalf("error %v, want ErrSomeFailed", err)
	}
	if rep.Failed != 1 || rep.Repos[0].Status != "updated" || rep.Repos[1].Status != "failed" || rep.Repos[1].Error == "" {
		t.Fatalf("report %+v", rep.Repos)
	}
	got := h.ruleCommits()
	var paths []string
	for p := range got {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if len(paths) != 4 || got["rules/"+names[2]] == "" || got["rules/"+names[3]] == "" {
		t.Errorf("after a failed repository the catalog has %v, want b's rule kept and a's new rule added", paths)
	}
}

// TestSyncShallow runs the shallow path real servers get: the remote is served by
// git-upload-pack (the scheme "gitexec" is go-git's process transport, standing for an
// https server), so every fetch has depth 1. The cache must stay shallow (one commit
// per fetch), and a later commit and a force-push must still diff and ingest right.
func TestSyncShallow(t *testing.T) {
	client.InstallProtocol("gitexec", file.DefaultClient)
	names, data := sigmaRules(t, 4)
	up := newUpstream(t)
	up.Write("rules/"+names[0], data[names[0]])
	c1 := up.Commit("1")
	up.Write("rules/"+names[1], data[names[1]])
	c2 := up.Commit("2")
	h := newHarness(t)
	src := Source{Name: "shallow", URL: "gitexec://" + filepath.ToSlash(up.Dir)}
	steps := []struct {
		name   string
		change func() string
		want   Changes
		parsed int
	}{
		{"first", func() string { return c2 }, Changes{Added: 2, Full: true}, 2},
		{"new commit", func() string {
			up.Write("rules/"+names[2], data[names[2]])
			return up.Commit("3")
		}, Changes{Added: 1}, 1},
		{"force-push", func() string {
			up.ResetHard(c2)
			up.Write("rules/"+names[3], data[names[3]])
			return up.Commit("4")
		}, Changes{Added: 1, Deleted: 1}, 1},
	}
	for _, s := range steps {
		head := s.change()
		rep, err := h.sync(src)
		if err != nil {
			t.Fatalf("%s: %v %+v", s.name, err, rep.Repos)
		}
		rr := rep.Repos[0]
		if rr.Commit != head || !reflect.DeepEqual(rr.Changes, s.want) || h.last.Changed != s.parsed {
			t.Errorf("%s: commit %.7s changes %+v parsed %d, want %.7s %+v %d", s.name, rr.Commit, rr.Changes, h.last.Changed, head, s.want, s.parsed)
		}
		repo, err := git.PlainOpen(filepath.Join(h.cache, src.Name, "git"))
		if err != nil {
			t.Fatal(err)
		}
		shallow, err := repo.Storer.Shallow()
		if err != nil || len(shallow) == 0 {
			t.Errorf("%s: cache repository not shallow (%v, %v)", s.name, shallow, err)
		}
		if _, err := repo.CommitObject(plumbing.NewHash(c1)); err == nil {
			t.Errorf("%s: commit 1, behind the first synced head, is in the cache: not a depth-1 fetch", s.name)
		}
	}
	if got := h.ruleCommits(); len(got) != 3 || got["rules/"+names[2]] != "" {
		t.Errorf("after the force-push the catalog has %v, want names 0, 1 and 3", got)
	}
}

// TestSyncAttackAndPaths: a kind: attack source hands its bundle to the ingest and is
// not ingested as rules; paths read only what they name, and a path the repository
// lacks is reported.
func TestSyncAttackAndPaths(t *testing.T) {
	names, data := sigmaRules(t, 2)
	rules, cti := newUpstream(t), newUpstream(t)
	rules.Write("rules/"+names[0], data[names[0]])
	rules.Write("other/"+names[1], data[names[1]])
	rules.Commit("r")
	bundle := []byte(`{"type": "bundle", "objects": []}`)
	cti.Write("enterprise-attack/enterprise-attack.json", bundle)
	cti.Write("mobile-attack/mobile-attack.json", bundle)
	cti.Commit("c")
	h := newHarness(t)
	var got Fetched
	rep, err := Sync(t.Context(), []Source{
		{Name: "rules", URL: fileURL(rules.Dir), Paths: []string{"rules", "no-such-folder"}},
		{Name: "cti", URL: fileURL(cti.Dir), Paths: []string{"enterprise-attack/enterprise-attack.json"}, Kind: KindAttack},
	}, Options{CacheDir: h.cache, Env: h.env, Ingest: func(ctx context.Context, in Fetched) (*ingest.Summary, error) {
		got = in
		return ingest.Run(ctx, h.cat, in.Roots, ingest.Options{Parsers: testParsers(), Mirrors: in.Mirrors})
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantAttack := filepath.Join(h.cache, "cti", "files", "enterprise-attack", "enterprise-attack.json")
	if got.Attack != wantAttack || rep.Attack != wantAttack || len(got.Roots) != 1 || got.Files[0] != 1 {
		t.Errorf("fetched %+v, report attack %q; want attack %s and one root with one file", got, rep.Attack, wantAttack)
	}
	if b, err := os.ReadFile(wantAttack); err != nil || string(b) != string(bundle) {
		t.Errorf("bundle mirrored as %q (%v)", b, err)
	}
	if _, err := os.Stat(filepath.Join(h.cache, "cti", "files", "mobile-attack")); err == nil {
		t.Error("a folder outside paths was mirrored")
	}
	var r RepoReport
	for _, x := range rep.Repos {
		if x.Name == "rules" {
			r = x
		}
	}
	if !reflect.DeepEqual(r.Missing, []string{"no-such-folder"}) {
		t.Errorf("missing paths %v", r.Missing)
	}
	if c := h.ruleCommits(); len(c) != 1 || c["rules/"+names[0]] == "" {
		t.Errorf("catalog %v, want only rules/%s", c, names[0])
	}
}

// TestSyncRefusesUnsafePaths: tree entries that would leave the mirror or write into a
// .git folder are never written. go-git refuses ".." and ".git" components itself (the
// repository fails with the reason); names our own check refuses (a backslash, which
// is a separator on Windows) are skipped and reported while the rest is synced. A
// hostile repository never stops the others.
func TestSyncRefusesUnsafePaths(t *testing.T) {
	names, data := sigmaRules(t, 2)
	tests := []struct {
		name    string
		hostile string
		failed  string // error text when the repository fails, "" when it syncs
		refused []string
	}{
		{"dot-git folder", "rules/.git/hooks/pre-commit", `".git"`, nil},
		{"parent folder", "rules/../../escape.yml", `".."`, nil},
		{"parent folder, Windows separators", `rules/..\..\escape.yml`, `".."`, nil},
		{"backslash", `rules/sub\escape.yml`, "", []string{`rules/sub\escape.yml`}},
	}
	good := newUpstream(t)
	good.Write("rules/"+names[1], data[names[1]])
	good.Commit("good")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hostile.git")
			bareFromFiles(t, dir, map[string][]byte{"rules/" + names[0]: data[names[0]], tt.hostile: []byte("#!/bin/sh\necho pwned\n")})
			h := newHarness(t)
			rep, err := h.sync(Source{Name: "hostile", URL: fileURL(dir)}, Source{Name: "good", URL: fileURL(good.Dir)})
			rr := rep.Repos[0]
			if tt.failed != "" {
				if !errors.Is(err, ErrSomeFailed) || rr.Status != "failed" || !strings.Contains(rr.Error, tt.failed) {
					t.Errorf("status %s error %q (%v), want failed with %s", rr.Status, rr.Error, err, tt.failed)
				}
			} else if err != nil || !reflect.DeepEqual(rr.Refused, tt.refused) || rr.Files != 1 {
				t.Errorf("err %v, refused %q, %d files; want %q and 1 file", err, rr.Refused, rr.Files, tt.refused)
			}
			filepath.Walk(filepath.Dir(h.cache), func(p string, fi os.FileInfo, err error) error {
				if err == nil && (fi.Name() == "escape.yml" || fi.Name() == "pre-commit" || strings.Contains(fi.Name(), "escape")) {
					t.Errorf("%s was written", p)
				}
				return nil
			})
			if got := h.ruleCommits()["rules/"+names[1]]; got == "" || rep.Repos[1].Status != "new" {
				t.Errorf("the good repository was not synced beside the hostile one: %+v", rep.Repos[1])
			}
		})
	}
}

// TestSyncPathsChanged: narrowing or widening paths rewrites the mirror, and the
// catalog follows: rules outside the new paths leave, rules inside arrive.
func TestSyncPathsChanged(t *testing.T) {
	names, data := sigmaRules(t, 3)
	up := newUpstream(t)
	up.Write("a/"+names[0], data[names[0]])
	up.Write("a/"+names[1], data[names[1]])
	up.Write("b/"+names[2], data[names[2]])
	head := up.Commit("1")
	h := newHarness(t)
	tests := []struct {
		paths []string
		want  []string
	}{
		{[]string{"a"}, []string{"a/" + names[0], "a/" + names[1]}},
		{[]string{"b", "a/" + names[1]}, []string{"a/" + names[1], "b/" + names[2]}},
		{nil, []string{"a/" + names[0], "a/" + names[1], "b/" + names[2]}},
	}
	for _, tt := range tests {
		rep, err := h.sync(Source{Name: "up", URL: fileURL(up.Dir), Paths: tt.paths})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Repos[0].Full || rep.Repos[0].Files != len(tt.want) {
			t.Errorf("paths %v: %+v, want a full rewrite of %d files", tt.paths, rep.Repos[0], len(tt.want))
		}
		got := h.ruleCommits()
		var paths []string
		for p, c := range got {
			paths = append(paths, p)
			if c != head {
				t.Errorf("paths %v: %s at %s, want %s", tt.paths, p, c, head)
			}
		}
		sort.Strings(paths)
		if !reflect.DeepEqual(paths, tt.want) {
			t.Errorf("paths %v: catalog has %v, want %v", tt.paths, paths, tt.want)
		}
	}
}

// TestSyncOffline: --offline ingests the mirrors as they are, never fetches (a new
// upstream commit is not seen), and a source never fetched is missing, not failed.
func TestSyncOffline(t *testing.T) {
	names, data := sigmaRules(t, 2)
	up := newUpstream(t)
	up.Write("rules/"+names[0], data[names[0]])
	first := up.Commit("1")
	h := newHarness(t)
	src := Source{Name: "up", URL: fileURL(up.Dir)}
	never := Source{Name: "never", URL: fileURL(filepath.Join(t.TempDir(), "nothing"))}
	if _, err := h.sync(src); err != nil {
		t.Fatal(err)
	}
	up.Write("rules/"+names[1], data[names[1]])
	up.Commit("2")
	rep, err := Sync(t.Context(), []Source{src, never}, Options{CacheDir: h.cache, Env: h.env, Offline: true,
		Ingest: func(ctx context.Context, in Fetched) (*ingest.Summary, error) {
			return ingest.Run(ctx, h.cat, in.Roots, ingest.Options{Parsers: testParsers(), Mirrors: in.Mirrors})
		}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repos[0].Status != "unchanged" || rep.Repos[0].Commit != first || rep.Repos[1].Status != "missing" || rep.Failed != 0 {
		t.Errorf("offline report %+v", rep.Repos)
	}
	if rep.Ingest == nil || rep.Ingest.Changed != 0 || rep.Ingest.TotalRules != 1 {
		t.Errorf("offline ingest %+v, want the one mirrored rule, nothing parsed", rep.Ingest)
	}
}
