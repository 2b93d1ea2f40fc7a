package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
)

// bareFromFolder builds a bare repository at dir whose one commit holds the files
// under folder, writing objects directly (a worktree status over ten thousand files
// would dominate the setup).
func bareFromFolder(tb testing.TB, dir, folder string) string {
	tb.Helper()
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string]plumbing.Hash{}
	err = filepath.WalkDir(folder, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		obj := repo.Storer.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		w.Write(b)
		w.Close()
		h, err := repo.Storer.SetEncodedObject(obj)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(folder, p)
		files[filepath.ToSlash(rel)] = h
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return commitTree(tb, repo, writeTree(tb, repo.Storer, "", files))
}

// bareFromFiles is bareFromFolder for files given by path, which may be anything a
// tree can hold, including names git itself would refuse.
func bareFromFiles(tb testing.TB, dir string, files map[string][]byte) string {
	tb.Helper()
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		tb.Fatal(err)
	}
	hashes := map[string]plumbing.Hash{}
	for p, b := range files {
		obj := repo.Storer.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		w.Write(b)
		w.Close()
		if hashes[p], err = repo.Storer.SetEncodedObject(obj); err != nil {
			tb.Fatal(err)
		}
	}
	return commitTree(tb, repo, writeTree(tb, repo.Storer, "", hashes))
}

// commitTree commits root as the only commit of branch main, which HEAD names.
func commitTree(tb testing.TB, repo *git.Repository, root plumbing.Hash) string {
	tb.Helper()
	c := &object.Commit{Author: object.Signature{Name: "b", Email: "b@example.org", When: time.Unix(1e9, 0)},
		Message: "corpus", TreeHash: root}
	c.Committer = c.Author
	obj := repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		tb.Fatal(err)
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		tb.Fatal(err)
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference("refs/heads/main", h)); err != nil {
		tb.Fatal(err)
	}
	if err := repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/main")); err != nil {
		tb.Fatal(err)
	}
	return h.String()
}

// writeTree stores the tree of the files under prefix and returns its hash.
func writeTree(tb testing.TB, s storer.EncodedObjectStorer, prefix string, files map[string]plumbing.Hash) plumbing.Hash {
	subs := map[string]map[string]plumbing.Hash{}
	var entries []object.TreeEntry
	for p, h := range files {
		name, rest, nested := strings.Cut(p, "/")
		if nested {
			if subs[name] == nil {
				subs[name] = map[string]plumbing.Hash{}
			}
			subs[name][rest] = h
			continue
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h})
	}
	for name, m := range subs {
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: writeTree(tb, s, prefix+name+"/", m)})
	}
	// Git orders entries as if folder names ended with "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	t := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		tb.Fatal(err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// BenchmarkSyncNothingNew: the five-language corpus as five local repositories, synced
// once; each iteration is a sync that finds nothing new (fetch, compare, ingest walk).
func BenchmarkSyncNothingNew(b *testing.B) {
	corpus := corpustest.Dir(b)
	dir := b.TempDir()
	var srcs []Source
	for _, lang := range []string{"sigma", "kql", "spl", "elastic", "yaral"} {
		repo := filepath.Join(dir, "upstream", lang)
		bareFromFolder(b, repo, filepath.Join(corpus, lang))
		srcs = append(srcs, Source{Name: lang, URL: "file://" + repo})
	}
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer cat.Close()
	var last *ingest.Summary
	opt := Options{CacheDir: filepath.Join(dir, "cache"), Env: func(string) string { return "" },
		Ingest: func(ctx context.Context, in Fetched) (*ingest.Summary, error) {
			sum, err := ingest.Run(ctx, cat, in.Roots, ingest.Options{Mirrors: in.Mirrors,
				Parsers: []ingest.Parser{sigma.Parser{}, &spl.Parser{}, kql.Parser{}, yaral.Parser{}, elastic.Parser{}}})
			last = sum
			return sum, err
		}}
	start := time.Now()
	rep, err := Sync(context.Background(), srcs, opt)
	if err != nil {
		b.Fatal(err)
	}
	files, fetch := 0, 0.0
	for _, r := range rep.Repos {
		files += r.Files
		fetch += r.Seconds
	}
	b.Logf("first sync: %d files mirrored, %d parsed, %d rules in %.1fs (fetch and mirror %.1fs, ingest %.1fs)",
		files, last.Changed, last.TotalRules, time.Since(start).Seconds(), fetch, last.Seconds)
	b.ResetTimer()
	for b.Loop() {
		rep, err := Sync(context.Background(), srcs, opt)
		if err != nil {
			b.Fatal(err)
		}
		if last.Changed != 0 || rep.Repos[0].Status != "unchanged" {
			b.Fatalf("nothing new, yet %d files parsed (%s)", last.Changed, rep.Repos[0].Status)
		}
		fetch := 0.0
		for _, r := range rep.Repos {
			fetch += r.Seconds
		}
		b.ReportMetric(fetch, "fetch-s/op")
		b.ReportMetric(last.Seconds, "ingest-s/op")
	}
}
