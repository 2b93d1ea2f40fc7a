package staticsite

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/derive"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/web"
	"github.com/ruledex/ruledex/winevent"
)

const seedTitle = "BITS payload downloaded via commandline"

// exported is one export of real rules shared by the tests of this file: the Sigma
// rules of mdecrevoisier (the seed rule's repository) and one KQL collection, so
// pages link across languages.
var exported struct {
	dir string
	sum *Summary
	// plainDir is the same export through the server as it serves readers (page
	// cache, nothing shared), one page at a time.
	plainDir string
	rules    int
	seedURL  string
	shared   map[string]bool
	err      error
}

func TestMain(m *testing.M) {
	code := func() int {
		tmp, err := os.MkdirTemp("", "ruledex-site-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		exportTmp = tmp
		defer func() {
			if exported.plainDir != "" {
				os.RemoveAll(exported.plainDir)
			}
		}()
		return m.Run()
	}()
	os.Exit(code)
}

func exportCorpus(tmp string) error {
	dir, err := corpustest.Find()
	if err != nil {
		return fmt.Errorf("corpus not found (set RULEDEX_CORPUS): %w", err)
	}
	ctx := context.Background()
	am, err := attack.Load(filepath.Join(dir, "attack", "enterprise-attack.json"))
	if err != nil {
		return err
	}
	ev, err := winevent.Load(winevent.Dir(dir))
	if err != nil {
		return err
	}
	cat, err := catalog.Open(filepath.Join(tmp, "catalog.db"))
	if err != nil {
		return err
	}
	defer cat.Close()
	hostileDir := filepath.Join(tmp, "hostile")
	if err := os.MkdirAll(hostileDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(hostileDir, "hostile.yml"), []byte(hostileRule), 0o644); err != nil {
		return err
	}
	roots := []string{filepath.Join(dir, "sigma", "mdecrevoisier"), filepath.Join(dir, "kql", "falconfriday"), hostileDir}
	if _, err := ingest.Run(ctx, cat, roots, ingest.Options{Parsers: []ingest.Parser{sigma.Parser{}, kql.Parser{}}}); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if _, err := derive.Neighbors(ctx, cat, nil); err != nil {
		return fmt.Errorf("neighbors: %w", err)
	}
	// As ruledex export site renders: results shared across pages, no page cache.
	srv, err := web.New(web.Options{Catalog: cat, Attack: am, Events: ev, NoPrerender: true, Export: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer srv.Close()
	paths, err := cat.RulePaths(ctx)
	if err != nil {
		return err
	}
	var seeds []string
	for _, p := range paths {
		seeds = append(seeds, web.RuleURL(p[0], p[1]))
	}
	exported.rules = len(paths)
	docs, err := cat.SearchDocs(ctx)
	if err != nil {
		return err
	}
	index, err := SearchIndex(docs)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if d.Title == seedTitle {
			exported.seedURL = web.RuleURL(d.Language, d.ID)
		}
	}
	if exported.shared, err = cat.SharedIndicatorKeys(ctx, 2); err != nil {
		return err
	}
	exported.dir = filepath.Join(tmp, "site")
	exported.sum, err = Export(ctx, Options{Handler: srv, Dir: exported.dir, Seeds: seeds,
		Files: map[string][]byte{IndexFile: index, "attack/navigator.json": []byte("{}\n")},
		Skip:  OnlySharedIndicators(exported.shared)})
	if err != nil {
		return err
	}
	// The same pages from the server as it serves readers, for TestExportServerSameSite.
	// One server at a time: each holds a connection of the catalog's small pool.
	srv.Close()
	plain, err := web.New(web.Options{Catalog: cat, Attack: am, Events: ev, NoPrerender: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer plain.Close()
	// Outside tmp: TestHostileRule looks there for anything the hostile rule wrote.
	if exported.plainDir, err = os.MkdirTemp("", "ruledex-site-plain"); err != nil {
		return err
	}
	_, err = Export(ctx, Options{Handler: plain, Dir: exported.plainDir, Seeds: seeds, Workers: 1,
		Files: map[string][]byte{IndexFile: index, "attack/navigator.json": []byte("{}\n")},
		Skip:  OnlySharedIndicators(exported.shared)})
	return err
}

var (
	exportTmp  string
	exportOnce sync.Once
)

// site exports once, for the first test that needs it (the unit tests do not).
// hostileRule is a rule whose id, title, values and references try to leave the
// folder, inject markup or reach the API.
const hostileRule = `title: '<script>alert(1)</script> "><img src=x onerror=alert(1)> href="/api/"'
id: ../../../../../escaped-export
status: test
description: 'A link <a href="/../../../etc/passwd">x</a> and </head><script src="/evil.js"></script>'
references:
  - javascript:alert(1)
  - /../../outside
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\..\..\href="/static/../../x".exe'
    CommandLine|contains: '%2e%2e%2f%2e%2e%2fescaped'
  condition: selection
level: high
`

func site(t *testing.T) string {
	t.Helper()
	exportOnce.Do(func() { exported.err = exportCorpus(exportTmp) })
	if exported.err != nil {
		t.Fatalf("export: %v", exported.err)
	}
	return exported.dir
}

var refAttr = regexp.MustCompile(`\s(href|src|action)="([^"]*)"`)

// TestNoBrokenLinks crawls the export from index.html as a browser would follow
// links: every href, src and form action of every page reached must name a file in
// the folder (fragments and external links aside), and the crawl must reach every
// rule page.
func TestNoBrokenLinks(t *testing.T) {
	dir := site(t)
	seen := map[string]bool{"index.html": true}
	queue := []string{"index.html"}
	broken := 0
	for len(queue) > 0 {
		page := queue[0]
		queue = queue[1:]
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(page)))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range refAttr.FindAllSubmatch(b, -1) {
			ref := html.UnescapeString(string(m[2]))
			u, err := url.Parse(ref)
			if err != nil {
				t.Errorf("%s: unparsable link %q", page, ref)
				continue
			}
			if u.Scheme != "" || u.Host != "" || u.Path == "" {
				continue // external, or a fragment of this page
			}
			if strings.HasPrefix(u.Path, "/") {
				t.Errorf("%s: absolute link %q does not work from another path or file://", page, ref)
				continue
			}
			target := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(filepath.FromSlash(page)), filepath.FromSlash(u.Path))))
			if target == ".." || strings.HasPrefix(target, "../") {
				t.Errorf("%s: link %q leaves the folder", page, ref)
				continue
			}
			st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(target)))
			if err != nil || st.IsDir() {
				if broken++; broken < 20 {
					t.Errorf("%s: broken link %q (%s)", page, ref, target)
				}
				continue
			}
			if strings.HasSuffix(target, ".html") && !seen[target] {
				seen[target] = true
				queue = append(queue, target)
			}
		}
	}
	if broken > 0 {
		t.Errorf("%d broken links", broken)
	}
	rulePages := 0
	for p := range seen {
		if regexp.MustCompile(`^rules/[a-z]+/[^/]+/index\.html$`).MatchString(p) && !strings.HasPrefix(p, "rules/eq/") {
			rulePages++
		}
	}
	if rulePages != exported.rules {
		t.Errorf("the crawl from index.html reached %d rule pages; the catalog has %d rules", rulePages, exported.rules)
	}
	if len(seen) < exported.sum.Pages/2 {
		t.Errorf("the crawl reached %d pages of %d written", len(seen), exported.sum.Pages)
	}
}

