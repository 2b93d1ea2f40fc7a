package web

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

var footerAPI = regexp.MustCompile(`This page as JSON: <a href="([^"]+)">`)

// TestJSONTwinLinks follows the footer's "This page as JSON" link of every kind of
// page: each must answer 200 with JSON (the rule pages' link used to 404).
func TestJSONTwinLinks(t *testing.T) {
	pages := layoutPages(t)
	pages["technique"] = "/attack/techniques/T1197/"
	pages["browse"] = "/rules/?language=elastic"
	for name, p := range pages {
		t.Run(name, func(t *testing.T) {
			resp, body := get(t, p)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d", p, resp.StatusCode)
			}
			m := footerAPI.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("%s: no JSON link in the footer", p)
			}
			api := strings.ReplaceAll(m[1], "&amp;", "&")
			var v any
			getJSON(t, api, &v)
		})
	}
	// The old form with a trailing slash redirects to the API path.
	resp, _ := get(t, "/api"+seedURL(t))
	if resp.StatusCode != http.StatusMovedPermanently || strings.HasSuffix(resp.Header.Get("Location"), "/") {
		t.Errorf("API path with a trailing slash: status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestFacetCountsEqualTotals: every facet value's count is the total its link shows,
// for browse and for searches (parent techniques include their sub-techniques on both sides).
func TestFacetCountsEqualTotals(t *testing.T) {
	for _, q := range []string{"", "q=bitsadmin", "q=powershell&language=kusto", "q=lsass", "technique=T1036", "q=mimikatz&severity=high"} {
		var res SearchResponse
		getJSON(t, "/api/search?per_page=1&"+q, &res)
		checked := 0
		for _, facet := range []string{"language", "source", "severity", "status", "logsource", "tactic", "technique", "field"} {
			vals := res.Facets[facet]
			if len(vals) > 8 {
				vals = vals[:8] // the biggest values; enough to catch a rule of counting
			}
			if strings.Contains(q, facet+"=") {
				continue
			}
			for _, v := range vals {
				var sub SearchResponse
				getJSON(t, "/api/search?per_page=1&"+q+"&"+facet+"="+url.QueryEscape(v.Value), &sub)
				if sub.Total != v.Count {
					t.Errorf("%q: facet %s=%s says %d, filtering gives %d", q, facet, v.Value, v.Count, sub.Total)
				}
				checked++
			}
		}
		if checked < 5 {
			t.Errorf("%q: only %d facet values checked", q, checked)
		}
	}
	// The case the issue reported: T1036 under q=bitsadmin.
	var res SearchResponse
	getJSON(t, "/api/search?q=bitsadmin", &res)
	for _, v := range res.Facets["technique"] {
		if v.Value == "T1036" {
			var sub SearchResponse
			getJSON(t, "/api/search?q=bitsadmin&technique=T1036", &sub)
			if sub.Total != v.Count || v.Count < 3 {
				t.Errorf("q=bitsadmin: T1036 facet %d, filter %d", v.Count, sub.Total)
			}
		}
	}
}

var hrefAttr = regexp.MustCompile(`href="([^"]*)"`)

// crawlShape groups URLs that differ only by an ID, so the crawl visits a sample of
// each kind of page and every kind there is.
func crawlShape(u *url.URL) string {
	parts := strings.Split(u.Path, "/")
	for i, p := range parts {
		if i >= 2 && p != "" && !(i == 2 && parts[1] == "rules") {
			parts[i] = "*"
		}
	}
	var keys []string
	for k := range u.Query() {
		if k != "page" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return strings.Join(parts, "/") + "?" + strings.Join(keys, "&")
}

// TestCrawl follows the links of the whole site from / (every kind of page, a sample of
// each): no 404, no 5xx, no page over 1 MB.
func TestCrawl(t *testing.T) {
	const perShape, maxPages = 25, 3000
	type item struct{ path, from string }
	seen := map[string]bool{}
	shapes := map[string]int{}
	queue := []item{{"/", ""}}
	var mu sync.Mutex
	var biggest int
	var biggestPath string
	visited := 0
	for len(queue) > 0 && visited < maxPages {
		batch := queue[:min(len(queue), 16)]
		queue = queue[len(batch):]
		var wg sync.WaitGroup
		found := make([][]item, len(batch))
		for i, it := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body := get(t, it.path)
				switch {
				case resp.StatusCode == http.StatusMovedPermanently:
					loc := resp.Header.Get("Location")
					found[i] = append(found[i], item{loc, it.path})
					return
				case resp.StatusCode != 200:
					t.Errorf("%s (linked from %s): status %d", it.path, it.from, resp.StatusCode)
					return
				}
				mu.Lock()
				if len(body) > biggest {
					biggest, biggestPath = len(body), it.path
				}
				mu.Unlock()
				if len(body) > 1<<20 {
					t.Errorf("%s: %d bytes, over 1 MB", it.path, len(body))
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					return
				}
				for _, m := range hrefAttr.FindAllStringSubmatch(body, -1) {
					h, _, _ := strings.Cut(html.UnescapeString(m[1]), "#")
					if h == "" || !strings.HasPrefix(h, "/") || strings.HasPrefix(h, "//") {
						continue
					}
					found[i] = append(found[i], item{h, it.path})
				}
			}()
		}
		wg.Wait()
		visited += len(batch)
		for _, f := range found {
			for _, it := range f {
				u, err := url.Parse(it.path)
				if err != nil {
					t.Errorf("%s: bad link %q", it.from, it.path)
					continue
				}
				if seen[it.path] {
					continue
				}
				seen[it.path] = true
				sh := crawlShape(u)
				if shapes[sh] >= perShape {
					continue
				}
				shapes[sh]++
				queue = append(queue, it)
			}
		}
	}
	t.Logf("crawled %d pages of %d kinds; largest %s (%d bytes)", visited, len(shapes), biggestPath, biggest)
	for _, want := range []string{"/rules/elastic/*/?", "/rules/yaral/*/?", "/rules/splunk/*/?", "/rules/kusto/*/?", "/rules/sigma/*/?",
		"/rules/eq/*/?", "/indicators/?field&kind&value", "/attack/*/*/?"} {
		if shapes[want] == 0 {
			t.Errorf("crawl never reached a page like %s; kinds: %v", want, keysOf(shapes))
		}
	}
}

func keysOf(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestEventRuleListPaged: Sysmon 1 has thousands of rules; the page says how many and
// pages through all of them, and the language links reach the Splunk rules.
func TestEventRuleListPaged(t *testing.T) {
	var ev EventResponse
	getJSON(t, "/api/events/Microsoft-Windows-Sysmon/1", &ev)
	if ev.ListTotal != ev.Rules || ev.ListTotal < 1000 || len(ev.RuleList) != eventListPerPage || ev.ListFrom != 1 || ev.ListTo != eventListPerPage || ev.NextURL == "" {
		t.Fatalf("rules %d, list total %d, shown %d (%d–%d), next %q", ev.Rules, ev.ListTotal, len(ev.RuleList), ev.ListFrom, ev.ListTo, ev.NextURL)
	}
	_, body := get(t, "/Microsoft-Windows-Sysmon/1")
	want := fmt.Sprintf("Showing 1–200 of %s rules.", commas(ev.ListTotal))
	if !strings.Contains(body, want) {
		t.Errorf("event page lacks %q", want)
	}
	var last EventResponse
	getJSON(t, fmt.Sprintf("/api/events/Microsoft-Windows-Sysmon/1?page=%d", ev.Pages), &last)
	if last.ListTo != ev.ListTotal || last.NextURL != "" || last.PrevURL == "" {
		t.Errorf("last page: %d–%d of %d, next %q prev %q", last.ListFrom, last.ListTo, last.ListTotal, last.NextURL, last.PrevURL)
	}
	sum := 0
	for _, l := range ev.ListLanguages {
		sum += l.Rules
		var sub EventResponse
		getJSON(t, "/api/events/Microsoft-Windows-Sysmon/1?language="+l.Language, &sub)
		if sub.ListTotal != l.Rules || len(sub.RuleList) == 0 || sub.RuleList[0].Language != l.Language {
			t.Errorf("language %s: %d rules said, list of %d", l.Language, l.Rules, sub.ListTotal)
		}
	}
	if sum != ev.ListTotal {
		t.Errorf("languages sum to %d, total %d", sum, ev.ListTotal)
	}
	if ev.Level == "" {
		t.Errorf("Sysmon 1 has a level in the event data; none shown")
	}
	if ev.Example == nil || !strings.Contains(ev.Example.JSON, `"EventID": 1`) || ev.Example.LevelName != "Information" {
		t.Errorf("Sysmon 1 example: %+v", ev.Example)
	}
	if !strings.Contains(body, `id="example"`) || !strings.Contains(body, "level 4 (Information), task 1, opcode 0") {
		t.Errorf("event page lacks the recorded example and its level/task/opcode")
	}
	// An event without a record shows none (nothing invented).
	var none EventResponse
	getJSON(t, "/api/events/Microsoft-Windows-Sysmon/25", &none)
	if none.Example != nil {
		t.Errorf("Sysmon 25 has no record in the corpus, yet an example is shown")
	}
	_, prov := get(t, "/Microsoft-Windows-Sysmon/")
	if !strings.Contains(prov, "recorded with level 4 (Information)") {
		t.Errorf("provider page lacks recorded levels")
	}
}

// TestNewLanguagePages: Elastic and YARA-L rules have pages, facets, filters and the
// new sections (risk, parameters, prose rendered from Markdown, computed columns).
func TestNewLanguagePages(t *testing.T) {
	tests := []struct {
		lang, display string
		html          []string
	}{
		{"elastic", "Elastic", []string{`<dt>Risk score</dt><dd>73</dd>`, `id="parameters"`, `<td class="ident">type</td><td><code>threshold</code></td>`,
			`<h2>Investigation guide`, `<h4>Triage and analysis</h4>`, `<h5>Investigating Potential LSASS Memory Dump via PssCaptureSnapShot</h5>`,
			`<code>process.entity_id</code>`, `<a href="https://ela.st/sysmon-event-10-setup" rel="nofollow noopener noreferrer">`,
			"indexes winlogbeat-*, logs-", "event types process", "Detection rules</a></li><li><a href=\"/rules/?language=elastic\">Elastic"}},
		{"yaral", "YARA-L", []string{`id="computed"`, `<code>$event_count</code>`, `count_<wbr>distinct(`, `<td class="ident">match</td><td><code>$ip over 1h</code></td>`,
			`<dt>Risk score</dt><dd>75</dd>`}},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			var res SearchResponse
			getJSON(t, "/api/search?language="+tt.lang, &res)
			if res.Total != 1 || len(res.Results) != 1 || res.Results[0].Language != tt.lang {
				t.Fatalf("language filter %s: %d results", tt.lang, res.Total)
			}
			var all SearchResponse
			getJSON(t, "/api/search?per_page=1", &all)
			found := false
			for _, v := range all.Facets["language"] {
				found = found || v.Value == tt.lang && v.Count == 1
			}
			if !found {
				t.Errorf("language facet lacks %s: %v", tt.lang, all.Facets["language"])
			}
			resp, body := get(t, res.Results[0].URL)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", res.Results[0].URL, resp.StatusCode)
			}
			for _, w := range tt.html {
				if !strings.Contains(body, w) {
					t.Errorf("%s page lacks %s", tt.lang, w)
				}
			}
			checkMarkup(t, res.Results[0].URL, body)
			var rr RuleResponse
			getJSON(t, "/api"+strings.TrimSuffix(res.Results[0].URL, "/"), &rr)
			if rr.Language != tt.lang || rr.Risk == nil || len(rr.Settings) == 0 {
				t.Errorf("API: language %q, risk %v, settings %v", rr.Language, rr.Risk, rr.Settings)
			}
			if _, b := get(t, "/attack/?language="+tt.lang); !strings.Contains(b, tt.display) {
				t.Errorf("matrix filter for %s does not name it", tt.lang)
			}
		})
	}
}

