package mcpserver

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
)

const seedTitle = "BITS payload downloaded via commandline"

func TestToolsListed(t *testing.T) {
	res, err := testSession.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
		if len(tl.Description) < 80 {
			t.Errorf("%s: description too thin for an agent: %q", tl.Name, tl.Description)
		}
		if tl.Annotations == nil || !tl.Annotations.ReadOnlyHint {
			t.Errorf("%s: not marked read-only", tl.Name)
		}
		in, ok := tl.InputSchema.(map[string]any)
		if !ok || in["type"] != "object" {
			t.Errorf("%s: input schema %v is not an object schema", tl.Name, tl.InputSchema)
		}
		if tl.OutputSchema == nil {
			t.Errorf("%s: no output schema", tl.Name)
		}
	}
	want := slices.Clone(ToolNames)
	slices.Sort(want)
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	// What an agent relies on to call well: enums, bounds, required arguments.
	props := func(name string) map[string]any {
		for _, tl := range res.Tools {
			if tl.Name == name {
				return tl.InputSchema.(map[string]any)["properties"].(map[string]any)
			}
		}
		return nil
	}
	required := func(name string) []any {
		for _, tl := range res.Tools {
			if tl.Name == name {
				r, _ := tl.InputSchema.(map[string]any)["required"].([]any)
				return r
			}
		}
		return nil
	}
	for _, c := range []struct {
		tool, prop, key string
		want            any
	}{
		{"search_rules", "language", "enum", []any{"sigma", "kusto", "splunk", "elastic", "yaral"}},
		{"search_rules", "limit", "maximum", float64(maxLimit)},
		{"search_rules", "technique", "pattern", techniqueID.String()},
		{"neighbors", "relation", "enum", []any{"equivalent", "stricter", "broader"}},
		{"technique_coverage", "offset", "minimum", float64(0)},
		{"get_rule", "max_values", "maximum", float64(maxValues)},
	} {
		p, _ := props(c.tool)[c.prop].(map[string]any)
		if got, _ := json.Marshal(p[c.key]); string(got) != mustJSON(c.want) {
			t.Errorf("%s.%s %s = %s, want %s", c.tool, c.prop, c.key, got, mustJSON(c.want))
		}
		if d, _ := p["description"].(string); d == "" {
			t.Errorf("%s.%s has no description", c.tool, c.prop)
		}
	}
	for tool, req := range map[string]string{"get_rule": "rule", "neighbors": "rule", "find_indicator": "kind"} {
		if !slices.Contains(required(tool), any(req)) {
			t.Errorf("%s: %s is not required (required %v)", tool, req, required(tool))
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSearchRules(t *testing.T) {
	var all SearchResult
	call(t, "search_rules", map[string]any{"query": "bitsadmin", "limit": 100}, &all)
	if all.Total < 20 {
		t.Fatalf("bitsadmin: %d rules, want the BITS rules of every language", all.Total)
	}
	langs := map[string]bool{}
	for _, f := range all.Facets["language"] {
		langs[f.Value] = f.Count > 0
	}
	for _, l := range rule.Languages {
		if !langs[string(l)] {
			t.Errorf("bitsadmin: no %s rule in facets %v", l, all.Facets["language"])
		}
	}
	seed := false
	for _, h := range all.Results {
		seed = seed || h.Title == seedTitle
		if h.URI != RuleURI(rule.Language(h.Language), strings.TrimPrefix(h.Ref, h.Language+"/")) {
			t.Errorf("hit %s: uri %s does not name the ref", h.Ref, h.URI)
		}
	}
	if !seed {
		t.Errorf("bitsadmin: the seed rule %q is not among %d results", seedTitle, len(all.Results))
	}

	// Filters: every hit satisfies them, checked against the stored rule.
	for _, c := range []struct {
		name  string
		args  map[string]any
		check func(r *rule.Rule) bool
	}{
		{"language", map[string]any{"query": "bitsadmin", "language": "kusto"}, func(r *rule.Rule) bool { return r.Language == rule.Kusto }},
		{"technique", map[string]any{"technique": "t1197"}, func(r *rule.Rule) bool {
			return slices.ContainsFunc(r.Techniques, func(x string) bool { return x == "T1197" || strings.HasPrefix(x, "T1197.") })
		}},
		{"tactic by ID", map[string]any{"query": "bits", "tactic": "TA0003"}, func(r *rule.Rule) bool { return slices.Contains(r.Tactics, "persistence") }},
		{"source in another case", map[string]any{"query": "bitsadmin", "source": "GitHub.com/Splunk/security_content"}, func(r *rule.Rule) bool {
			return r.Source.Repo == "github.com/splunk/security_content"
		}},
		{"severity", map[string]any{"query": "bitsadmin", "severity": "HIGH"}, func(r *rule.Rule) bool { return r.Severity == "high" }},
		{"class", map[string]any{"class": "hunting"}, func(r *rule.Rule) bool { return r.Class == rule.Hunting }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var res SearchResult
			call(t, "search_rules", c.args, &res)
			if res.Total == 0 || len(res.Results) == 0 {
				t.Fatalf("%v: no result", c.args)
			}
			for _, h := range res.Results {
				r, err := testCat.RuleByRef(context.Background(), h.Ref)
				if err != nil {
					t.Fatalf("%s: %v", h.Ref, err)
				}
				if !c.check(r) {
					t.Errorf("%v: %s (%s) does not satisfy the filter", c.args, h.Ref, h.Title)
				}
			}
		})
	}

	// Pages: an offset that is not a multiple of the limit continues the same order.
	var p1, p2 SearchResult
	call(t, "search_rules", map[string]any{"query": "bitsadmin", "limit": 5}, &p1)
	call(t, "search_rules", map[string]any{"query": "bitsadmin", "offset": 3, "limit": 5}, &p2)
	if p1.NextOffset != 5 || p2.NextOffset != 8 || len(p2.Results) != 5 {
		t.Errorf("next_offset %d and %d, %d results; want 5, 8 and 5", p1.NextOffset, p2.NextOffset, len(p2.Results))
	}
	for i := 0; i < 2; i++ {
		if p1.Results[3+i].Ref != p2.Results[i].Ref || all.Results[3+i].Ref != p2.Results[i].Ref {
			t.Errorf("offset 3 result %d is %s, want %s", i, p2.Results[i].Ref, p1.Results[3+i].Ref)
		}
	}
	var last SearchResult
	call(t, "search_rules", map[string]any{"query": "bitsadmin", "offset": all.Total - 2, "limit": 10}, &last)
	if len(last.Results) != 2 || last.NextOffset != 0 {
		t.Errorf("last page: %d results, next_offset %d; want 2 and none", len(last.Results), last.NextOffset)
	}

	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"language": "cobol"}, "language"},
		{map[string]any{"limit": 1000}, "limit"},
		{map[string]any{"offset": -1}, "offset"},
		{map[string]any{"technique": "T99"}, "technique"},
		{map[string]any{"tactic": "sleeping"}, `unknown tactic "sleeping"`},
		{map[string]any{"source": "github.com/nobody/nothing"}, "github.com/SigmaHQ/sigma"},
		{map[string]any{"severity": "urgent"}, `no rule has severity "urgent"`},
		{map[string]any{"class": "alert"}, "class"},
		{map[string]any{"query": strings.Repeat("x", maxArg+1)}, "longer than"},
		{map[string]any{"bogus": 1}, "bogus"},
	} {
		callErr(t, "search_rules", c.args, c.want)
	}
}

