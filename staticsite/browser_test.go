package staticsite

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ruledex/ruledex/internal/browsertest"
)

// TestBrowserFromFiles opens the exported site from disk (file://, the strictest
// host: no server, no directory index, no fetch) in headless Chromium: the seed rule's
// page with its stylesheet, then a search from the header box answered by the script
// from the index, then a result.
func TestBrowserFromFiles(t *testing.T) {
	dir := site(t)
	bctx := browsertest.New(t)
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		must("text of "+sel, err)
		return s
	}
	u, _ := url.Parse(exported.seedURL)
	abs, err := filepath.Abs(filepath.Join(dir, filepath.FromSlash(pageFile(u))))
	must("path", err)
	seed := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()

	must("open seed rule", chromedp.Do(ctx, chromedp.Navigate(seed), chromedp.WaitVisible(chromedp.ID("title"))))
	if got := text("#title"); got != seedTitle {
		t.Errorf("title %q", got)
	}
	if got := text("#indicators"); !strings.Contains(got, `\bitsadmin.exe`) {
		t.Errorf("indicators: %.300q", got)
	}
	// The stylesheet loaded under the page's policy: the header is laid out by it.
	sheets, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.styleSheets.length`))
	must("stylesheets", err)
	if sheets < 1 {
		t.Error("the stylesheet did not load from file://")
	}

	must("search", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("q"), "bitsadmin", chromedp.NodeVisible),
		chromedp.Submit(chromedp.ID("q")),
		chromedp.WaitVisible(chromedp.CSS(`html[data-search="done"] #results`))))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	must("location", err)
	if !strings.HasPrefix(loc, "file://") || !strings.Contains(loc, "/rules/index.html?q=bitsadmin") {
		t.Errorf("search location %s", loc)
	}
	if got := text("#result-count"); !strings.Contains(got, "matching rules") {
		t.Errorf("result count %q", got)
	}
	results := text("#results")
	if !strings.Contains(results, seedTitle) {
		t.Errorf("search results lack the seed rule: %.600q", results)
	}
	if got := text("main h1"); !strings.Contains(got, "bitsadmin") {
		t.Errorf("heading %q", got)
	}

	// A result is a link to its exported page.
	must("open a result", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#results li a.title`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.ID("title"))))
	loc, err = chromedp.Run(ctx, chromedp.Location())
	must("location", err)
	if !strings.Contains(loc, "/rules/") || !strings.HasSuffix(loc, "/index.html") {
		t.Errorf("result location %s", loc)
	}
}