// TestSearchOperators runs the operators on the real corpus and checks the totals
// relate as the operators say.
func TestSearchOperators(t *testing.T) {
	total := func(q string) int {
		var res SearchResponse
		getJSON(t, "/api/search?per_page=1&q="+url.QueryEscape(q), &res)
		return res.Total
	}
	bits, cert := total("bitsadmin"), total("certutil")
	either := total("bitsadmin OR certutil")
	if bits == 0 || cert == 0 || either < max(bits, cert) || either > bits+cert {
		t.Errorf("bitsadmin %d, certutil %d, OR %d", bits, cert, either)
	}
	if without := total("bitsadmin -transfer"); without >= bits || without+total("bitsadmin transfer") != bits {
		t.Errorf("bitsadmin %d = without transfer %d + with transfer %d?", bits, without, total("bitsadmin transfer"))
	}
	if phrase, words := total(`"BITS job"`), total("BITS job"); phrase == 0 || phrase > words {
		t.Errorf("phrase %d, words %d", phrase, words)
	}
	var res SearchResponse
	getJSON(t, "/api/search?q="+url.QueryEscape(`NewProcessName|endswith: '\bitsadmin.exe'`), &res)
	found := false
	for _, h := range res.Results {
		found = found || h.Title == seedTitle
	}
	if !found || res.Total > bits {
		t.Errorf("pasted Sigma line: %d results, seed found %v", res.Total, found)
	}
	// Matches are highlighted in the snippets of the page.
	_, body := get(t, "/rules/?q=bitsadmin")
	if !strings.Contains(strings.ToLower(body), "<mark>bitsadmin</mark>") {
		t.Errorf("search page does not highlight the match")
	}
	// The class facet: browse lists detections; search shows every class.
	var s SearchResponse
	getJSON(t, "/api/search?per_page=1&q=alert", &s)
	classes := map[string]int{}
	for _, v := range s.Facets["class"] {
		classes[v.Value] = v.Count
	}
	if classes["detection"] == 0 || len(classes) < 2 {
		t.Errorf("class facet for q=alert: %v", classes)
	}
	for c, n := range classes {
		var sub SearchResponse
		getJSON(t, "/api/search?per_page=1&q=alert&class="+url.QueryEscape(c), &sub)
		if sub.Total != n {
			t.Errorf("class %s: facet %d, filter %d", c, n, sub.Total)
		}
	}
	// Teaching material (the M365 Defender webcasts) is its own class: found by search,
	// shown in the class facet, never browsed as a detection.
	var tut SearchResponse
	getJSON(t, "/api/search?q=barbara&class=tutorial", &tut)
	if tut.Total == 0 {
		t.Errorf("no tutorial query mentions Barbara (the Tracking the Adversary webcast does)")
	}
	for _, h := range tut.Results {
		if !strings.Contains(h.Path, "Webcasts/") {
			t.Errorf("tutorial outside the webcasts: %s", h.Path)
		}
	}
	var browse SearchResponse
	getJSON(t, "/api/search?per_page=200&language=kusto", &browse)
	for _, h := range browse.Results {
		if h.Class == "tutorial" || strings.Contains(h.Path, "Webcasts/") {
			t.Errorf("browse lists %s (%s)", h.Path, h.Class)
		}
	}
}