func TestGetRuleSeed(t *testing.T) {
	var p RulePage
	n := call(t, "get_rule", map[string]any{"rule": seedTitle}, &p)
	t.Logf("get_rule seed: %d bytes", n)
	if p.Title != seedTitle || p.Language != "sigma" || p.Source != "github.com/mdecrevoisier/SIGMA-detection-rules" {
		t.Fatalf("got %s %q from %s", p.Language, p.Title, p.Source)
	}
	if !slices.Contains(p.Techniques, "T1197") {
		t.Errorf("techniques %v lack T1197", p.Techniques)
	}
	named := false
	for _, row := range p.Attack {
		for _, te := range row.Techniques {
			named = named || (te.ID == "T1197" && te.Name == "BITS Jobs" && row.Tactic.Short == "persistence")
		}
	}
	if !named {
		t.Errorf("ATT&CK rows %+v: no T1197 BITS Jobs under persistence", p.Attack)
	}
	if !slices.ContainsFunc(p.Events, func(e page.EventRow) bool {
		return e.Provider == "Microsoft-Windows-Security-Auditing" && e.EventID == 4688
	}) {
		t.Errorf("events %+v lack Security 4688", p.Events)
	}
	if len(p.Bodies) != 1 || !strings.Contains(p.Bodies[0].Text, `NewProcessName|endswith: '\bitsadmin.exe'`) {
		t.Errorf("bodies %+v lack the rule text", p.Bodies)
	}
	stage := slices.IndexFunc(p.Stages, func(s page.StageView) bool {
		return s.Kind == rule.StageSelection && strings.Contains(s.Text, "NewProcessName|endswith") && strings.Contains(s.Text, "/transfer")
	})
	if stage < 0 {
		t.Errorf("stages %+v: no selection stage with the rule's predicates", p.Stages)
	}
	// The indicator is shared across languages: its corpus count must say so, and agree
	// with find_indicator, which counts through another query.
	var image *page.IndicatorValue
	for _, row := range p.Indicators {
		for i, v := range row.Values {
			if row.Field == "NewProcessName" && row.Kind == rule.EndsW && v.Value == `\bitsadmin.exe` {
				image = &row.Values[i]
			}
		}
	}
	if image == nil {
		t.Fatalf("indicators %+v lack NewProcessName ends_with \\bitsadmin.exe", p.Indicators)
	}
	if len(image.ByLanguage) < 3 || image.Total < 10 {
		t.Errorf("\\bitsadmin.exe corpus count %d %+v, want rules of 3+ languages", image.Total, image.ByLanguage)
	}
	var ind IndicatorResult
	call(t, "find_indicator", map[string]any{"field": "NewProcessName", "kind": "endswith", "value": `\bitsadmin.exe`}, &ind)
	if ind.Rules != image.Total {
		t.Errorf("find_indicator counts %d rules, the page %d", ind.Rules, image.Total)
	}
	// Translations are proved by reading them back; the KQL one names the file.
	kql := slices.IndexFunc(p.Translations, func(tr page.Translation) bool { return tr.Target == "kql" })
	if kql < 0 || !strings.Contains(p.Translations[kql].Query, `FileName =~ "bitsadmin.exe"`) {
		t.Errorf("translations %+v: no KQL translation testing FileName", p.Translations)
	}
	if p.Ref != "sigma/"+p.ID || p.URI != RuleURI(rule.Sigma, p.ID) || p.NeighborTotals == nil {
		t.Errorf("ref %q, uri %q, neighbor totals %v", p.Ref, p.URI, p.NeighborTotals)
	}

	// The same rule by ref and by resource URI; no_body leaves the text out.
	for _, ref := range []string{p.Ref, p.URI, p.ID} {
		var q RulePage
		call(t, "get_rule", map[string]any{"rule": ref, "no_body": true}, &q)
		if q.Ref != p.Ref || len(q.Bodies) != 0 {
			t.Errorf("get_rule %q: ref %s, %d bodies; want %s without body", ref, q.Ref, len(q.Bodies), p.Ref)
		}
	}
	callErr(t, "get_rule", map[string]any{"rule": "BITS payload downloaded via commandlin"}, "closest titles")
	callErr(t, "get_rule", map[string]any{"rule": ""}, "rule")
	callErr(t, "get_rule", map[string]any{}, "rule")
	callErr(t, "get_rule", map[string]any{"rule": p.Ref, "max_values": maxValues + 1}, "max_values")
}

