package elastic

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

func parseFile(t *testing.T, rel string) []*rule.Rule {
	t.Helper()
	data, err := os.ReadFile(corpustest.Path(t, "elastic", "detection-rules", rel))
	if err != nil {
		t.Fatal(err)
	}
	if !(Parser{}).Detect(rel, data) {
		t.Fatalf("%s not detected", rel)
	}
	rs, diags := Parser{}.Parse(rule.Source{Repo: "github.com/elastic/detection-rules", Path: rel}, data)
	if len(diags) > 0 {
		t.Fatalf("%s: file diagnostics %v", rel, diags)
	}
	return rs
}

func setting(r *rule.Rule, name string) string {
	for _, s := range r.Settings {
		if s.Name == name {
			return s.Value
		}
	}
	return ""
}

// Expectations are read by hand from the files named.
func TestRealRules(t *testing.T) {
	t.Run("building block EQL rule", func(t *testing.T) {
		rs := parseFile(t, "rules_building_block/command_and_control_bitsadmin_activity.toml")
		if len(rs) != 1 {
			t.Fatalf("%d rules", len(rs))
		}
		r := rs[0]
		checks := []struct{ what, got, want string }{
			{"id", r.ID, "8eec4df1-4b4b-4502-b6c3-c788714604c9"},
			{"title", r.Title, "Bitsadmin Activity"},
			{"class", string(r.Class), "building-block"},
			{"type", r.Type, "eql"},
			{"body_lang", r.BodyLang, "eql"},
			{"status", r.Status, "production"},
			{"severity", r.Severity, "low"},
			{"data sources", strings.Join(r.LogSource.DataSources, ","), "endpoint,windows,system"},
			{"product", r.LogSource.Product, "windows"},
			{"category", r.LogSource.Category, "process_creation"},
			{"event types", strings.Join(r.LogSource.EventTypes, ","), "process"},
			{"techniques", strings.Join(r.Techniques, ","), "T1105,T1197"},
			{"tactics", strings.Join(r.Tactics, ","), "command-and-control,defense-evasion,persistence"},
			{"building block setting", setting(r, "building_block_type"), "default"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
			}
		}
		if r.RiskScore != 21 || r.Source.Line == 0 || len(r.Diagnostics) != 0 {
			t.Errorf("risk %d, line %d, diags %v", r.RiskScore, r.Source.Line, r.Diagnostics)
		}
		// `query = '''` is line 43; the query text starts on line 44.
		if r.Stages[0].Kind != rule.StageCondition || r.Stages[0].Pos.Line != 44 {
			t.Errorf("stage 0 %+v, want the condition at line 44", r.Stages[0])
		}
		// process.name : "bitsadmin.exe" counts with Sigma's Image|endswith \bitsadmin.exe.
		_, want := fieldmap.Default().IndicatorKey(nil, "Image", rule.EndsW, nil, `\bitsadmin.exe`)
		found := false
		for _, in := range fieldmap.Default().Indicators(r) {
			found = found || in.Key == want && !in.Negated
		}
		if !found {
			t.Errorf("no Image ends_with \\bitsadmin.exe indicator in %+v", fieldmap.Default().Indicators(r))
		}
	})
	t.Run("machine learning rule", func(t *testing.T) {
		r := parseFile(t, "rules/integrations/gcp/ml_gcp_rare_method_by_city.toml")[0]
		if r.Body != "" || len(r.Diagnostics) != 0 || len(r.Stages) != 1 || r.Stages[0].Kind != rule.StageOpaque || r.Stages[0].Index != 1 ||
			!strings.Contains(r.Stages[0].Text, "gcp_audit_rare_method_for_a_city_ea") {
			t.Errorf("ML rule: body %q, diags %v, stages %+v", r.Body, r.Diagnostics, r.Stages)
		}
		if setting(r, "machine_learning_job_id") != "gcp_audit_rare_method_for_a_city_ea" || setting(r, "anomaly_threshold") != "50" {
			t.Errorf("settings %+v", r.Settings)
		}
	})
	t.Run("new terms rule", func(t *testing.T) {
		r := parseFile(t, "rules/windows/command_and_control_new_terms_rmm_signer.toml")[0]
		if setting(r, "new_terms.fields") != "process.code_signature.subject_name" || setting(r, "new_terms.history_window_start") != "now-10d" {
			t.Errorf("settings %+v", r.Settings)
		}
		// [rule.investigation_fields] lists 17 fields from @timestamp to process.Ext.token.elevation_level.
		if len(r.Outputs) != 17 || r.Outputs[0] != "@timestamp" || r.Outputs[16] != "process.Ext.token.elevation_level" {
			t.Errorf("outputs %v", r.Outputs)
		}
		last := r.Stages[len(r.Stages)-1]
		if last.Kind != rule.StageAggregation || last.Aggregation == nil || last.Aggregation.Timespan != "10d" || r.BodyLang != "kuery" {
			t.Errorf("last stage %+v, body_lang %q", last, r.BodyLang)
		}
		if r.Stages[0].Pos.Line != 45 {
			t.Errorf("query at line %d, want 45", r.Stages[0].Pos.Line)
		}
		// One stage per top-level conjunct of the Kibana query, each at its own line.
		var got []string
		for _, st := range r.Stages[1 : len(r.Stages)-1] {
			got = append(got, fmt.Sprintf("%d %s", st.Pos.Line, st.Label))
		}
		want := []string{`45 host.os.type: "windows"`, `46 event.category: "process"`, `46 event.type: "start"`,
			`47 process.code_signature.subject_name: ( "Action1 Corporation"…`}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("stages\n got %q\nwant %q", got, want)
		}
	})
	t.Run("threshold rule with cardinality", func(t *testing.T) {
		r := parseFile(t, "rules/_deprecated/multiple_alerts_different_tactics_host.toml")[0]
		if len(r.Outputs) != 0 {
			t.Errorf("outputs %v, the rule has no investigation_fields", r.Outputs)
		}
		if r.Status != "deprecated" || setting(r, "threshold.field") != "host.id, host.name" || setting(r, "threshold.value") != "2" ||
			setting(r, "threshold.cardinality") != "kibana.alert.rule.threat.tactic.id >= 3" {
			t.Errorf("status %q settings %+v", r.Status, r.Settings)
		}
		if strings.Join(r.GroupBy, ",") != "host.id,host.name" {
			t.Errorf("group by %v", r.GroupBy)
		}
	})
	t.Run("hunting file with several queries", func(t *testing.T) {
		rs := parseFile(t, "hunting/linux/queries/persistence_via_cron.toml")
		if len(rs) != 4 {
			t.Fatalf("%d rules, want one per query (4)", len(rs))
		}
		wantIDs := []string{"e1cffb7c-4acf-4e7a-8d72-b8b7657cf7b8", "e1cffb7c-4acf-4e7a-8d72-b8b7657cf7b8-2",
			"e1cffb7c-4acf-4e7a-8d72-b8b7657cf7b8-3", "e1cffb7c-4acf-4e7a-8d72-b8b7657cf7b8-4"}
		wantLang := []string{"esql", "esql", "sql", "sql"}
		wantLine := []int{23, 55, 64, 96}
		for i, r := range rs {
			if r.ID != wantIDs[i] || r.BodyLang != wantLang[i] || r.Class != rule.Hunting || r.Source.Line != wantLine[i] || r.Source.Index != i {
				t.Errorf("query %d: id %q lang %q class %q line %d index %d", i, r.ID, r.BodyLang, r.Class, r.Source.Line, r.Source.Index)
			}
			if len(r.Stages) == 0 || r.HasErrors() {
				t.Errorf("query %d: %d stages, diags %v", i, len(r.Stages), r.Diagnostics)
			}
		}
	})
}