// TestBrowseOrder: browsing lists the most severe detections first.
func TestBrowseOrder(t *testing.T) {
	var res SearchResponse
	getJSON(t, "/api/search?per_page=200", &res)
	if len(res.Results) == 0 || res.Results[0].Severity != "critical" {
		t.Fatalf("first browse result: %+v", res.Results[0])
	}
	rank := map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
	for i := 1; i < len(res.Results); i++ {
		a, b := res.Results[i-1], res.Results[i]
		ra, oka := rank[a.Severity]
		rb, okb := rank[b.Severity]
		if oka && okb && ra > rb {
			t.Fatalf("%q (%s) before %q (%s)", a.Title, a.Severity, b.Title, b.Severity)
		}
	}
}

// TestIndicatorCaseLabel: Image ends_with \powershell.exe counts KQL's case-sensitive
// FileName == "powershell.exe" under a case-insensitive key; the page says the key's
// case sensitivity, marks the cased rows, and lists rules before the field table.
func TestIndicatorCaseLabel(t *testing.T) {
	query := "field=Image&kind=ends_with&value=" + url.QueryEscape(`\powershell.exe`)
	path := "/indicators/?" + query
	var ind IndicatorResponse
	getJSON(t, "/api/indicators?"+query, &ind)
	if ind.Cased || ind.Kind != "ends_with" || ind.Rules < 10 {
		t.Fatalf("indicator: cased %v, kind %s, %d rules", ind.Cased, ind.Kind, ind.Rules)
	}
	casedRows := 0
	for _, g := range ind.Groups {
		for _, r := range g.Rules {
			for _, tr := range r.Transforms {
				if tr == "cased" {
					casedRows++
				}
			}
		}
	}
	if casedRows == 0 {
		t.Fatalf("no rule writes the test case-sensitively; the case this test pins is gone")
	}
	_, body := get(t, path)
	if !strings.Contains(body, "compared case-insensitively") || strings.Contains(body, "compared case-sensitively") {
		t.Errorf("indicator page misstates the case sensitivity")
	}
	if strings.Count(body, `<span class="tag">cased</span>`) != casedRows {
		t.Errorf("%d cased rows, %d cased tags", casedRows, strings.Count(body, `<span class="tag">cased</span>`))
	}
	if i, j := strings.Index(body, `id="lang-`), strings.Index(body, `id="equivalence"`); i < 0 || j < 0 || j < i || strings.Contains(body, ".tsv") {
		t.Errorf("rules at %d, field equivalence at %d, .tsv shown: %v", i, j, strings.Contains(body, ".tsv"))
	}
}