// TestGetRuleBounded: a rule with a long value list is cut to max_values, says so, and
// gives the whole list when asked.
func TestGetRuleBounded(t *testing.T) {
	rules, err := testCat.AllRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var big *rule.Rule
	values := 0
	for _, r := range rules {
		for _, row := range page.BuildRule(r, page.Input{}).Indicators {
			if len(row.Values) > defaultValues && len(row.Values) <= maxValues && len(row.Values) > values {
				big, values = r, len(row.Values)
			}
		}
	}
	if big == nil {
		t.Fatal("no rule of the test corpus has a long indicator list")
	}
	var cutPage, full RulePage
	n1 := call(t, "get_rule", map[string]any{"rule": ruleRef(string(big.Language), big.ID)}, &cutPage)
	n2 := call(t, "get_rule", map[string]any{"rule": ruleRef(string(big.Language), big.ID), "max_values": maxValues}, &full)
	t.Logf("%s (%d values in one row): %d bytes cut, %d bytes whole", big.Title, values, n1, n2)
	longest := func(p RulePage) int {
		m := 0
		for _, row := range p.Indicators {
			m = max(m, len(row.Values))
		}
		return m
	}
	if longest(cutPage) != defaultValues || longest(full) != values {
		t.Errorf("longest row %d values by default and %d in full; want %d and %d", longest(cutPage), longest(full), defaultValues, values)
	}
	if n1 > 48<<10 {
		t.Errorf("the cut page is %d bytes, more than 48 KiB", n1)
		b, _ := json.Marshal(cutPage)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err == nil {
			for k, v := range m {
				t.Logf("  %s: %d bytes", k, len(v))
			}
		}
	}
	if !slices.ContainsFunc(cutPage.Truncated, func(s string) bool { return strings.Contains(s, "max_values") }) {
		t.Errorf("truncated %v does not say how to see more", cutPage.Truncated)
	}
}

