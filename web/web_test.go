package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const seedTitle = "BITS payload downloaded via commandline"

// seedURL finds the seed rule's page through the search API, as a user would.
func seedURL(t *testing.T) string {
	t.Helper()
	var res SearchResponse
	getJSON(t, "/api/search?q="+url.QueryEscape(seedTitle)+"&source="+url.QueryEscape("github.com/mdecrevoisier/SIGMA-detection-rules"), &res)
	for _, h := range res.Results {
		if h.Title == seedTitle {
			return h.URL
		}
	}
	t.Fatalf("seed rule %q not found by search (%d results)", seedTitle, res.Total)
	return ""
}

func getJSON(t *testing.T, path string, v any) *http.Response {
	t.Helper()
	resp, body := get(t, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", path, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

// TestPages fetches every kind of page and checks status, type and telling content.
func TestPages(t *testing.T) {
	seed := seedURL(t)
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{"Rules per language", "Most-shared indicators", "Diagnostics", `name="q"`, "Sigma"}},
		{"/rules/", 200, []string{"Detection rules", `id="facet-language"`, `id="facet-tactic"`, `id="facet-field"`, "Next →"}},
		{"/rules/?q=bitsadmin", 200, []string{"Search results for", "bitsadmin", "Bitsadmin"}},
		{"/rules/?language=sigma&tactic=persistence", 200, []string{"Filters:", "Tactic: Persistence"}},
		{"/rules/?field=CommandLine&page=2", 200, []string{"Field: CommandLine", "Page 2 of"}},
		{seed, 200, []string{seedTitle, "Stage 0: condition", "Stage 1: selection", "T1197", "BITS Jobs"}},
		{strings.TrimSuffix(seed, "/"), 301, nil},
		{"/indicators/?field=Image&kind=ends_with&value=" + url.QueryEscape(`\bitsadmin.exe`), 200, []string{"Field equivalence used", "NewProcessName", seedTitle}},
		{"/indicators/?field=NewProcessName&kind=ends_with&value=" + url.QueryEscape(`\bitsadmin.exe`), 200, []string{seedTitle}},
		{"/attack/", 200, []string{"ATT&amp;CK coverage", "Persistence", "T1197", "navigator.json"}},
		{"/attack/?language=sigma&severity=high", 200, []string{"severity high"}},
		{"/attack/techniques/T1197/", 200, []string{"T1197 BITS Jobs", seedTitle, "Persistence"}},
		{"/attack/techniques/t1197/", 200, []string{"T1197 BITS Jobs"}},
		{"/attack/techniques/T1558/", 200, []string{"Sub-techniques", "T1558.003"}},
		{"/attack/tactics/persistence/", 200, []string{"Persistence", "TA0003", "T1197"}},
		{"/attack/tactics/TA0003/", 200, []string{"Persistence"}},
		{"/static/style.css", 200, []string{".heat8"}},
		// Not found and bad requests.
		{"/no/such/page", 404, []string{"Not found"}},
		{"/rules/sigma/no-such-rule/", 404, []string{"no sigma rule"}},
		{"/rules/cobol/x/", 404, nil},
		{"/attack/techniques/T9999/", 404, nil},
		{"/attack/techniques/..%2f..%2fetc%2fpasswd/", 404, nil},
		{"/attack/tactics/nope/", 404, nil},
		{"/static/..%2f..%2fgo.mod", 404, nil},
		{"/static/%2e%2e/web/server.go", 404, nil},
		{"/static/", 404, nil},
		{"/static/nope.css", 404, nil},
		{"/indicators/?field=Image&kind=ends_with&value=nothing-tests-this-value", 404, nil},
		{"/indicators/?field=Image&kind=bogus&value=x", 400, []string{"unknown kind"}},
		{"/indicators/", 400, nil},
		{"/rules/?page=0", 400, []string{"page"}},
		{"/rules/?page=abc", 400, []string{"page"}},
		{"/rules/?per_page=100000", 400, nil},
		{"/rules/?language=cobol", 400, []string{"unknown language"}},
		{"/rules/?technique=notatechnique", 400, nil},
		{"/rules/?q=a&q=b", 400, []string{"given 2 times"}},
		{"/attack/?language=cobol", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, tt.path)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body:\n%.500s", resp.StatusCode, tt.status, body)
			}
			if resp.Header.Get("Content-Security-Policy") == "" {
				t.Error("no Content-Security-Policy header")
			}
			if tt.status != 301 && !strings.HasPrefix(tt.path, "/static/") {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("content type %q", ct)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
}

// TestSeedRulePage checks that the seed rule's page shows everything
// ../shared/seed/rule-page.txt shows, section by section and in that order.
func TestSeedRulePage(t *testing.T) {
	path := seedURL(t)
	_, body := get(t, path)
	sections := []struct {
		id   string
		want []string
	}{
		{"title", []string{seedTitle}},
		{"metadata", []string{"<dt>Status</dt><dd>experimental</dd>", "<dt>Severity</dt><dd>medium</dd>",
			"<dt>Log source</dt><dd>product windows, category process_creation</dd>", "<dt>Author</dt><dd>mdecrevoisier</dd>",
			">github.<wbr>com/<wbr>mdecrevoisier/<wbr>SIGMA-<wbr>detection-<wbr>rules</a>", `href="https://github.com/mdecrevoisier/SIGMA-detection-rules/blob/`}},
		{"description", []string{"Detects scenarios where an attacker downloads a payload by abusing BITS software.",
			"inspect &#34;Bits-client&#34; event log and search for ID 59 and 60."}},
		{"references", []string{`<a href="https://www.hackingarticles.in/windows-for-pentester-bitsadmin/"`}},
		{"attack", []string{"Exfiltration", "Lateral Movement", "Command and Control", "Persistence",
			`href="/attack/techniques/T1048/">T1048</a> Exfiltration Over Alternative Protocol`,
			`href="/attack/techniques/T1570/">T1570</a> Lateral Tool Transfer`,
			`href="/attack/techniques/T1105/">T1105</a> Ingress Tool Transfer`,
			`href="/attack/techniques/T1197/">T1197</a> BITS Jobs`}},
		{"events", []string{"4688"}},
		{"body", []string{"<span class=\"tag\">yaml</span>", "title: BITS payload downloaded via commandline",
			"NewProcessName|endswith: &#39;\\bitsadmin.exe&#39;", "- attack.t1197 # Bits jobs", "level: medium</code></pre>"}},
		{"stages", []string{"Stage 0: condition</h3>\n<pre>selection</pre>", "Stage 1: selection",
			"selection:\n  NewProcessName|endswith: &#39;\\bitsadmin.exe&#39;\n  CommandLine|contains:\n  - &#39;/transfer&#39;\n  - &#39;/download&#39;"}},
		{"indicators", []string{`<a href="/rules/?field=CommandLine">CommandLine</a>`, "match", "/download", "/transfer",
			`<a href="/rules/?field=Image">NewProcessName</a>`, "ends_with", `\bitsadmin.exe</a> <span class="count">corpus `}},
	}
	last := -1
	for _, s := range sections {
		start := strings.Index(body, `id="`+s.id+`"`)
		if start < 0 {
			t.Errorf("section %s missing", s.id)
			continue
		}
		if start < last {
			t.Errorf("section %s out of order", s.id)
		}
		last = start
		end := strings.Index(body[start:], "</section>")
		if s.id == "title" {
			end = strings.Index(body[start:], "</h1>")
		}
		if end < 0 {
			end = len(body) - start
		}
		sec := body[start : start+end]
		for _, w := range s.want {
			if !strings.Contains(sec, w) {
				t.Errorf("section %s lacks %q", s.id, w)
			}
		}
	}
	// Empty sections are left out, never shown empty.
	for _, id := range []string{"exclusions", "outputs", "classification"} {
		if strings.Contains(body, `id="`+id+`"`) {
			t.Errorf("section %s shown though the rule has none", id)
		}
	}
	// The indicator's corpus count on the page equals the number of rules its own
	// indicator page lists.
	m := regexp.MustCompile(`href="(/indicators/\?[^"]*bitsadmin.exe)">\\bitsadmin.exe</a> <span class="count">corpus (\d+) \(([^)]*)\)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal(`no corpus count for \bitsadmin.exe`)
	}
	var ind IndicatorResponse
	getJSON(t, "/api/indicators?"+strings.ReplaceAll(strings.SplitN(m[1], "?", 2)[1], "&amp;", "&"), &ind)
	if m[2] != strconv.Itoa(ind.Rules) {
		t.Errorf("page says corpus %s; the indicator page lists %d rules", m[2], ind.Rules)
	}
	for _, part := range strings.Split(m[3], ", ") {
		lang, n, _ := strings.Cut(part, " ")
		if n != strconv.Itoa(ind.ByLanguage[lang]) {
			t.Errorf("page says %s %s; the indicator page lists %d", lang, n, ind.ByLanguage[lang])
		}
	}
}

// TestAPI checks the JSON API's shapes: stable snake_case names and page URLs.
func TestAPI(t *testing.T) {
	seed := seedURL(t)

	var search map[string]any
	getJSON(t, "/api/search?q=bitsadmin", &search)
	for _, k := range []string{"total", "results", "facets", "page", "per_page", "pages"} {
		if _, ok := search[k]; !ok {
			t.Errorf("search lacks %q", k)
		}
	}
	results := search["results"].([]any)
	if len(results) == 0 {
		t.Fatal("search bitsadmin: no results")
	}
	first := results[0].(map[string]any)
	for _, k := range []string{"id", "title", "language", "url", "severity", "source"} {
		if _, ok := first[k]; !ok {
			t.Errorf("search result lacks %q", k)
		}
	}
	if u := first["url"].(string); !strings.HasPrefix(u, "/rules/sigma/") || !strings.HasSuffix(u, "/") {
		t.Errorf("result url %q", u)
	}
	facets := search["facets"].(map[string]any)
	for _, f := range []string{"language", "source", "severity", "status", "logsource", "tactic", "technique", "field"} {
		if _, ok := facets[f]; !ok {
			t.Errorf("facets lack %q", f)
		}
	}

	// Browse lists detections only; search finds every class.
	var browse SearchResponse
	getJSON(t, "/api/search?per_page=200", &browse)
	for _, h := range browse.Results {
		if h.Class != "detection" && h.Class != "" {
			t.Errorf("browse lists %s rule %s", h.Class, h.ID)
		}
	}

	var r map[string]any
	getJSON(t, "/api"+strings.TrimSuffix(seed, "/"), &r)
	for _, k := range []string{"url", "id", "language", "title", "meta", "description", "references", "attack", "bodies", "stages", "indicators", "breadcrumb"} {
		if _, ok := r[k]; !ok {
			t.Errorf("rule API lacks %q", k)
		}
	}
	if r["url"] != seed {
		t.Errorf("rule url %v, want %s", r["url"], seed)
	}
	inds := r["indicators"].([]any)
	v0 := inds[0].(map[string]any)["values"].([]any)[0].(map[string]any)
	if u, _ := v0["url"].(string); !strings.HasPrefix(u, "/indicators/?") {
		t.Errorf("indicator value url %q", u)
	}

	var tech TechniqueResponse
	getJSON(t, "/api/techniques/T1197", &tech)
	if tech.Name != "BITS Jobs" || tech.Rules == 0 || tech.ByLanguage["sigma"] == 0 {
		t.Errorf("technique: %+v", tech)
	}
	var tac TacticResponse
	getJSON(t, "/api/tactics/persistence", &tac)
	if tac.ID != "TA0003" || tac.Covered == 0 || tac.Covered > tac.Total {
		t.Errorf("tactic: id %s covered %d of %d", tac.ID, tac.Covered, tac.Total)
	}
	var mx Matrix
	getJSON(t, "/api/matrix?language=sigma", &mx)
	if len(mx.Tactics) < 12 || mx.Rules == 0 || mx.Max == 0 {
		t.Errorf("matrix: %d tactics, %d rules, max %d", len(mx.Tactics), mx.Rules, mx.Max)
	}
	var ov map[string]any
	getJSON(t, "/api/overview", &ov)
	for _, k := range []string{"rules", "by_language", "by_source", "most_shared_indicators", "diagnostics"} {
		if _, ok := ov[k]; !ok {
			t.Errorf("overview lacks %q", k)
		}
	}
	var idx map[string]any
	getJSON(t, "/api/", &idx)
}

// TestOtherLanguages opens the first KQL and SPL rules of the catalog: every language's
// page renders with its body and breadcrumb.
func TestOtherLanguages(t *testing.T) {
	for _, lang := range []struct{ id, name, body string }{{"kusto", "Kusto", "kusto"}, {"splunk", "Splunk", "spl"}} {
		t.Run(lang.id, func(t *testing.T) {
			var res SearchResponse
			getJSON(t, "/api/search?per_page=20&language="+lang.id, &res)
			if res.Total == 0 {
				t.Fatalf("no %s detections in the catalog", lang.id)
			}
			for _, h := range res.Results {
				resp, body := get(t, h.URL)
				if resp.StatusCode != 200 {
					t.Fatalf("%s: status %d", h.URL, resp.StatusCode)
				}
				for _, w := range []string{`<a href="/rules/?language=` + lang.id + `">` + lang.name + `</a>`, `id="body"`, `class="language-` + lang.body + `"`} {
					if !strings.Contains(body, w) {
						t.Errorf("%s: lacks %q", h.URL, w)
					}
				}
			}
		})
	}
	// The seed's /transfer is shared with a KQL rule (REFERENCE: corpus 2 (sigma 1, kusto 1)).
	_, body := get(t, seedURL(t))
	if !regexp.MustCompile(`/transfer</a> <span class="count">corpus \d+ \(.*kusto \d+`).MatchString(body) {
		t.Error("the seed's /transfer indicator is not counted across languages")
	}
}

// TestEventPages renders the provider index, every provider page and one event of
// each provider (plus Sysmon 1 and Security 4688), through HTML and the API, checking
// the markup of each and the seed rule's event link.
func TestEventPages(t *testing.T) {
	var idx ProvidersResponse
	getJSON(t, "/api/events", &idx)
	if len(idx.Providers) < 3 {
		t.Fatalf("%d providers", len(idx.Providers))
	}
	_, body := get(t, "/events/")
	checkMarkup(t, "/events/", body)
	pages := []string{"/Microsoft-Windows-Sysmon/1", "/Microsoft-Windows-Security-Auditing/4688"}
	for _, p := range idx.Providers {
		resp, body := get(t, p.URL)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", p.URL, resp.StatusCode)
			continue
		}
		checkMarkup(t, p.URL, body)
		var pr ProviderResponse
		getJSON(t, "/api/events/"+url.PathEscape(p.Slug), &pr)
		if pr.Events != len(pr.EventList) || pr.Events == 0 {
			t.Errorf("%s: %d events, %d listed", p.Name, pr.Events, len(pr.EventList))
			continue
		}
		if !strings.Contains(body, fmt.Sprintf("%d event", pr.Events)) {
			t.Errorf("%s: page does not say how many events", p.URL)
		}
		pages = append(pages, pr.EventList[0].URL)
	}
	for _, p := range pages {
		resp, body := get(t, p)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", p, resp.StatusCode)
			continue
		}
		checkMarkup(t, p, body)
		for _, w := range []string{`id="fields"`, `id="rules"`} {
			if !strings.Contains(body, w) {
				t.Errorf("%s: lacks %s", p, w)
			}
		}
	}
	var ev EventResponse
	getJSON(t, "/api/events/Microsoft-Windows-Sysmon/1", &ev)
	counted := map[string]int{}
	for _, f := range ev.Fields {
		counted[f.Name] = f.Rules
	}
	if counted["CommandLine"] == 0 || counted["Image"] == 0 || len(ev.Indicators) == 0 || ev.Rules == 0 {
		t.Errorf("Sysmon 1: CommandLine %d, Image %d rules, %d indicators, %d rules", counted["CommandLine"], counted["Image"], len(ev.Indicators), ev.Rules)
	}
	// The field link lists exactly as many rules as the field's count.
	var byField EventResponse
	getJSON(t, "/api/events/Microsoft-Windows-Sysmon/1?field=CommandLine", &byField)
	if byField.ListTotal != counted["CommandLine"] || len(byField.RuleList) != min(counted["CommandLine"], eventListPerPage) {
		t.Errorf("Sysmon 1 CommandLine: count %d, list total %d, shown %d", counted["CommandLine"], byField.ListTotal, len(byField.RuleList))
	}
	_, seed := get(t, seedURL(t))
	if !strings.Contains(seed, `<a href="/Microsoft-Windows-Security-Auditing/4688">4688</a></td><td>A new process has been created.`) {
		t.Error("the seed rule's event coverage does not link Security-Auditing 4688")
	}
	for _, p := range []string{"/Microsoft-Windows-Sysmon/99999", "/Microsoft-Windows-Sysmon/abc", "/No-Such-Provider/1", "/api/events/nope", "/api/events/Microsoft-Windows-Sysmon/0"} {
		if resp, _ := get(t, p); resp.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := get(t, "/Microsoft-Windows-Sysmon/1?field=NoSuchField"); resp.StatusCode != 400 {
		t.Errorf("unknown field: status %d, want 400", resp.StatusCode)
	}
}

// TestNeighbors finds a rule with equivalent rules and one with stricter
// alternatives through the API, and checks their pages and the class page.
func TestNeighbors(t *testing.T) {
	var eqClass, withStricter string
	var res SearchResponse
	for page := 1; page <= 20 && (eqClass == "" || withStricter == ""); page++ {
		getJSON(t, fmt.Sprintf("/api/search?per_page=200&page=%d", page), &res)
		for _, h := range res.Results {
			if eqClass != "" && withStricter != "" {
				break
			}
			var r RuleResponse
			getJSON(t, "/api"+strings.TrimSuffix(h.URL, "/"), &r)
			if r.Neighbors == nil {
				continue
			}
			if eqClass == "" && len(r.Neighbors.Equivalent) > 0 && r.Neighbors.ClassURL != "" {
				eqClass = r.Neighbors.ClassURL
				_, body := get(t, h.URL)
				if !strings.Contains(body, `id="equivalent"`) || !strings.Contains(body, r.Neighbors.Equivalent[0].URL) {
					t.Errorf("%s: Neighbors section lacks the equivalent rule", h.URL)
				}
			}
			if withStricter == "" && len(r.Neighbors.Stricter) > 0 {
				withStricter = h.URL
				_, body := get(t, h.URL)
				if !strings.Contains(body, `id="stricter"`) || !strings.Contains(body, r.Neighbors.Stricter[0].URL) {
					t.Errorf("%s: Neighbors section lacks the stricter rule", h.URL)
				}
			}
		}
		if page >= res.Pages {
			break
		}
	}
	if eqClass == "" || withStricter == "" {
		t.Fatalf("no rule with equivalents (%q) or stricter alternatives (%q) found", eqClass, withStricter)
	}
	resp, body := get(t, eqClass)
	if resp.StatusCode != 200 || !strings.Contains(body, "rules with the same canonical form") {
		t.Fatalf("%s: status %d", eqClass, resp.StatusCode)
	}
	checkMarkup(t, eqClass, body)
	var ec EqClassResponse
	getJSON(t, "/api"+strings.TrimSuffix(eqClass, "/"), &ec)
	if ec.Size < 2 || len(ec.Members) != ec.Size || len(ec.Indicators) == 0 {
		t.Errorf("class %s: size %d, %d members, %d indicators", ec.ID, ec.Size, len(ec.Members), len(ec.Indicators))
	}
	if resp, _ := get(t, "/rules/eq/nope/"); resp.StatusCode != 404 {
		t.Errorf("unknown class: status %d", resp.StatusCode)
	}
}

// TestAPIErrors checks that API errors are JSON with the right status.
func TestAPIErrors(t *testing.T) {
	tests := []struct {
		path   string
		status int
	}{
		{"/api/nope", 404},
		{"/api/rules/sigma/no-such-id", 404},
		{"/api/rules/cobol/x", 404},
		{"/api/techniques/T0000", 404},
		{"/api/tactics/nope", 404},
		{"/api/search?page=-1", 400},
		{"/api/search?language=cobol", 400},
		{"/api/search?technique=%3Cscript%3E", 400},
		{"/api/indicators?field=Image", 400},
		{"/api/indicators?field=Image&kind=eq&value=never-seen-anywhere", 404},
		{"/api/matrix?language=x", 400},
		{"/api/search?q=" + strings.Repeat("a", 3000), 400},
	}
	for _, tt := range tests {
		t.Run(tt.path[:min(len(tt.path), 60)], func(t *testing.T) {
			resp, body := get(t, tt.path)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
			var e apiError
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("not JSON: %v: %s", err, body)
			}
			if e.Status != tt.status || e.Error == "" {
				t.Errorf("error body %+v", e)
			}
		})
	}
}

// TestSearchRanking checks that FTS ranking puts a title match first and that search
// finds non-detections browse hides.
func TestSearchRanking(t *testing.T) {
	var res SearchResponse
	getJSON(t, "/api/search?q="+url.QueryEscape(seedTitle), &res)
	if res.Total == 0 || res.Results[0].Title != seedTitle {
		t.Errorf("searching the seed title: first result %+v", res.Results)
	}
	// Prefix search and punctuation-only words do not break the query.
	for _, q := range []string{"bitsad*", `"quoted" OR NOT (x`, "***", "-", "NEAR(a b)", "title:foo"} {
		resp, body := get(t, "/api/search?q="+url.QueryEscape(q))
		if resp.StatusCode != 200 {
			t.Errorf("q=%q: status %d: %s", q, resp.StatusCode, body)
		}
	}
}

// TestNavigatorLayer validates the export against layer format 4.5: required keys and
// types, technique IDs that exist in the bundle, tactics that the technique belongs to.
func TestNavigatorLayer(t *testing.T) {
	for _, q := range []string{"", "?language=sigma", "?severity=high&source=" + url.QueryEscape("github.com/SigmaHQ/sigma")} {
		t.Run(q, func(t *testing.T) {
			var raw map[string]any
			resp := getJSON(t, "/attack/navigator.json"+q, &raw)
			_ = resp
			validateLayer(t, raw)
		})
	}
}

func validateLayer(t *testing.T, raw map[string]any) {
	t.Helper()
	str := func(m map[string]any, k string) string {
		v, ok := m[k].(string)
		if !ok {
			t.Errorf("layer: %q is %T, want string", k, m[k])
		}
		return v
	}
	if str(raw, "name") == "" {
		t.Error("layer: empty name")
	}
	if d := str(raw, "domain"); d != "enterprise-attack" {
		t.Errorf("layer: domain %q", d)
	}
	vers, ok := raw["versions"].(map[string]any)
	if !ok {
		t.Fatal("layer: no versions object")
	}
	if v := str(vers, "layer"); v != "4.5" {
		t.Errorf("layer version %q", v)
	}
	if v := str(vers, "navigator"); v < "4.9" {
		t.Errorf("navigator version %q, must be at least 4.9.0", v)
	}
	grad, ok := raw["gradient"].(map[string]any)
	if !ok {
		t.Fatal("layer: no gradient")
	}
	if cs, ok := grad["colors"].([]any); !ok || len(cs) < 2 {
		t.Errorf("gradient colors %v", grad["colors"])
	}
	if grad["minValue"].(float64) >= grad["maxValue"].(float64) {
		t.Errorf("gradient min %v >= max %v", grad["minValue"], grad["maxValue"])
	}
	for _, li := range raw["legendItems"].([]any) {
		m := li.(map[string]any)
		str(m, "label")
		str(m, "color")
	}
	techs, ok := raw["techniques"].([]any)
	if !ok || len(techs) == 0 {
		t.Fatalf("layer: techniques %T len %d", raw["techniques"], len(techs))
	}
	for _, x := range techs {
		m := x.(map[string]any)
		id := str(m, "techniqueID")
		te, ok := testAtt.Technique(id)
		if !ok || te.ID != id {
			t.Errorf("technique %q not in the ATT&CK bundle", id)
			continue
		}
		if tac, ok := m["tactic"].(string); ok {
			found := false
			for _, tt := range te.Tactics {
				found = found || tt == tac
			}
			if !found {
				t.Errorf("technique %s listed under tactic %s it does not belong to", id, tac)
			}
		}
		if s, ok := m["score"].(float64); !ok || s < 1 {
			t.Errorf("technique %s score %v", id, m["score"])
		}
		for _, l := range m["links"].([]any) {
			lm := l.(map[string]any)
			if u := str(lm, "url"); !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				t.Errorf("link url %q lacks a protocol", u)
			}
			str(lm, "label")
		}
	}
}

// TestMatrixCounts checks the matrix against an independent count from the API's
// technique page: a parent's cell is the number of detection rules tagging it or a
// sub-technique.
func TestMatrixCounts(t *testing.T) {
	var mx Matrix
	getJSON(t, "/api/matrix", &mx)
	cells := map[string]int{}
	for _, col := range mx.Tactics {
		for _, c := range col.Techniques {
			cells[c.ID] = c.Count
		}
	}
	for _, id := range []string{"T1197", "T1059", "T1558", "T1003"} {
		var tech TechniqueResponse
		getJSON(t, "/api/techniques/"+id, &tech)
		if cells[id] != tech.Detections {
			t.Errorf("%s: matrix cell %d, technique page lists %d detections", id, cells[id], tech.Detections)
		}
	}
}

// TestMethods checks that the read-only wiki refuses writes, in JSON under /api/.
func TestMethods(t *testing.T) {
	for _, p := range []string{"/api/search?q=x", "/rules/"} {
		resp, err := testTS.Client().Post(testTS.URL+p, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
			t.Errorf("POST %s: status %d, Allow %q", p, resp.StatusCode, resp.Header.Get("Allow"))
		}
		if strings.HasPrefix(p, "/api/") != strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("POST %s: content type %q", p, resp.Header.Get("Content-Type"))
		}
	}
	req, _ := http.NewRequest(http.MethodHead, testTS.URL+"/rules/", nil)
	resp, err := testTS.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HEAD /rules/: status %d", resp.StatusCode)
	}
}

// TestSecurityHeaders checks the CSP on a page, an API response and an error.
func TestSecurityHeaders(t *testing.T) {
	for _, p := range []string{"/", "/api/overview", "/nope", "/api/nope", "/static/style.css"} {
		resp, _ := get(t, p)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") && !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
	}
}
