package web

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
)

// hostileRules are Sigma rules whose every text field tries to inject markup or a
// script URL. The pages must show all of it as text.
var hostileRules = map[string]string{
	"hostile_title.yml": `title: <script>alert('title')</script> "><img src=x onerror=alert(1)>
id: 6a1f0d3e-0000-4000-8000-000000000001
status: <b>experimental</b>
description: |
  </p><script>alert('desc')</script><p>
  "><img src=x onerror=alert('desc2')> ' onmouseover='alert(3)
references:
  - javascript:alert('ref1')
  - JaVaScRiPt:alert('ref2')
  - "  javascript:alert('ref3')"
  - data:text/html,<script>alert('ref4')</script>
  - vbscript:msgbox('ref5')
  - //evil.example/protocol-relative
  - https://ok.example/"><script>alert('ref6')</script>
  - https://example.org/legit
author: <img src=x onerror=alert('author')>
date: 2024-01-01
tags:
  - attack.execution
  - attack.t1059.001
  - attack.<script>alert('tag')</script>
logsource:
  product: <iframe src=javascript:alert('product')>
  category: process_creation
detection:
  selection:
    CommandLine|contains:
      - <script>alert('value')</script>
      - '"><img src=x onerror=alert(''value2'')>'
      - javascript:alert('value3')
    Image|endswith: '\<svg onload=alert(11)>.exe'
  filter:
    ParentImage: </pre><script>alert('filter')</script>
  condition: selection and not filter
falsepositives:
  - <script>alert('fp')</script>
level: '"><svg onload=alert(6)>'
`,
	"hostile_kql.yaml": `id: 6a1f0d3e-0000-4000-8000-000000000003
name: <script>alert('kql')</script> KQL "><img src=x onerror=alert(20)>
description: |
  '</pre><script>alert('kqldesc')</script>'
severity: High
requiredDataConnectors: []
queryFrequency: 1h
queryPeriod: 1h
triggerOperator: gt
triggerThreshold: 0
tactics:
  - Execution
relevantTechniques:
  - T1059
query: |
  DeviceProcessEvents
  | where ProcessCommandLine has "<script>alert('kqlvalue')</script>"
  | where FileName =~ "\"><svg onload=alert(21)>.exe"
  | extend Evil = "<img src=x onerror=alert(22)>"
  | project Timestamp, DeviceName, Evil
entityMappings:
  - entityType: Host
    fieldMappings:
      - identifier: HostName
        columnName: DeviceName
version: 1.0.0
kind: Scheduled
`,
	"hostile_spl.yml": `name: <script>alert('spl')</script> SPL "><img src=x onerror=alert(30)>
id: 6a1f0d3e-0000-4000-8000-000000000004
version: 1
date: '2024-01-01'
author: <img src=x onerror=alert('splauthor')>
status: production
type: TTP
description: </p><script>alert('spldesc')</script>
data_source:
- Sysmon EventID 1
search: '| tstats count from datamodel=Endpoint.Processes where Processes.process_name="<script>alert(31)</script>" Processes.process="*\"><img src=x onerror=alert(32)>*" by Processes.dest | where count > 0'
how_to_implement: none
known_false_positives: <script>alert('fp')</script>
references:
- javascript:alert('splref')
tags:
  analytic_story:
  - <script>alert('story')</script>
  asset_type: Endpoint
  mitre_attack_id:
  - T1059
  product:
  - Splunk Enterprise
  security_domain: endpoint
`,
	"hostile_id.yml": `title: Hostile id and fields
id: <script>alert('id')</script>
status: test
description: a rule whose id and field names are markup
logsource:
  product: windows
  service: "<script>alert('service')</script>"
detection:
  sel:
    '"><img src=x onerror=alert(14)>|contains': x
    EventID: 4688
  keywords:
    - '<script>alert(''keyword'')</script>'
  condition: sel or keywords
level: high
`,
}

// Every real tag of a page must be one our templates emit, with attributes they use:
// a tag or attribute from rule text means it reached the page unescaped. Text nodes
// hold rule text only in escaped form (&lt;), so every '<' starts a real tag.
var (
	tagRE        = regexp.MustCompile(`<(/?)([^\s>/]*)([^>]*)>`)
	attrRE       = regexp.MustCompile(`\s*([^\s=]+)(\s*=\s*"[^"]*")?`)
	allowedTags  = setOf("!doctype wbr html head meta title link body header nav a form label input button main ol ul li span h1 h2 h3 h4 h5 h6 p blockquote hr mark section dl dt dd table thead tbody tr th td pre code figure figcaption article aside div strong em footer select option details summary")
	allowedAttrs = setOf("lang charset name content rel href class id for type value placeholder action method role aria-label aria-labelledby aria-current title download selected data-copy open")
)