func TestFindIndicator(t *testing.T) {
	// Field equivalence: the Sysmon, 4688 and Defender spellings are one indicator.
	var image, native, nameOnly IndicatorResult
	call(t, "find_indicator", map[string]any{"field": "Image", "kind": "ends_with", "value": `\bitsadmin.exe`, "limit": 100}, &image)
	call(t, "find_indicator", map[string]any{"field": "NewProcessName", "kind": "|endswith", "value": `\BITSADMIN.EXE`}, &native)
	call(t, "find_indicator", map[string]any{"field": "process.executable", "kind": "endswith", "value": `\bitsadmin.exe`}, &nameOnly)
	if image.Rules < 10 || image.Rules != native.Rules || image.Key != native.Key || image.Key != nameOnly.Key {
		t.Errorf("Image %d rules (key %q), NewProcessName %d (key %q), process.executable key %q; want one indicator",
			image.Rules, image.Key, native.Rules, native.Key, nameOnly.Key)
	}
	sum := 0
	for _, l := range []string{"sigma", "kusto", "splunk", "elastic"} {
		if image.ByLanguage[l] == 0 {
			t.Errorf("no %s rule tests Image ends_with \\bitsadmin.exe: %v", l, image.ByLanguage)
		}
	}
	for _, n := range image.ByLanguage {
		sum += n
	}
	if sum != image.Rules {
		t.Errorf("by_language sums to %d, rules %d", sum, image.Rules)
	}
	for _, u := range image.Uses {
		if !strings.HasSuffix(strings.ToLower(u.Value), "bitsadmin.exe") {
			t.Errorf("%s tests %s %s %q, not the indicator", u.Ref, u.Field, u.Kind, u.Value)
		}
	}
	// Paging over uses.
	var pg IndicatorResult
	call(t, "find_indicator", map[string]any{"field": "Image", "kind": "ends_with", "value": `\bitsadmin.exe`, "offset": 2, "limit": 3}, &pg)
	if len(pg.Uses) != 3 || pg.Uses[0].Ref != image.Uses[2].Ref || pg.NextOffset != 5 {
		t.Errorf("offset 2: %d uses from %v, next %d", len(pg.Uses), pg.Uses, pg.NextOffset)
	}
	// Nothing matches: the nearest existing values are suggested, ready to pass back.
	var none IndicatorResult
	call(t, "find_indicator", map[string]any{"field": "CommandLine", "kind": "contains", "value": "/transfe"}, &none)
	if none.Rules != 0 || !slices.ContainsFunc(none.Nearest, func(n NearIndicator) bool { return n.Value == "/transfer" && n.Rules > 0 }) {
		t.Errorf("/transfe: %d rules, nearest %+v; want none and /transfer suggested", none.Rules, none.Nearest)
	}
	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"field": "Image", "kind": "like", "value": "x"}, `unknown kind "like"`},
		{map[string]any{"kind": "eq", "value": "x"}, "field is required"},
		{map[string]any{"field": "Image", "kind": "eq", "value": "x", "transforms": []string{"rot13"}}, `unknown transform "rot13"`},
		{map[string]any{"field": "Image", "value": "x"}, "kind"},
	} {
		callErr(t, "find_indicator", c.args, c.want)
	}
}

