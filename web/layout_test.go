package web

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// layoutProbe runs in the page and reports what a reader would see as broken:
//   - cut: a token of up to 30 characters (a number, an ID, a field name, a word) whose
//     characters sit on more than one line, split between two letters or digits, or any
//     split of a number ("4,04 / 1"). Breaks at <wbr> are separate text nodes, so they
//     never count; <pre> never wraps.
//   - wide: elements that reach past the viewport without a scrolling box around them,
//     and the page's own horizontal scroll width.
const layoutProbe = `(() => {
  const out = {cut: [], wide: [], scroll: document.documentElement.scrollWidth - window.innerWidth};
  const re = /\S+/g;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const top = (n, i) => { const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
    const rs = Array.from(r.getClientRects()).filter(x => x.width > 0); return rs.length ? Math.round(rs[0].top) : null; };
  let n;
  while ((n = walker.nextNode())) {
    if (n.parentElement.closest('pre, script, style, .visually-hidden')) continue;
    const t = n.nodeValue; let m; re.lastIndex = 0;
    while ((m = re.exec(t))) {
      if (m[0].length < 2 || m[0].length > 30) continue;
      const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
      const tops = new Set(Array.from(r.getClientRects()).filter(x => x.width > 0).map(x => Math.round(x.top)));
      if (tops.size < 2) continue;
      const num = /^[\d.,:\/-]+$/.test(m[0]);
      let prev = top(n, m.index);
      for (let i = 1; i < m[0].length; i++) {
        const cur = top(n, m.index + i);
        if (cur === null || prev === null || cur === prev) { prev = cur ?? prev; continue; }
        const a = m[0][i - 1], b = m[0][i];
        if (num || (/[A-Za-z0-9]/.test(a) && /[A-Za-z0-9]/.test(b))) out.cut.push(m[0].slice(0, i) + ' / ' + m[0].slice(i));
        break;
      }
    }
  }
  const scrolls = e => { for (let p = e.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
  for (const e of document.querySelectorAll('body *')) {
    if (e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('pre') && !scrolls(e))
      out.wide.push(e.tagName + '.' + e.className + '#' + e.id);
  }
  out.cut = out.cut.slice(0, 10); out.wide = out.wide.slice(0, 8);
  return JSON.stringify(out);
})()`

type layoutReport struct {
	Cut    []string `json:"cut"`
	Wide   []string `json:"wide"`
	Scroll int      `json:"scroll"`
}

// layoutPages are the pages the issue names: home, a rule page of each language,
// search, an equivalence class, the matrix, an event and a provider page.
func layoutPages(t *testing.T) map[string]string {
	t.Helper()
	first := func(q string) string {
		var res SearchResponse
		getJSON(t, "/api/search?per_page=1&"+q, &res)
		if len(res.Results) == 0 {
			t.Fatalf("no rule for %s", q)
		}
		return res.Results[0].URL
	}
	var class string
	if err := testCat.DB().QueryRow(`SELECT e.class_id FROM eq_classes e JOIN rules r ON r.pk = e.rule_pk
		GROUP BY e.class_id ORDER BY count(DISTINCT r.language) DESC, count(*) DESC, e.class_id LIMIT 1`).Scan(&class); err != nil {
		t.Fatalf("an equivalence class: %v", err)
	}
	return map[string]string{
		"home":     "/",
		"sigma":    seedURL(t),
		"kusto":    first("language=kusto&q=" + url.QueryEscape("powershell encoded")),
		"splunk":   first("language=splunk&q=bitsadmin"),
		"elastic":  first("language=elastic"),
		"yaral":    first("language=yaral"),
		"search":   "/rules/?q=bitsadmin",
		"eqclass":  EqClassURL(class),
		"matrix":   "/attack/",
		"event":    "/Microsoft-Windows-Sysmon/1",
		"provider": "/Microsoft-Windows-Sysmon/",
	}
}

// TestLayout opens each page at desktop (1400 px) and phone (390 px) width, saves a
// screenshot (to $RULEDEX_SCREENSHOTS when set) and fails on a cut number or identifier
// or on content wider than the screen outside a scrolling box.
func TestLayout(t *testing.T) {
	bctx := newBrowser(t)
	pages := layoutPages(t)
	dir := os.Getenv("RULEDEX_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, vp := range []struct {
		name string
		w, h int64
	}{{"desktop", 1400, 900}, {"phone", 390, 844}} {
		for name, path := range pages {
			t.Run(vp.name+"/"+name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
				defer cancel()
				err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.w, vp.h), chromedp.Navigate(testTS.URL+path),
					chromedp.WaitVisible(chromedp.CSS("main")))
				if err != nil {
					t.Fatalf("open %s: %v", path, err)
				}
				rep, err := chromedp.Run(ctx, chromedp.Evaluate[string](layoutProbe))
				if err != nil {
					t.Fatalf("probe %s: %v", path, err)
				}
				var r layoutReport
				if err := jsonUnmarshal(rep, &r); err != nil {
					t.Fatal(err)
				}
				if len(r.Cut) > 0 {
					t.Errorf("%s at %dpx: cut across lines: %q", path, vp.w, r.Cut)
				}
				if len(r.Wide) > 0 || r.Scroll > 0 {
					t.Errorf("%s at %dpx: page scrolls sideways by %dpx; too wide: %v", path, vp.w, r.Scroll, r.Wide)
				}
				if vp.name == "phone" {
					// Heading anchors appear on hover, which phones lack; laid out hidden,
					// they wrapped to a blank line under long headings (provider page).
					n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('h2 a.anchor, h3 a.anchor')].filter(a => a.getClientRects().length > 0).length`))
					if err != nil || n > 0 {
						t.Errorf("%s at %dpx: %d heading anchors laid out (%v)", path, vp.w, n, err)
					}
				}
				png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatalf("screenshot %s: %v", path, err)
				}
				if err := os.WriteFile(filepath.Join(dir, vp.name+"-"+name+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestLayoutProbe makes sure the probe sees what it must: a cut number and an
// overflowing block, on a page made for the purpose.
func TestLayoutProbe(t *testing.T) {
	bctx := newBrowser(t)
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	html := `<!doctype html><body style="margin:0"><div style="width:40px;overflow-wrap:anywhere;font:16px monospace">123456789012</div>` +
		`<div style="width:600px">wide</div><div style="width:40px">ok 12</div></body>`
	err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate("data:text/html,"+url.PathEscape(html)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := chromedp.Run(ctx, chromedp.Evaluate[string](strings.Replace(layoutProbe, "window.innerWidth + 1", "300", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var r layoutReport
	if err := jsonUnmarshal(rep, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Cut) == 0 || !regexp.MustCompile(`^\d+ / \d+$`).MatchString(r.Cut[0]) {
		t.Errorf("cut number not seen: %q", r.Cut)
	}
	if len(r.Wide) == 0 {
		t.Errorf("wide block not seen")
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