func TestBrokenFiles(t *testing.T) {
	tests := []struct {
		name, data string
		rules      int
		code       string
		line       int
	}{
		{"toml syntax error", "[rule]\nname = \"x\"\nquery = '''\nprocess where true\n", 0, "elastic/toml", 4},
		{"rule without query", "[metadata]\nmaturity = \"production\"\n\n[rule]\nname = \"x\"\ntype = \"eql\"\n", 1, "elastic/rule/no-query", 4},
		{"eql syntax error located in the file", "[rule]\nname = \"x\"\nlanguage = \"eql\"\nquery = '''\nprocess where\n  process.name : \n'''\n", 1, "eql/syntax", 6},
		{"wrong value types", "[rule]\nname = 3\nauthor = \"A\"\nrisk_score = \"high\"\nthreat = 5\nlanguage = \"eql\"\nquery = \"any where true\"\n", 1, "", 0},
		{"unknown language", "[rule]\nname = \"x\"\nlanguage = \"sql\"\nquery = '''\nselect 1\n'''\n", 1, "elastic/language/unknown", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, diags := Parser{}.Parse(rule.Source{Path: "r.toml"}, []byte(tc.data))
			if len(rs) != tc.rules {
				t.Fatalf("%d rules, want %d", len(rs), tc.rules)
			}
			for _, r := range rs {
				diags = append(diags, r.Diagnostics...)
				if r.ID == "" || r.Language != rule.Elastic {
					t.Errorf("rule without id or language: %+v", r)
				}
			}
			if tc.code == "" {
				if len(diags) != 0 {
					t.Errorf("diagnostics %v, want none", diags)
				}
				return
			}
			if len(diags) == 0 || diags[0].Code != tc.code || diags[0].Pos.Line != tc.line || diags[0].Pos.File != "r.toml" {
				t.Errorf("diagnostics %v, want %s at r.toml:%d", diags, tc.code, tc.line)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	read := func(elem ...string) []byte {
		data, err := os.ReadFile(corpustest.Path(t, elem...))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	bitsRule := read("elastic", "detection-rules", "rules_building_block", "command_and_control_bitsadmin_activity.toml")
	tests := []struct {
		name, path string
		data       []byte
		want       bool
	}{
		{"rule", "rules_building_block/command_and_control_bitsadmin_activity.toml", bitsRule, true},
		{"hunt", "hunting/linux/queries/persistence_via_cron.toml", read("elastic", "detection-rules", "hunting", "linux", "queries", "persistence_via_cron.toml"), true},
		{"rule text under another extension", "x.yml", bitsRule, false},
		{"schema", "schemas/ecs_flat-9.5.0.json", read("elastic", "detection-rules", "schemas", "ecs_flat-9.5.0.json"), false},
		{"other TOML", "pyproject.toml", []byte("[project]\nname = \"rule\"\n[tool.rule]\n"), false},
	}
	for _, tc := range tests {
		if got := (Parser{}).Detect(tc.path, tc.data); got != tc.want {
			t.Errorf("%s: Detect(%s) = %v, want %v", tc.name, tc.path, got, tc.want)
		}
	}
}

func TestWildcardQuery(t *testing.T) {
	tests := []struct {
		in   string
		kind rule.Kind
		s    string
		wild bool
	}{
		{`?:\\Program Files\\Modules\\*`, rule.Glob, `?:\Program Files\Modules\\*`, true},
		{`C:\\Windows\\*`, rule.StartsW, `C:\Windows\`, false},
		{`*\\evil.exe`, rule.EndsW, `\evil.exe`, false},
		{`*mimi*`, rule.Match, `mimi`, false},
		{`a\*b*`, rule.StartsW, `a*b`, false}, // an escaped star is literal
		{`a\*b*c`, rule.Glob, `a\*b*c`, true},
		{`*`, rule.IsNotNull, ``, false},
		{`exact`, rule.Eq, `exact`, false},
	}
	for _, tc := range tests {
		kind, v := wildcardQuery(tc.in)
		if kind != tc.kind || v.S != tc.s || v.Wild != tc.wild {
			t.Errorf("wildcardQuery(%q) = %s %q wild=%v, want %s %q wild=%v", tc.in, kind, v.S, v.Wild, tc.kind, tc.s, tc.wild)
		}
	}
}

// Kibana filters saved with a rule are exclusions AND-ed with its query.
func TestFilters(t *testing.T) {
	r := parseFile(t, "rules/_deprecated/defense_evasion_posh_obfuscation.toml")[0]
	var got []string
	for _, st := range r.Stages {
		if !strings.HasPrefix(st.Label, "filter") {
			continue
		}
		p := rule.Preds(st.Node)
		if len(p) != 1 || !p[0].Negated || !st.Negated {
			t.Fatalf("filter stage %+v: want one negated predicate", st)
		}
		got = append(got, fmt.Sprintf("%d %s %s %s %v", st.Pos.Line, p[0].Pred.Field, p[0].Pred.Kind, p[0].Pred.Values[0].S, p[0].Pred.Transforms))
	}
	// Lines 104, 111, 118: wildcard queries with case_insensitive = true.
	want := []string{
		`104 file.directory glob ?:\Program Files\WindowsPowerShell\Modules\\* []`,
		`111 file.directory glob ?:\Program Files (x86)\WindowsPowerShell\Modules\\* []`,
		`118 file.path glob ?:\ProgramData\Microsoft\Windows Defender Advanced Threat Protection\Downloads\\* []`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("filters\n got %q\nwant %q", got, want)
	}
	excluded := 0
	for _, pp := range rule.Preds(r.Root) {
		if pp.Negated && strings.HasPrefix(pp.Pred.Field, "file.") {
			excluded++
		}
	}
	if excluded != 3 {
		t.Errorf("Root holds %d of the 3 filter exclusions", excluded)
	}
	// A top-level exists filter, negated: the field must be absent.
	r = parseFile(t, "rules/_deprecated/apm_null_user_agent.toml")[0]
	last := r.Stages[len(r.Stages)-1]
	if p := rule.Preds(last.Node); len(p) != 1 || p[0].Pred.Field != "user_agent.original" || p[0].Pred.Kind != rule.IsNotNull || !p[0].Negated {
		t.Errorf("exists filter stage %+v", last)
	}
}