func TestNeighbors(t *testing.T) {
	// Proved across languages on the test corpus: ESCU's "BITS Job Persistence" matches
	// a superset of the events of SigmaHQ's BITS persistence rule.
	var nb NeighborsResult
	call(t, "neighbors", map[string]any{"rule": "Monitoring For Persistence Via BITS"}, &nb)
	if nb.Totals["broader"] == 0 || !slices.ContainsFunc(nb.Broader, func(r NeighborRule) bool {
		return r.Language == "splunk" && r.Title == "BITS Job Persistence" && r.Basis != ""
	}) {
		t.Fatalf("neighbors %+v: the ESCU rule BITS Job Persistence is not broader", nb)
	}
	// Symmetry: the ESCU rule lists the Sigma rule as stricter.
	var back NeighborsResult
	call(t, "neighbors", map[string]any{"rule": nb.Broader[0].Ref, "relation": "stricter"}, &back)
	if !slices.ContainsFunc(back.Stricter, func(r NeighborRule) bool { return r.Ref == nb.Ref }) || back.Broader != nil {
		t.Errorf("%s stricter %+v lacks %s (or lists broader with relation=stricter)", nb.Broader[0].Ref, back.Stricter, nb.Ref)
	}
	// The seed rule has none: empty lists and zero totals, not an error.
	var seed NeighborsResult
	call(t, "neighbors", map[string]any{"rule": seedTitle}, &seed)
	if seed.Totals["equivalent"]+seed.Totals["stricter"]+seed.Totals["broader"] != len(seed.Equivalent)+len(seed.Stricter)+len(seed.Broader) {
		t.Errorf("seed totals %v disagree with the lists", seed.Totals)
	}
	callErr(t, "neighbors", map[string]any{"rule": seedTitle, "relation": "cousin"}, "relation")
	callErr(t, "neighbors", map[string]any{"rule": "no such rule at all"}, `no rule "no such rule at all"`)
}

