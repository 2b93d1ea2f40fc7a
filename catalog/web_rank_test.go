package catalog_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
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