// TestAbsentFieldsSection: a rule testing fields its Sysmon event lacks says which, under
// its event coverage, in the page and the API; a rule whose fields are all there says
// nothing.
func TestAbsentFieldsSection(t *testing.T) {
	tests := []struct {
		id     string // SigmaHQ rule id
		absent []string
	}{
		// net_connection_win_python: Sysmon 3 has neither (the rule's own comment says so).
		{"bef0bc5a-b9ae-425d-85c6-7b2d705980c6", []string{"CommandLine", "ParentImage"}},
		// proc_creation_win_bitsadmin_download: Image and CommandLine are Sysmon 1's.
		{"d059842b-6b9d-4ed1-b5c3-5b89143c6ede", nil},
	}
	for _, tt := range tests {
		path := RuleURL("sigma", tt.id)
		resp, body := get(t, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		var api struct {
			Absent []struct {
				Field  string   `json:"field"`
				Events []string `json:"events"`
			} `json:"absent_fields"`
		}
		getJSON(t, "/api"+strings.TrimSuffix(path, "/"), &api)
		var got []string
		for _, a := range api.Absent {
			got = append(got, a.Field)
			if !slices.Equal(a.Events, []string{"Microsoft-Windows-Sysmon 3"}) {
				t.Errorf("%s: %s checked against %q", path, a.Field, a.Events)
			}
			if want := "<li><code>" + a.Field + "</code>: not in Microsoft-Windows-Sysmon 3</li>"; !strings.Contains(body, want) {
				t.Errorf("%s: page lacks %q", path, want)
			}
		}
		if !slices.Equal(got, tt.absent) {
			t.Errorf("%s: absent fields %q, want %q", path, got, tt.absent)
		}
		if has := strings.Contains(body, `id="absent-fields"`); has != (len(tt.absent) > 0) {
			t.Errorf("%s: absent-fields section shown: %v, want %v", path, has, len(tt.absent) > 0)
		}
	}
}