func TestTechniqueCoverage(t *testing.T) {
	var bits CoverageResult
	call(t, "technique_coverage", map[string]any{"technique": "T1197", "limit": 100}, &bits)
	if bits.Technique == nil || bits.Technique.Name != "BITS Jobs" || !slices.Contains(bits.Technique.Tactics, "persistence") {
		t.Fatalf("T1197: %+v", bits.Technique)
	}
	if bits.Detections < 10 || len(bits.ByLanguage) < 4 || bits.Covered != 1 || len(bits.Uncovered) != 0 {
		t.Errorf("T1197: %d detections in %v, covered %d, uncovered %v", bits.Detections, bits.ByLanguage, bits.Covered, bits.Uncovered)
	}
	sum := 0
	for _, n := range bits.BySource {
		sum += n
	}
	if sum != bits.Detections {
		t.Errorf("by_source sums to %d, detections %d", sum, bits.Detections)
	}
	for _, r := range bits.RuleList {
		if !strings.HasPrefix(r.Via, "T1197") {
			t.Errorf("%s listed via %q", r.Ref, r.Via)
		}
	}
	// Language filter: only that language, and fewer.
	var spl CoverageResult
	call(t, "technique_coverage", map[string]any{"technique": "T1197", "language": "splunk"}, &spl)
	if spl.Detections != bits.ByLanguage["splunk"] || len(spl.ByLanguage) != 1 {
		t.Errorf("T1197 splunk: %d detections %v; all-language count %d", spl.Detections, spl.ByLanguage, bits.ByLanguage["splunk"])
	}
	var sigmaHQ CoverageResult
	call(t, "technique_coverage", map[string]any{"technique": "T1197", "source": "github.com/sigmahq/sigma"}, &sigmaHQ)
	if len(sigmaHQ.BySource) != 1 || sigmaHQ.BySource["github.com/SigmaHQ/sigma"] != bits.BySource["github.com/SigmaHQ/sigma"] || sigmaHQ.Detections == 0 {
		t.Errorf("T1197 from SigmaHQ: %v; all sources %v", sigmaHQ.BySource, bits.BySource)
	}
	// A tactic: its techniques with detection counts (computed from technique tags,
	// another route than the rule lists) and the gaps.
	var pers CoverageResult
	call(t, "technique_coverage", map[string]any{"tactic": "TA0003"}, &pers)
	if pers.Tactic == nil || pers.Tactic.Short != "persistence" {
		t.Fatalf("TA0003: %+v", pers.Tactic)
	}
	i := slices.IndexFunc(pers.Techniques, func(c TechniqueCount) bool { return c.ID == "T1197" })
	if i < 0 || pers.Techniques[i].Detections != bits.Detections {
		t.Errorf("persistence lists T1197 at %d with %+v; T1197 has %d detections", i, pers.Techniques, bits.Detections)
	}
	if len(pers.Uncovered) == 0 || pers.Covered+len(pers.Uncovered) != len(pers.Techniques) {
		t.Errorf("persistence: covered %d + uncovered %d != %d techniques", pers.Covered, len(pers.Uncovered), len(pers.Techniques))
	}
	for _, u := range pers.Uncovered {
		var one CoverageResult
		call(t, "technique_coverage", map[string]any{"technique": u.ID}, &one)
		if one.Detections != 0 {
			t.Errorf("%s is listed as a gap but has %d detections", u.ID, one.Detections)
		}
		break
	}
	// A parent lists its sub-techniques; gaps are the sub-techniques with no detection.
	var t1059 CoverageResult
	call(t, "technique_coverage", map[string]any{"technique": "T1059"}, &t1059)
	if len(t1059.Techniques) < 5 || !slices.ContainsFunc(t1059.Techniques, func(c TechniqueCount) bool { return c.ID == "T1059.001" && c.Detections > 0 }) {
		t.Errorf("T1059 sub-techniques %+v", t1059.Techniques)
	}
	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, "give either technique"},
		{map[string]any{"technique": "T1197", "tactic": "persistence"}, "give either technique"},
		{map[string]any{"technique": "T9999"}, "no ATT&CK technique T9999"},
		{map[string]any{"technique": "BITS"}, "technique"},
		{map[string]any{"tactic": "napping"}, `unknown tactic "napping"`},
		{map[string]any{"technique": "T1197", "language": "cobol"}, "language"},
	} {
		callErr(t, "technique_coverage", c.args, c.want)
	}
}

