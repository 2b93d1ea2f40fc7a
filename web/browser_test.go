package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ruledex/ruledex/internal/browsertest"
)

// newBrowser starts headless Chromium for one test; it stops when the test ends.
func newBrowser(t *testing.T) context.Context { return browsertest.New(t) }

// TestBrowser drives headless Chromium through the wiki as a detection engineer would:
// the seed rule's page section by section, an indicator link, a technique link, a
// search, a facet filter and the matrix, then the rule page at phone width.
func TestBrowser(t *testing.T) {
	bctx := newBrowser(t)
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
	location := func() string {
		t.Helper()
		l, err := chromedp.Run(ctx, chromedp.Location())
		must("location", err)
		return l
	}
	contains := func(where, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q not in %.400q", where, w, got)
			}
		}
	}

	seed := testTS.URL + seedURL(t)
	must("open seed rule", chromedp.Do(ctx, chromedp.Navigate(seed), chromedp.WaitVisible(chromedp.ID("title"))))
	if got := text("#title"); got != seedTitle {
		t.Errorf("title %q", got)
	}
	contains("breadcrumb", text("nav.breadcrumb"), "Detection rules", "Sigma")
	contains("metadata", text("#metadata"), "experimental", "medium", "product windows, category process_creation",
		"mdecrevoisier", "github.com/mdecrevoisier/SIGMA-detection-rules")
	contains("description", text("#description"), `inspect "Bits-client" event log and search for ID 59 and 60.`)
	contains("references", text("#references"), "https://www.hackingarticles.in/windows-for-pentester-bitsadmin/")
	contains("attack", text("#attack"), "Exfiltration", "T1048 Exfiltration Over Alternative Protocol", "Lateral Movement",
		"T1570 Lateral Tool Transfer", "Command and Control", "T1105 Ingress Tool Transfer", "Persistence", "T1197 BITS Jobs")
	contains("events", text("#events"), "4688")
	contains("body", text("#body"), "yaml", `NewProcessName|endswith: '\bitsadmin.exe'`, "- '/transfer'", "level: medium")
	contains("stages", text("#stages"), "Stage 0: condition", "Stage 1: selection", "CommandLine|contains:")
	contains("indicators", text("#indicators"), "CommandLine", "match", "/download", "/transfer", "NewProcessName", "ends_with",
		`\bitsadmin.exe corpus `)

	// Indicator link.
	must("follow indicator link", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#indicators a[href*="bitsadmin.exe"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.ID("lang-sigma"))))
	contains("indicator location", location(), "/indicators/?")
	contains("indicator page", text("main"), `\bitsadmin.exe`, seedTitle, "Field equivalence used", "NewProcessName")

	// Technique link.
	must("back to the rule", chromedp.Do(ctx, chromedp.Navigate(seed), chromedp.WaitVisible(chromedp.ID("attack"))))
	must("follow technique link", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#attack a[href="/attack/techniques/T1197/"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("h1"))))
	contains("technique location", location(), "/attack/techniques/T1197/")
	contains("technique page", text("h1"), "T1197 BITS Jobs")
	contains("technique rules", text("main"), seedTitle)

	// Search from the header box.
	must("search", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("q"), "bitsadmin", chromedp.NodeVisible),
		chromedp.Submit(chromedp.ID("q")),
		chromedp.WaitVisible(chromedp.ID("result-count"))))
	contains("search location", location(), "/rules/?q=bitsadmin")
	contains("search count", text("#result-count"), "matching rules")
	contains("search results", text("#results"), "Bitsadmin")

	// Facet filter: the first severity value.
	must("facet", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#facet-severity a`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(".active-filters"))))
	contains("facet location", location(), "severity=", "q=bitsadmin")
	contains("active filter", text(".active-filters"), "Severity:")

	// Matrix.
	must("matrix", chromedp.Do(ctx, chromedp.Navigate(testTS.URL+"/attack/"), chromedp.WaitVisible(chromedp.ID("matrix"))))
	contains("matrix persistence", text("#tactic-persistence"), "Persistence", "T1197", "BITS Jobs")
	must("matrix filter", chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`select[name="severity"]`), "high"),
		chromedp.Submit(chromedp.CSS(`select[name="severity"]`)),
		chromedp.WaitVisible(chromedp.ID("matrix"))))
	contains("matrix filter location", location(), "severity=high")

	// Layout at phone and desktop widths: TestLayout.
}
