package catalog_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
)

// TestSearchFromMemorySeesIngest: a search answered from memory (its words scored, its
// documents read by an earlier search) must still see an ingest that added rules, even
// before the server's poller notes the change: the catalog's token moves. Totals are
// held to SQLite's own count of the matching rows.
func TestSearchFromMemorySeesIngest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "rules")
	files := kqlFiles(t, 400)
	copyFiles := func(ps []string) {
		for _, p := range ps {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			d := filepath.Join(src, filepath.Base(filepath.Dir(p)))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, filepath.Base(p)), append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ingestAll := func() {
		if _, err := ingest.Run(ctx, cat, []string{src}, ingest.Options{Parsers: []ingest.Parser{kql.Parser{}}}); err != nil {
			t.Fatal(err)
		}
	}
	sqliteCount := func(fts string) int {
		var n int
		if err := cat.DB().QueryRowContext(ctx, `SELECT count(*) FROM rules_fts WHERE rules_fts MATCH ?`, fts).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	copyFiles(files[:len(files)/2])
	ingestAll()
	if _, err := cat.WarmSearch(ctx, 50); err != nil {
		t.Fatal(err)
	}
	// Words of the corpus: each searched twice before the ingest (the second time from
	// memory), once after; at least one must gain rules from it.
	words := []string{"devicename", "commandline", "user", "account", "process", "file", "network", "remote"}
	before := map[string]int{}
	for _, w := range words {
		before[w] = sqliteCount(`"` + w + `"`)
		for range 2 {
			res, err := cat.Search(ctx, catalog.SearchQuery{Text: w, PerPage: 20})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != before[w] {
				t.Fatalf("%q before the ingest: %d results, SQLite counts %d", w, res.Total, before[w])
			}
		}
	}
	copyFiles(files[len(files)/2:])
	ingestAll() // no NoteChanged: the poller has not seen it yet
	grew := 0
	for _, w := range words {
		after := sqliteCount(`"` + w + `"`)
		if after > before[w] {
			grew++
		}
		res, err := cat.Search(ctx, catalog.SearchQuery{Text: w, PerPage: 20})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != after {
			t.Errorf("%q after the ingest: %d results, SQLite counts %d (%d before)", w, res.Total, after, before[w])
		}
	}
	if grew == 0 {
		t.Fatal("the ingest adds no rule with any of the words: not a test")
	}
}

// kqlFiles lists up to n .kql files of the corpus.
func kqlFiles(t *testing.T, n int) []string {
	t.Helper()
	var files []string
	if err := filepath.WalkDir(corpustest.Path(t, "kql"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Ext(p) == ".kql" && len(files) < n {
			files = append(files, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no .kql file in the corpus")
	}
	return files
}