func TestEventInfo(t *testing.T) {
	var provs EventResult
	call(t, "event_info", map[string]any{"limit": 2}, &provs)
	if provs.Total < 5 || len(provs.Providers) != 2 || provs.NextOffset != 2 {
		t.Errorf("providers: total %d, %d listed, next %d", provs.Total, len(provs.Providers), provs.NextOffset)
	}
	for i := 1; i < len(provs.Providers); i++ {
		if provs.Providers[i].Rules > provs.Providers[i-1].Rules {
			t.Errorf("providers not most covered first: %+v", provs.Providers[:i+1])
		}
	}
	var sec EventResult
	call(t, "event_info", map[string]any{"provider": "microsoft-windows-security-auditing", "limit": 100}, &sec)
	i := slices.IndexFunc(sec.Events, func(e EventInfo) bool { return e.EventID == 4688 })
	if sec.Provider != "Microsoft-Windows-Security-Auditing" || i < 0 || sec.Events[i].Rules < 100 {
		t.Fatalf("Security events: %s %+v", sec.Provider, sec.Events)
	}
	var ev EventResult
	call(t, "event_info", map[string]any{"provider": "Microsoft-Windows-Security-Auditing", "event_id": 4688, "limit": 100}, &ev)
	d := ev.Event
	if d == nil || d.Title == "" || d.Rules != sec.Events[i].Rules || ev.Total != d.Rules {
		t.Fatalf("4688: %+v (total %d); provider listing says %d rules", d, ev.Total, sec.Events[i].Rules)
	}
	f := slices.IndexFunc(d.Fields, func(f EventField) bool { return f.Name == "NewProcessName" })
	if f < 0 || d.Fields[f].Rules < 50 {
		t.Errorf("4688 fields %+v: NewProcessName has no rule count", d.Fields)
	}
	if !slices.ContainsFunc(d.Indicators, func(x catalog.EventIndicator) bool {
		return x.Field == "NewProcessName" && x.Rules > 1
	}) {
		t.Errorf("4688 common indicators %+v lack NewProcessName", d.Indicators)
	}
	// The field filter narrows the rule list to the rules testing it.
	var cmd EventResult
	call(t, "event_info", map[string]any{"provider": "Microsoft-Windows-Security-Auditing", "event_id": 4688, "field": "CommandLine"}, &cmd)
	c := slices.IndexFunc(d.Fields, func(f EventField) bool { return f.Name == "CommandLine" })
	if c < 0 || cmd.Total != d.Fields[c].Rules || cmd.Total >= ev.Total || cmd.Total == 0 {
		t.Errorf("4688 field CommandLine: %d rules listed, field count %+v, all %d", cmd.Total, d.Fields[c], ev.Total)
	}
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"event_id": 1}, "need provider"},
		{map[string]any{"provider": "Nobody-Provider"}, `no event provider "Nobody-Provider"`},
		{map[string]any{"provider": "Microsoft-Windows-Sysmon", "event_id": 99999}, "no event 99999"},
		{map[string]any{"provider": "Microsoft-Windows-Sysmon", "event_id": 1, "field": "Colour"}, `no field "Colour"`},
		{map[string]any{"provider": "Microsoft-Windows-Sysmon", "field": "Image"}, "field needs event_id"},
	} {
		callErr(t, "event_info", tc.args, tc.want)
	}
}

func TestCatalogStats(t *testing.T) {
	var st StatsResult
	call(t, "catalog_stats", nil, &st)
	stats, err := testCat.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rules != stats.Rules || st.Files == 0 {
		t.Errorf("catalog_stats says %d rules, the catalog %d", st.Rules, stats.Rules)
	}
	sum := 0
	for _, l := range st.ByLanguage {
		sum += l.Count
		if stats.ByLanguage[l.Name] == nil || stats.ByLanguage[l.Name].Rules != l.Count {
			t.Errorf("%s: %d rules, the catalog says %+v", l.Name, l.Count, stats.ByLanguage[l.Name])
		}
	}
	if sum != st.Rules || len(st.ByLanguage) != len(rule.Languages) {
		t.Errorf("by_language %+v sums to %d of %d", st.ByLanguage, sum, st.Rules)
	}
	for _, want := range []struct {
		list []string
		v    string
	}{{st.Sources, "github.com/SigmaHQ/sigma"}, {st.Sources, "github.com/chronicle/detection-rules"}, {st.Tactics, "persistence"},
		{st.Severities, "high"}, {st.Classes, "detection"}} {
		if !slices.Contains(want.list, want.v) {
			t.Errorf("%v lacks %s", want.list, want.v)
		}
	}
	if st.Techniques == 0 || len(st.Shared) == 0 {
		t.Errorf("techniques %d, shared indicators %d", st.Techniques, len(st.Shared))
	}
}

func TestRuleResource(t *testing.T) {
	ctx := context.Background()
	tpl, err := testSession.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tpl.ResourceTemplates) != 1 || tpl.ResourceTemplates[0].URITemplate != "ruledex://rules/{language}/{id}" {
		t.Fatalf("templates %+v", tpl.ResourceTemplates)
	}
	seed, err := testCat.RuleByRef(ctx, seedTitle)
	if err != nil {
		t.Fatal(err)
	}
	res, err := testSession.ReadResource(ctx, &mcp.ReadResourceParams{URI: RuleURI(seed.Language, seed.ID)})
	if err != nil {
		t.Fatal(err)
	}
	var p RulePage
	if len(res.Contents) != 1 || res.Contents[0].MIMEType != "application/json" {
		t.Fatalf("contents %+v", res.Contents)
	}
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &p); err != nil {
		t.Fatal(err)
	}
	if p.Title != seedTitle || !slices.Contains(p.Techniques, "T1197") || len(p.Stages) == 0 {
		t.Errorf("resource: %q %v, %d stages", p.Title, p.Techniques, len(p.Stages))
	}
	for _, uri := range []string{"ruledex://rules/sigma/no-such-id", "ruledex://rules/cobol/" + seed.ID} {
		if _, err := testSession.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri}); err == nil {
			t.Errorf("%s: read, want not found", uri)
		}
	}
}

