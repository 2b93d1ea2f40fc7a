package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
)

// TestServeDuringReingest serves pages while ingests replace and delete rules. Every
// response must succeed, and every search response must be one snapshot: its total
// equals the sum of its language facet. After each ingest the pages show the new
// catalog (the page cache follows the data).
func TestServeDuringReingest(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "rules")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	from := filepath.Join(corpusDir, "sigma", "sigmahq", "rules", "windows", "process_creation")
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".yml" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	names = names[:min(len(names), 300)]
	orig := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(from, n))
		if err != nil {
			t.Fatal(err)
		}
		orig[n] = b
		if err := os.WriteFile(filepath.Join(src, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ctx := context.Background()
	run := func() {
		t.Helper()
		if _, err := ingest.Run(ctx, cat, []string{src}, ingest.Options{Parsers: testParsers()}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	srv, err := New(Options{Catalog: cat, Attack: testAtt, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoPrerender: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	var ruleURL, watched string
	{
		var res SearchResponse
		_, body := getFrom(t, ts, "/api/search?per_page=1")
		if err := json.Unmarshal([]byte(body), &res); err != nil || len(res.Results) == 0 {
			t.Fatalf("no rule to watch: %v %s", err, body)
		}
		ruleURL, watched = res.Results[0].URL, filepath.Base(res.Results[0].Path)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	paths := []string{"/api/search?q=cmd", "/api/search", "/rules/", "/", "/attack/", ruleURL, "/api" + ruleURL[:len(ruleURL)-1]}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				p := paths[i%len(paths)]
				resp, err := ts.Client().Get(ts.URL + p)
				if err != nil {
					failures.Add(1)
					t.Errorf("GET %s: %v", p, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				if resp.StatusCode != 200 {
					failures.Add(1)
					t.Errorf("GET %s during ingest: status %d: %.300s", p, resp.StatusCode, b)
					continue
				}
				if p == "/api/search?q=cmd" || p == "/api/search" {
					var res SearchResponse
					if err := json.Unmarshal(b, &res); err != nil {
						t.Errorf("GET %s: %v", p, err)
						continue
					}
					sum := 0
					for _, f := range res.Facets["language"] {
						sum += f.Count
					}
					if sum != res.Total {
						t.Errorf("GET %s: total %d but language facet sums to %d (mixed snapshots)", p, res.Total, sum)
					}
				}
			}
		}(w)
	}

	expect := func(round int) {
		t.Helper()
		// Cached pages follow the catalog within one poll of its data_version.
		time.Sleep(3 * pollInterval)
		var want int
		if err := cat.DB().QueryRow(`SELECT count(*) FROM rules WHERE class IN ('detection','')`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		var res SearchResponse
		_, body := getFrom(t, ts, "/api/search")
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatal(err)
		}
		if res.Total != want {
			t.Errorf("round %d: browse total %d, catalog has %d detections (stale page?)", round, res.Total, want)
		}
	}
	for round := 1; round <= 4; round++ {
		for i, n := range names {
			p := filepath.Join(src, n)
			switch {
			case round%2 == 1 && i%3 == 1 && n != watched:
				// Odd rounds delete a third of the files, even rounds bring them back.
				os.Remove(p)
			default:
				b := append([]byte{}, orig[n]...)
				b = append(b, fmt.Sprintf("\n# round %d\n", round)...)
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		run()
		expect(round)
	}
	stop.Store(true)
	wg.Wait()
	if requests.Load() < 20 {
		t.Errorf("only %d requests ran during the ingests", requests.Load())
	}
	t.Logf("%d requests during 4 ingests, %d failures", requests.Load(), failures.Load())
}
