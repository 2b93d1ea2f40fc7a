package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/derive"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/translate"
	"github.com/ruledex/ruledex/winevent"
)

// One catalog of real rules in all five languages, ingested once with ATT&CK, event
// coverage and neighbors, serves every test through one client session.
var (
	testCat     *catalog.Catalog
	testSession *mcp.ClientSession
)

// corpusFolders are the parts of the corpus the tests ingest: every language, the BITS
// rules of each, and few enough rules that neighbors are computed in seconds.
var corpusFolders = []string{
	"sigma/mdecrevoisier", "sigma/sigmahq/rules/windows/process_creation",
	"kql/falconfriday", "kql/bert-janp",
	"spl/splunk/detections/endpoint", "spl/splunk/macros",
	"elastic/detection-rules/rules/windows",
	"yaral/chronicle/rules",
}

func parsers() []ingest.Parser {
	return []ingest.Parser{sigma.Parser{}, &spl.Parser{}, kql.Parser{}, yaral.Parser{}, elastic.Parser{}}
}

// readBack parses a translation with the target's parser, as the CLI's translator does.
func readBack(lang rule.Language, name string, data []byte) ([]*rule.Rule, error) {
	for _, p := range parsers() {
		if p.Language() != lang || !p.Detect(name, data) {
			continue
		}
		rs, diags := p.Parse(rule.Source{Repo: "translation", Path: name}, data)
		for _, d := range diags {
			if d.Severity == rule.Error {
				return nil, errors.New(d.String())
			}
		}
		return rs, nil
	}
	return nil, fmt.Errorf("no %s parser recognizes %s", lang, name)
}

func translations(r *rule.Rule) []page.Translation {
	return page.Translations(r, translate.All(fieldmap.Default(), r, readBack))
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpserver tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := corpustest.Find()
	if err != nil {
		return 0, fmt.Errorf("corpus not found (set RULEDEX_CORPUS): %w", err)
	}
	tmp, err := os.MkdirTemp("", "ruledex-mcp-test")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	am, err := attack.Load(filepath.Join(dir, "attack", "enterprise-attack.json"))
	if err != nil {
		return 0, err
	}
	events, err := winevent.Load(winevent.Dir(dir))
	if err != nil {
		return 0, err
	}
	if testCat, err = catalog.Open(filepath.Join(tmp, "catalog.db")); err != nil {
		return 0, err
	}
	defer testCat.Close()
	var roots []string
	for _, f := range corpusFolders {
		roots = append(roots, filepath.Join(dir, filepath.FromSlash(f)))
	}
	ctx := context.Background()
	opt := ingest.Options{Parsers: parsers(), AttackFingerprint: "test", Attack: func() (*ingest.Attack, error) {
		a := &ingest.Attack{}
		for _, t := range am.Tactics() {
			a.Tactics = append(a.Tactics, catalog.Tactic{Short: t.Short, ID: t.ID, Name: t.Name, URL: t.URL, Order: t.Order})
		}
		for _, t := range am.Techniques() {
			a.Techniques = append(a.Techniques, catalog.Technique{ID: t.ID, Name: t.Name, Parent: t.Parent, Tactics: t.Tactics,
				Revoked: t.Revoked, RevokedBy: t.RevokedBy, Deprecated: t.Deprecated, URL: t.URL})
		}
		return a, nil
	}}
	start := time.Now()
	if _, err := ingest.Run(ctx, testCat, roots, opt); err != nil {
		return 0, fmt.Errorf("ingest: %w", err)
	}
	if err := derive.All(ctx, testCat, events); err != nil {
		return 0, fmt.Errorf("derive: %w", err)
	}
	fmt.Fprintf(os.Stderr, "mcpserver tests: catalog ready in %s\n", time.Since(start).Round(time.Millisecond))
	srv, err := New(Options{Catalog: testCat, Events: events, Translate: translations, Version: "test"})
	if err != nil {
		return 0, err
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.MCP().Connect(ctx, st, nil)
	if err != nil {
		return 0, err
	}
	defer ss.Close()
	client := mcp.NewClient(&mcp.Implementation{Name: "ruledex-test", Version: "1"}, nil)
	if testSession, err = client.Connect(ctx, ct, nil); err != nil {
		return 0, err
	}
	defer testSession.Close()
	return m.Run(), nil
}

// call runs a tool and decodes its structured answer into out; it fails the test on a
// protocol error or a tool error, and returns the size of the answer's JSON.
func call(t *testing.T, name string, args map[string]any, out any) int {
	t.Helper()
	res, err := testSession.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	if res.IsError {
		t.Fatalf("%s %v: tool error: %s", name, args, text(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: decode %s: %v", name, b, err)
	}
	// The text content is the same JSON, for clients that read only text.
	if txt := text(res); txt != string(b) && !jsonEqual(txt, string(b)) {
		t.Errorf("%s: text content differs from structured content", name)
	}
	return len(b)
}

// callErr runs a tool that must fail with a tool error (not a protocol error) whose
// message contains want.
func callErr(t *testing.T, name string, args map[string]any, want string) {
	t.Helper()
	res, err := testSession.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: protocol error %v, want a tool error", name, args, err)
	}
	if !res.IsError {
		t.Fatalf("%s %v: succeeded, want an error containing %q", name, args, want)
	}
	if msg := text(res); !strings.Contains(msg, want) {
		t.Errorf("%s %v: error %q lacks %q", name, args, msg, want)
	}
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