func TestRuleURIRoundTrip(t *testing.T) {
	for _, id := range []string{"d059842b-6b9d-4ed1-b5c3-5b89143c6ede", "a b/c%d?é", "x~y.z_w"} {
		lang, got, ok := parseRuleURI(RuleURI(rule.Kusto, id))
		if !ok || lang != "kusto" || got != id {
			t.Errorf("%q: round trip gave %q %q %v", id, lang, got, ok)
		}
	}
	for _, bad := range []string{"ruledex://rules/sigma/", "ruledex://rules/sigma", "https://x/rules/sigma/a", "ruledex://rules/sigma/%zz"} {
		if _, _, ok := parseRuleURI(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestSizesAndLatency reports what agents get: the size of each tool's typical answer
// and its latency, and holds them to the bounds the package promises.
func TestSizesAndLatency(t *testing.T) {
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"search_rules", map[string]any{"query": "bitsadmin"}},
		{"get_rule", map[string]any{"rule": seedTitle}},
		{"find_indicator", map[string]any{"field": "Image", "kind": "ends_with", "value": `\bitsadmin.exe`}},
		{"neighbors", map[string]any{"rule": "Monitoring For Persistence Via BITS"}},
		{"technique_coverage", map[string]any{"tactic": "persistence"}},
		{"event_info", map[string]any{"provider": "Microsoft-Windows-Sysmon", "event_id": 1}},
		{"catalog_stats", nil},
	} {
		var out any
		start := time.Now()
		n := call(t, c.tool, c.args, &out)
		d := time.Since(start)
		t.Logf("%-18s %6d bytes %8s", c.tool, n, d.Round(100*time.Microsecond))
		if n > 64<<10 {
			t.Errorf("%s answer is %d bytes, more than 64 KiB", c.tool, n)
		}
	}
}

// TestSearchSeesOtherWriters: `ruledex mcp` keeps running while `ruledex ingest` or
// `ruledex remove` rewrites the catalog from another process; searches and the cached
// whole-catalog answers must follow.
func TestSearchSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	cat, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	bits := corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits")
	kqlDir := corpustest.Path(t, "kql", "falconfriday")
	if _, err := ingest.Run(ctx, cat, []string{bits, kqlDir}, ingest.Options{Parsers: parsers()}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	search := func() *SearchResult {
		_, out, err := srv.search(ctx, nil, SearchArgs{Query: "bits", Language: "sigma"})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	stats := func() int {
		_, out, err := srv.stats(ctx, nil, StatsArgs{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Rules
	}
	before, rulesBefore := search(), stats()
	if before.Total == 0 || stats() != rulesBefore {
		t.Fatal("no BITS rule ingested, or stats change by themselves")
	}
	// Another process (another connection) removes the folder.
	other, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(bits)
	if err != nil {
		t.Fatal(err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Remove(ctx, abs, ""); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if after := search(); after.Total != 0 || len(after.Results) != 0 {
		t.Errorf("after removing %s elsewhere: %d results (%d before)", bits, after.Total, before.Total)
	}
	if n := stats(); n >= rulesBefore || n == 0 {
		t.Errorf("catalog_stats: %d rules after removing the BITS folder, %d before", n, rulesBefore)
	}
}

func TestRecovered(t *testing.T) {
	h := recovered("get_rule", func(context.Context, *mcp.CallToolRequest, GetRuleArgs) (*mcp.CallToolResult, *RulePage, error) {
		var m map[string]int
		m["x"]++ // a nil-map write: the kind of bug a strange rule could trip
		return nil, nil, nil
	})
	_, out, err := h(context.Background(), nil, GetRuleArgs{Rule: "x"})
	if err == nil || out != nil || !strings.Contains(err.Error(), "get_rule failed") {
		t.Errorf("panic became %v, %v", out, err)
	}
}