// TestRulePagesEqualRules counts the rule pages on disk and in the summary.
func TestRulePagesEqualRules(t *testing.T) {
	dir := site(t)
	files, err := filepath.Glob(filepath.Join(dir, "rules", "*", "*", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if filepath.Base(filepath.Dir(filepath.Dir(f))) != "eq" {
			n++
		}
	}
	if exported.rules < 400 {
		t.Fatalf("only %d rules ingested", exported.rules)
	}
	if n != exported.rules || exported.sum.RulePages != exported.rules {
		t.Errorf("%d rule page files, summary %d rule pages, catalog %d rules", n, exported.sum.RulePages, exported.rules)
	}
	if len(exported.sum.Failed) > 0 {
		t.Errorf("pages not rendered: %v", exported.sum.Failed)
	}
	// The only pages the wiki links without having them: techniques of other ATT&CK
	// domains (ICS T0xxx) that rules name.
	for _, p := range exported.sum.NotFound {
		if !regexp.MustCompile(`^/attack/techniques/T0\d{3}/$`).MatchString(p) {
			t.Errorf("not found: %s", p)
		}
	}
}

// TestSeedPage checks the seed rule's page as exported: the server's content, the
// links made relative, the static-site head and no API links.
func TestSeedPage(t *testing.T) {
	dir := site(t)
	u, _ := url.Parse(exported.seedURL)
	file := pageFile(u)
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		t.Fatalf("seed page: %v", err)
	}
	page := string(b)
	for _, want := range []string{
		"<h1 id=\"title\">" + seedTitle + "</h1>",
		`href="../../../static/style.css"`,
		`src="../../../static/search.js"`,
		`<meta name="ruledex-root" content="../../../">`,
		`http-equiv="Content-Security-Policy"`,
		`href="../../../attack/techniques/T1197/index.html"`,
		`action="../../index.html"`, // the header's search form: the browse page
		`NewProcessName|endswith: &#39;\bitsadmin.exe&#39;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("seed page lacks %q", want)
		}
	}
	for _, bad := range []string{`href="/`, `src="/`, `action="/`, "/api/"} {
		if strings.Contains(page, bad) {
			t.Errorf("seed page still has %q", bad)
		}
	}
	// The shared indicator (\bitsadmin.exe is tested by many rules) is a link to
	// its exported page, which lists the seed rule.
	m := regexp.MustCompile(`<a class="mono" href="([^"]+)">\\<wbr>bitsadmin.exe</a>|<a class="mono" href="([^"]+)">\\bitsadmin.exe</a>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal(`no link for the \bitsadmin.exe indicator`)
	}
	ref := m[1] + m[2]
	ib, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file), "..", filepath.FromSlash(html.UnescapeString(ref))))
	if err != nil {
		t.Fatalf("indicator page %s: %v", ref, err)
	}
	if !strings.Contains(string(ib), seedTitle) || !strings.Contains(string(ib), "NewProcessName") {
		t.Errorf("indicator page %s does not list the seed rule and the field equivalence", ref)
	}
}

// TestSearchIndex reads the index as the script does: one row per rule, each
// pointing at its exported page.
func TestSearchIndex(t *testing.T) {
	dir := site(t)
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "ruledexIndex(") || !strings.HasSuffix(s, ");\n") {
		t.Fatalf("index is not a ruledexIndex(...) call: %.40q", s)
	}
	var ix struct {
		Rules   [][]any  `json:"rules"`
		Sources []string `json:"sources"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(s, "ruledexIndex("), ");\n")), &ix); err != nil {
		t.Fatal(err)
	}
	if len(ix.Rules) != exported.rules {
		t.Errorf("index has %d rules, catalog %d", len(ix.Rules), exported.rules)
	}
	found := false
	for _, r := range ix.Rules {
		p := filepath.Join(dir, "rules", filepath.FromSlash(r[1].(string)), "index.html")
		if _, err := os.Stat(p); err != nil {
			t.Errorf("index row %v: no page: %v", r[:3], err)
			break
		}
		if r[2] == seedTitle {
			found = true
			if !strings.Contains(r[12].(string), "bitsadmin") {
				t.Errorf("seed rule's searchable text lacks bitsadmin: %q", r[12])
			}
		}
	}
	if !found {
		t.Error("seed rule not in the index")
	}
}

