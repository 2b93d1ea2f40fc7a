package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// TestMemoized: a shared result is computed once per catalog generation, again after
// the catalog changed, errors are not kept, and a server that does not export shares
// nothing.
func TestMemoized(t *testing.T) {
	s, err := New(Options{Catalog: testCat, Attack: testAtt, Events: testEv, NoPrerender: true, Export: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.cache.enabled() {
		t.Fatal("the page cache (and so the catalog generation) is off")
	}
	calls := 0
	fn := func() (int, error) { calls++; return calls, nil }
	for range 3 {
		if v, err := memoized(s, "k", fn); err != nil || v != 1 {
			t.Fatalf("got %d, %v; want the first result", v, err)
		}
	}
	s.cache.gen.Add(1) // what the poller does when another connection commits
	if v, _ := memoized(s, "k", fn); v != 2 {
		t.Errorf("after a catalog change got %d, want a new result", v)
	}
	boom := errors.New("boom")
	fails := 0
	failing := func() (int, error) { fails++; return 0, boom }
	for range 2 {
		if _, err := memoized(s, "bad", failing); !errors.Is(err, boom) {
			t.Fatalf("err %v", err)
		}
	}
	if fails != 2 {
		t.Errorf("a failed result was kept: %d calls", fails)
	}
	plain := 0
	for range 2 {
		memoized(testSrv, "k", func() (int, error) { plain++; return plain, nil })
	}
	if plain != 2 {
		t.Errorf("a server that does not export shared results: %d calls for 2 pages", plain)
	}
}

// TestExportServerSamePages: an export server (shared results, no page cache) renders
// every page byte for byte as the ordinary server does, the event pages whose filters
// and pages share results above all, in an order that reuses them.
func TestExportServerSamePages(t *testing.T) {
	s, err := New(Options{Catalog: testCat, Attack: testAtt, Events: testEv, NoPrerender: true, Export: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewServer(s)
	defer ts.Close()
	var ev EventResponse
	getJSON(t, "/api/events/Microsoft-Windows-Sysmon/1", &ev)
	pages := []string{"/Microsoft-Windows-Sysmon/1", "/Microsoft-Windows-Sysmon/1?page=2", "/Microsoft-Windows-Sysmon/3",
		"/Microsoft-Windows-Sysmon/", "/events/", "/", "/rules/", "/attack/"}
	fields := 0
	for _, f := range ev.Fields {
		if f.RulesURL != "" && fields < 4 {
			fields++
			pages = append(pages, "/Microsoft-Windows-Sysmon/1?field="+f.Name, "/Microsoft-Windows-Sysmon/1?field="+f.Name+"&page=2")
		}
	}
	for _, l := range ev.ListLanguages {
		pages = append(pages, "/Microsoft-Windows-Sysmon/1?language="+l.Language)
	}
	for _, r := range ev.RuleList[:5] {
		pages = append(pages, r.URL)
	}
	if fields == 0 || len(ev.ListLanguages) < 2 {
		t.Fatalf("Sysmon 1 has %d filtered fields and %d languages: too few to test sharing", fields, len(ev.ListLanguages))
	}
	// Twice: the second round reads what the first one shared.
	for round := range 2 {
		for _, p := range pages {
			r1, want := get(t, p)
			r2, got := getFrom(t, ts, p)
			if r1.StatusCode != r2.StatusCode || got != want {
				t.Errorf("round %d, %s: export server answers %d (%d bytes), server %d (%d bytes)", round, p, r2.StatusCode, len(got), r1.StatusCode, len(want))
			}
		}
	}
}
