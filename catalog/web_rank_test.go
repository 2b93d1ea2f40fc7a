package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
)

// TestRankByTermsMatchesBM25: searches of plain words and phrases are ranked from
// per-phrase scores cached across searches; the order must be exactly the one SQLite's
// bm25() gives the whole query (ties by rowid), on the real KQL corpus, the first time
// (scores computed or warmed ahead) and the second (scores from the cache).
func TestRankByTermsMatchesBM25(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := ingest.Run(ctx, cat, []string{corpustest.Path(t, "kql")}, ingest.Options{Parsers: []ingest.Parser{kql.Parser{}}}); err != nil {
		t.Fatal(err)
	}
	// The most common words are scored ahead, as the server does after start-up: their
	// searches below read those scores (under the lower-cased phrase).
	if n, err := cat.WarmSearch(ctx, 100); err != nil || n != 100 {
		t.Fatalf("warm search: %d words, %v", n, err)
	}
	tests := []struct{ search, fts string }{
		{"PowerShell OR CMD", `("PowerShell" OR "CMD")`},
		{"user", `"user"`},
		{"user credential", `"user" AND "credential"`},
		{"powershell OR cmd", `("powershell" OR "cmd")`},
		{"powershell OR cmd download", `("powershell" OR "cmd") AND "download"`},
		{"process -powershell", `("process") NOT ("powershell")`},
		{`"command line"`, `"command line"`},
		{`"process creation" powershell`, `"process creation" AND "powershell"`},
		{"credential* dump", `"credential"* AND "dump"`},
		{"process base64 OR encoded NOT whoami", `"process" AND ("base64" OR "encoded") NOT ("whoami")`},
	}
	for _, tt := range tests {
		var want []string
		rows, err := cat.DB().QueryContext(ctx, `SELECT r.language || '/' || r.id FROM rules_fts f JOIN rules r ON r.pk = f.rowid
			WHERE rules_fts MATCH ? ORDER BY bm25(rules_fts, 10.0, 3.0, 5.0, 2.0, 1.0), f.rowid`, tt.fts)
		if err != nil {
			t.Fatalf("%s: %v", tt.fts, err)
		}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			want = append(want, id)
		}
		rows.Close()
		if len(want) < 3 {
			t.Errorf("%q: only %d matches in the corpus; not a test of the order", tt.search, len(want))
		}
		for _, pass := range []string{"first", "cached"} {
			res, err := cat.Search(ctx, catalog.SearchQuery{Text: tt.search, PerPage: 1 << 20})
			if err != nil {
				t.Fatalf("%q: %v", tt.search, err)
			}
			var got []string
			for _, h := range res.Hits {
				got = append(got, h.Language+"/"+h.ID)
			}
			if !slices.Equal(got, want) {
				n := 0
				for n < min(len(got), len(want)) && got[n] == want[n] {
					n++
				}
				t.Errorf("%q (%s): %d results, bm25 gives %d; they differ from position %d", tt.search, pass, len(got), len(want), n)
			}
		}
	}
}

// TestWarmSearchSameResults: what is worked out ahead (word scores, every rule's
// snippet document, every rule's hit) must change no answer. Two catalogs on one file,
// one warmed and one not, answer the same searches with the same hits, snippets and
// facets; and Hits lists every rule as a search shows it.
func TestWarmSearchSameResults(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	cold, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	if _, err := ingest.Run(ctx, cold, []string{corpustest.Path(t, "kql")}, ingest.Options{Parsers: []ingest.Parser{kql.Parser{}}}); err != nil {
		t.Fatal(err)
	}
	warm, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	if _, err := warm.WarmSearch(ctx, 50); err != nil {
		t.Fatal(err)
	}
	hits, err := warm.Hits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cold.DB().QueryRowContext(ctx, `SELECT count(*) FROM rules`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if len(hits) != n || n < 100 {
		t.Fatalf("Hits lists %d rules, the catalog has %d", len(hits), n)
	}
	byID := map[string]catalog.SearchHit{}
	for _, h := range hits {
		byID[h.Language+"/"+h.ID] = h
	}
	snippets := 0
	for _, q := range []catalog.SearchQuery{
		{Text: "powershell"}, {Text: "user credential"}, {Text: "process", Page: 2},
		{Text: "download OR encoded", Language: "kusto"}, {Text: `"command line"`}, {Text: "logon -failed"},
	} {
		a, err := cold.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		b, err := warm.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Hits) == 0 {
			t.Errorf("%+v: no hits; not a test", q)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%+v: warmed catalog answers differently", q)
		}
		for _, h := range b.Hits {
			if h.Snippet != "" {
				snippets++
			}
			want := h
			want.Snippet, want.Marked = "", ""
			if got := byID[h.Language+"/"+h.ID]; got != want {
				t.Errorf("%+v: Hits gives %+v for %s/%s, the search %+v", q, got, h.Language, h.ID, want)
			}
		}
	}
	if snippets == 0 {
		t.Error("no snippet in any answer; the documents read ahead are not tested")
	}
}

// TestWarmSearchSkipsUnsearchableTokens: the index holds tokens no search can ask for
// (SQLite's tokenizer keeps U+1FAE1 "🫡", which as an FTS5 string is a syntax error, and
// Go's tables give it no letter, so a search drops it); warming every word of the
// catalog skips them instead of failing, and scores all the others.
func TestWarmSearchSkipsUnsearchableTokens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rule := filepath.Join(dir, "salute.yml")
	if err := os.WriteFile(rule, []byte(`title: Salute 🫡 from certutil
id: 5d4c1f0e-3a55-4c37-9a53-3a3c1f1d8e01
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\certutil.exe'
  condition: selection
level: low
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := ingest.Run(ctx, cat, []string{rule}, ingest.Options{Parsers: []ingest.Parser{sigma.Parser{}}}); err != nil {
		t.Fatal(err)
	}
	var vocab, emoji int
	conn, err := cat.DB().Conn(ctx) // the vocabulary table is the connection's own
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, rules_fts, row)`); err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE term = '🫡') FROM temp.v`).Scan(&vocab, &emoji)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if emoji != 1 {
		t.Fatalf("the index does not hold the emoji as a token (%d of %d terms): not a test", emoji, vocab)
	}
	n, err := cat.WarmSearch(ctx, vocab+10)
	if err != nil {
		t.Fatalf("warm search over every word: %v", err)
	}
	if n != vocab-1 {
		t.Errorf("%d words scored, want the %d of the index but the emoji", n, vocab-1)
	}
	res, err := cat.Search(ctx, catalog.SearchQuery{Text: "salute certutil"})
	if err != nil || res.Total != 1 {
		t.Errorf("search after warming: %v, %v", res, err)
	}
}