// TestHostileRule: the rule whose id and text try to escape is written inside the
// folder, its text shows escaped, and nothing it holds became a link or a file
// outside.
func TestHostileRule(t *testing.T) {
	dir := site(t)
	parent := filepath.Dir(dir)
	var hits []string
	filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "escaped") {
			hits = append(hits, p)
		}
		return nil
	})
	if len(hits) == 0 {
		t.Fatal("the hostile rule's page was not written")
	}
	var page string
	for _, h := range hits {
		rel, err := filepath.Rel(dir, h)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s is outside the export folder", h)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(h, "index.html")); err == nil {
			page = string(b)
		}
	}
	if page == "" {
		t.Fatalf("no page among %v", hits)
	}
	for _, want := range []string{
		`&lt;script&gt;alert(1)&lt;/script&gt; &#34;&gt;&lt;img src=x onerror=alert(1)&gt; href=&#34;/api/&#34;`,
		`javascript:alert(1)`, // shown as text
	} {
		if !strings.Contains(page, want) {
			t.Errorf("hostile page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>alert", `<img src=x`, `href="javascript:`, `src="/evil.js"`, `href="/api/"`, `href="/../`} {
		if strings.Contains(page, bad) {
			t.Errorf("hostile page contains %q", bad)
		}
	}
	if n := strings.Count(page, "</head>"); n != 1 {
		t.Errorf("%d </head> in the page", n)
	}
}