func setOf(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// markupProblems lists tags and attributes the templates do not emit.
func markupProblems(body string) []string {
	// The one script is ours, from /static (CSP script-src 'self'); any other is not.
	body = strings.Replace(body, `<script src="/static/copy.js" defer></script>`, "", 1)
	var out []string
	for _, m := range tagRE.FindAllStringSubmatch(body, -1) {
		name := strings.ToLower(m[2])
		if name == "!doctype" {
			continue
		}
		if !allowedTags[name] {
			out = append(out, "unexpected tag "+m[0])
			continue
		}
		for _, a := range attrRE.FindAllStringSubmatch(m[3], -1) {
			if an := strings.ToLower(a[1]); an != "" && !allowedAttrs[an] {
				out = append(out, "unexpected attribute "+an+" in "+m[0])
			}
		}
	}
	return out
}

func checkMarkup(t *testing.T, page, body string) {
	t.Helper()
	for _, p := range markupProblems(body) {
		t.Errorf("%s: %s", page, p)
	}
}

// TestMarkupCheck makes sure the checker itself catches injections.
func TestMarkupCheck(t *testing.T) {
	for _, bad := range []string{`<p>x<script>alert(1)</script></p>`, `<a href="/x" onclick="y">`, `<p>"><img src=x onerror=alert(1)></p>`,
		`<td>x</td><svg/onload=alert(1)>`, `<a href="/" onmouseover=alert(1)>`} {
		if len(markupProblems(bad)) == 0 {
			t.Errorf("not caught: %s", bad)
		}
	}
	for _, good := range []string{`<p>&lt;script&gt;alert(1)&lt;/script&gt; &#34;&gt;&lt;img onerror=x&gt;</p>`, `<a href="/rules/" class="x">ok</a>`} {
		if p := markupProblems(good); len(p) != 0 {
			t.Errorf("false alarm on %s: %v", good, p)
		}
	}
}

var hrefRE = regexp.MustCompile(`(?i)(?:href|src|action)\s*=\s*"([^"]*)"`)

func TestHostileRulesAreEscaped(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "rules")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range hostileRules {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A few real rules too, so indicators are shared and facets have several values.
	seedDir := filepath.Join(corpusDir, "sigma", "mdecrevoisier", "windows-bits")
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := ingest.Run(context.Background(), cat, []string{src, seedDir}, ingest.Options{Parsers: testParsers()}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Catalog: cat, Attack: testAtt, Events: testEv, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoPrerender: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	// Crawl every internal link from the home page and the search results.
	queue := []string{"/", "/rules/", "/rules/?q=alert", "/rules/?q=script", "/attack/", "/api/search?q=alert", "/api/overview"}
	seen := map[string]bool{}
	rulePages := 0
	for len(queue) > 0 && len(seen) < 400 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		resp, body := getFrom(t, ts, p)
		if resp.StatusCode >= 500 {
			t.Errorf("%s: status %d", p, resp.StatusCode)
			continue
		}
		if strings.HasPrefix(p, "/rules/sigma/") {
			rulePages++
		}
		if strings.HasPrefix(p, "/api/") {
			// encoding/json writes <, > and & as \u003c...; a raw one is a bug.
			if strings.ContainsAny(body, "<>") {
				t.Errorf("%s: raw < or > in JSON", p)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: content type %q", p, ct)
			}
			// JSON results link to rule pages too.
			for _, m := range regexp.MustCompile(`"url": ?"(/rules/[^"]+)"`).FindAllStringSubmatch(body, -1) {
				queue = append(queue, m[1])
			}
			continue
		}
		checkMarkup(t, p, body)
		for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
			u := strings.ReplaceAll(m[1], "&amp;", "&")
			switch {
			case strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//"):
				if strings.HasPrefix(u, "/rules/") || strings.HasPrefix(u, "/indicators/") || strings.HasPrefix(u, "/attack/t") {
					queue = append(queue, u)
				}
			case strings.HasPrefix(u, "#"), strings.HasPrefix(u, "?"):
			case strings.HasPrefix(u, "https://"), strings.HasPrefix(u, "http://"):
				if strings.ContainsAny(u, `<>"' `) {
					t.Errorf("%s: link with markup characters %q", p, u)
				}
			default:
				t.Errorf("%s: link %q is neither internal nor http(s)", p, m[1])
			}
		}
		// Every hostile reference is still shown, as text.
		if strings.Contains(body, "alert(&#39;title&#39;)") && strings.HasPrefix(p, "/rules/sigma/") {
			for _, ref := range []string{"javascript:alert(&#39;ref1&#39;)", "JaVaScRiPt:alert(&#39;ref2&#39;)", "vbscript:msgbox(&#39;ref5&#39;)"} {
				if !strings.Contains(body, ref) {
					t.Errorf("%s: reference %q not shown as text", p, ref)
				}
			}
			if !strings.Contains(body, `<a href="https://example.org/legit"`) {
				t.Errorf("%s: the legitimate reference is not a link", p)
			}
		}
	}
	if rulePages < 2 {
		t.Errorf("crawled %d rule pages, want the hostile ones too (seen %d pages)", rulePages, len(seen))
	}
	// The KQL and SPL hostile rules were ingested and crawled too.
	for _, lang := range []string{"kusto", "splunk"} {
		_, body := getFrom(t, ts, "/api/search?q=alert&language="+lang)
		if !strings.Contains(body, `"language":"`+lang+`"`) {
			t.Errorf("the hostile %s rule was not ingested: %.300s", lang, body)
		}
	}
	// The hostile id still has a working page.
	resp, _ := getFrom(t, ts, "/rules/sigma/"+url.PathEscape("<script>alert('id')</script>")+"/")
	if resp.StatusCode != 200 {
		t.Errorf("rule with a markup id: status %d", resp.StatusCode)
	}
}
