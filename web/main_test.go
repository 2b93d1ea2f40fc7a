package web

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/derive"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// The real corpus is ingested once into a temporary catalog; every test reads it
// through one server.
var (
	corpusDir string
	testAtt   *attack.Matrix
	testEv    *winevent.Catalog
	testCat   *catalog.Catalog
	testSrv   *Server
	testTS    *httptest.Server
)

// testParsers are the languages the web tests ingest, as cmd/ruledex registers them.
func testParsers() []ingest.Parser {
	return []ingest.Parser{sigma.Parser{}, &spl.Parser{}, kql.Parser{}, irParser{rule.Elastic}, irParser{rule.YaraL}}
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "web tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// fuzzing reports whether this process fuzzes (go test -fuzz, or one of its workers).
func fuzzing() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return true
	}
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}

func setup(m *testing.M) (int, error) {
	dir, err := corpustest.Find()
	if err != nil {
		return 0, fmt.Errorf("corpus not found (set RULEDEX_CORPUS): %w", err)
	}
	corpusDir = dir
	tmp, err := os.MkdirTemp("", "ruledex-web-test")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if testAtt, err = attack.Load(filepath.Join(dir, "attack", "enterprise-attack.json")); err != nil {
		return 0, err
	}
	if testEv, err = winevent.Load(winevent.Dir(dir)); err != nil {
		return 0, err
	}
	if testCat, err = catalog.Open(filepath.Join(tmp, "catalog.db")); err != nil {
		return 0, err
	}
	defer testCat.Close()
	roots := []string{filepath.Join(dir, "sigma"), filepath.Join(dir, "kql"), filepath.Join(dir, "spl"), filepath.Join("testdata", "ir")}
	if fuzzing() {
		// Each fuzz worker runs TestMain; with the whole corpus the fuzzing time would
		// go to ingesting. One real folder of rules is enough to search in.
		roots = []string{filepath.Join(dir, "sigma", "mdecrevoisier")}
	}
	if _, err := ingest.Run(context.Background(), testCat, roots, ingest.Options{Parsers: testParsers()}); err != nil {
		return 0, fmt.Errorf("ingest: %w", err)
	}
	if _, err := derive.Neighbors(context.Background(), testCat, nil); err != nil {
		return 0, fmt.Errorf("neighbors: %w", err)
	}
	if testSrv, err = New(Options{Catalog: testCat, Attack: testAtt, Events: testEv,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoPrerender: true}); err != nil {
		return 0, err
	}
	defer testSrv.Close()
	testTS = httptest.NewServer(testSrv)
	defer testTS.Close()
	return m.Run(), nil
}

// get fetches path from the test server.
func get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	return getFrom(t, testTS, path)
}

func getFrom(t testing.TB, ts *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	c := *ts.Client() // a copy: tests run requests from several goroutines
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(ts.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	return resp, string(b)
}
