package yaral

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

const (
	bitsadmin = "rules/_deprecated/soc_prime_rules/threat_hunting/process_creation/bitsadmin_download.yaral"
	certutil  = "rules/community/microsoft/windows/suspicious_file_downloaded_from_file_sharing_website_via_certutil_exe.yaral"
	inboxEnum = "rules/community/microsoft/graph_activity/ms_graph_security_open_inbox_enumeration.yaral"
	sccUpdate = "rules/community/gcp/gcp_security_command_center_service_disabled.yaral"
	saKeyGeo  = "rules/community/gcp/gcp_service_account_key_used_from_multiple_countries.yaral"
	gceImage  = "rules/community/gcp/gcp_gce_image_open_to_public.yaral"
	awsOutOrg = "rules/community/aws/cloudtrail/aws_api_call_outside_of_organization.yaral"
	escalate  = "rules/community/gcp/gcp_identity_low_and_medium_severity_alert_escalation.yaral"
	secrets   = "rules/community/gcp/gcp_multiple_secrets_deleted.yaral"
	geoLogin  = "rules/community/authentication/geoip_user_login_from_multiple_states_or_countries.yaral"
	userAdd   = "rules/_deprecated/soc_prime_rules/threat_hunting/windows/detects_local_user_creation.yaral"
	graphDel  = "rules/community/microsoft/graph_activity/ms_graph_delete_method.yaral"
	autorun   = "rules/community/microsoft/windows/currentversion_autorun_keys_modification.yaral"
	hacktool  = "rules/community/microsoft/windows/hacktool_generic_process_access.yaral"
	reconCISA = "rules/community/microsoft/windows/recon_environment_enumeration_network_cisa_report.yaral"
)

// parseCorpus parses one file of the Chronicle repository and returns its only rule.
func parseCorpus(t *testing.T, rel string) *rule.Rule {
	t.Helper()
	data, err := os.ReadFile(corpustest.Path(t, "yaral", "chronicle", rel))
	if err != nil {
		t.Fatal(err)
	}
	rs, diags := Parser{}.Parse(rule.Source{Repo: "github.com/chronicle/detection-rules", Path: rel}, data)
	if len(diags) > 0 || len(rs) != 1 {
		t.Fatalf("%s: %d rules, file diagnostics %v", rel, len(rs), diags)
	}
	return rs[0]
}

// allPreds lists every predicate of the rule: Root, else the stages.
func allPreds(r *rule.Rule) []rule.PolarPred {
	if r.Root != nil {
		return rule.Preds(r.Root)
	}
	var out []rule.PolarPred
	for _, s := range r.Stages {
		out = append(out, rule.Preds(s.Node)...)
	}
	return out
}

// predOf finds the predicate written with native text containing native.
func predOf(t *testing.T, r *rule.Rule, native string) rule.PolarPred {
	t.Helper()
	for _, pp := range allPreds(r) {
		if strings.Contains(pp.Pred.Native, native) {
			return pp
		}
	}
	t.Fatalf("%s: no predicate written %q", r.Source.Path, native)
	return rule.PolarPred{}
}

// TestPredicateSemantics pins how YARA-L tests become kinds, from real rules.
func TestPredicateSemantics(t *testing.T) {
	cases := []struct {
		name, file, native string
		field              string
		kind               rule.Kind
		value              string
		transforms         []string
		negated, all       bool
	}{
		// = is whole-value, case-sensitive equality: never a substring test.
		{"eq is cased equality", bitsadmin, `command_line = "/transfer"`, "target.process.command_line", rule.Eq, "/transfer", []string{rule.TCased}, false, false},
		// re.regex is an unanchored search: a leading .* adds nothing, and without $ the
		// literal may sit anywhere, so it is a substring test, not ends_with.
		{"re.regex unanchored", bitsadmin, "bitsadmin", "target.process.file.full_path", rule.Match, `\bitsadmin.exe`, []string{rule.TCased}, false, false},
		{"re.regex anchored nocase", certutil, "certutil\\.exe$", "target.process.file.full_path", rule.EndsW, `\certutil.exe`, nil, false, false},
		{"eq nocase", certutil, `src.process.file.full_path = "certutil.exe" nocase`, "src.process.file.full_path", rule.Eq, "certutil.exe", nil, false, false},
		{"contains of to_lower", certutil, `"urlcache "`, "target.process.command_line", rule.Match, "urlcache ", nil, false, false},
		// A real regex keeps its text unfolded; nocase is the i flag.
		{"regex nocase keeps case", inboxEnum, "mailFolders/Inbox", "target.url", rule.Regex,
			"^https://graph.microsoft.com/v1.0/users/.*/mailFolders/Inbox/messages$", []string{rule.TIgnoreCase}, false, false},
		{"regex literal cased", sccUpdate, "= /google.cloud", "metadata.product_event_type", rule.Regex,
			"google.cloud.securitycenter.settings.*.Settings.Update", nil, false, false},
		{"!= regex is a negated search", saKeyGeo, "!= /google/", "principal.ip_geo_artifact.network.organization_name", rule.Match, "google", []string{rule.TCased}, true, false},
		{"any on a repeated field", gceImage, "any $gcp.target.resource.attribute.labels.value", "target.resource.attribute.labels.value", rule.Eq,
			"allAuthenticatedUsers", []string{rule.TCased, rule.TElem}, false, false},
		{"not in reference list", awsOutOrg, "principal.user.group_identifiers in %aws_accounts", "principal.user.group_identifiers", rule.In,
			"%aws_accounts", []string{rule.TCased}, true, false},
		// Case cannot matter for "4720": the test equals Sigma's EventID: 4720.
		{"letterless value is not cased", userAdd, `product_event_type = "4720"`, "metadata.product_event_type", rule.Eq, "4720", nil, false, false},
		{"!= empty string is presence", geoLogin, `country_or_region != ""`, "principal.ip_geo_artifact.location.country_or_region", rule.IsNotNull, "", nil, false, false},
		{"not ip_in_range_cidr", graphDel, `net.ip_in_range_cidr($api.principal.ip, "20.151.0.0/16")`, "principal.ip", rule.CIDR, "20.151.0.0/16", nil, true, false},
		// to_lower(field) starts with an all-lowercase value (in the not filter): a case-insensitive starts_with,
		// the value kept as written (escapes resolved).
		{"starts_with of to_lower", autorun, `edgeupdate\\install`, "principal.process.file.full_path", rule.StartsW,
			`c:\program files (x86)\microsoft\edgeupdate\install\`, nil, true, false},
		{"IN regex list nocase", hacktool, "IN regex %hacktool_regex nocase", "principal.process.file.full_path", rule.Regex, "%hacktool_regex", []string{rule.TIgnoreCase}, false, false},
		{"match variable drops zero values", certutil, "$process.principal.hostname = $hostname", "principal.hostname", rule.IsNotNull, "", nil, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := parseCorpus(t, c.file)
			pp := predOf(t, r, c.native)
			p := pp.Pred
			if p.Field != c.field || p.Kind != c.kind || pp.Negated != c.negated || p.All != c.all {
				t.Errorf("got %s %s (negated %v, all %v), want %s %s (negated %v, all %v)", p.Field, p.Kind, pp.Negated, p.All, c.field, c.kind, c.negated, c.all)
			}
			got := ""
			if len(p.Values) > 0 {
				got = p.Values[0].S
			}
			if got != c.value {
				t.Errorf("value %q, want %q", got, c.value)
			}
			if !slices.Equal(p.Transforms, c.transforms) {
				t.Errorf("transforms %v, want %v", p.Transforms, c.transforms)
			}
		})
	}
}

// TestReferenceList: the list stays an opaque name, recorded in Settings.
func TestReferenceList(t *testing.T) {
	r := parseCorpus(t, awsOutOrg)
	p := predOf(t, r, "in %aws_accounts").Pred
	if p.Values[0].Type != rule.ListRef {
		t.Errorf("list value type %q, want %q", p.Values[0].Type, rule.ListRef)
	}
	if !slices.Contains(r.Settings, rule.Setting{Name: "reference list", Value: "%aws_accounts"}) {
		t.Errorf("settings %v lack the reference list", r.Settings)
	}
	for _, d := range r.Diagnostics {
		t.Errorf("unexpected diagnostic %v", d)
	}
}

// TestRuleShape pins metadata, log source and the stage/correlation shape of real rules.
func TestRuleShape(t *testing.T) {
	t.Run("single event filter from a Sigma conversion", func(t *testing.T) {
		r := parseCorpus(t, bitsadmin)
		if r.Title != "bitsadmin_download" || r.Status != "deprecated" || r.Class != rule.Detection {
			t.Errorf("title %q status %q class %q", r.Title, r.Status, r.Class)
		}
		if !slices.Equal(r.Techniques, []string{"T1197"}) || !slices.Equal(r.Tactics, []string{"defense-evasion", "persistence"}) {
			t.Errorf("techniques %v tactics %v", r.Techniques, r.Tactics)
		}
		if r.LogSource.Category != "process_creation" || r.LogSource.Product != "windows" {
			t.Errorf("log source %+v", r.LogSource)
		}
		if r.Root == nil || r.Correlation != nil || r.Stages[0].Kind != rule.StageCondition || len(r.Stages) != 4 {
			t.Fatalf("want a Root, no correlation, condition + 3 conjunct stages; got %d stages", len(r.Stages))
		}
	})
	t.Run("match over a window with condition $e stays a filter", func(t *testing.T) {
		r := parseCorpus(t, certutil)
		if r.Title != "Suspicious File Downloaded From File-Sharing Website Via Certutil.EXE" || r.ID != "mr_f61b63c4-96f0-4c2c-9f63-2e1dc16ddcf8" {
			t.Errorf("title %q id %q", r.Title, r.ID)
		}
		if r.Severity != "high" || !slices.Equal(r.Techniques, []string{"T1027"}) || !slices.Equal(r.Tactics, []string{"defense-evasion"}) {
			t.Errorf("severity %q techniques %v tactics %v", r.Severity, r.Techniques, r.Tactics)
		}
		if r.LogSource.Category != "process_creation" || !slices.Equal(r.LogSource.EventTypes, []string{"PROCESS_LAUNCH"}) {
			t.Errorf("log source %+v", r.LogSource)
		}
		if r.Timeframe != "5m" || !slices.Equal(r.GroupBy, []string{"principal.hostname"}) {
			t.Errorf("timeframe %q group by %v", r.Timeframe, r.GroupBy)
		}
		if r.Root == nil || r.Correlation != nil {
			t.Fatal("want a single-event Root and no correlation")
		}
		// The event type is the log source, shown as a stage but not a predicate.
		for _, pp := range rule.Preds(r.Root) {
			if pp.Pred.Field == "metadata.event_type" {
				t.Errorf("Root tests %s; it is the log source", pp.Pred.Native)
			}
		}
		if st := r.Stages[1]; st.Label != "log source: metadata.event_type" || st.Node != nil {
			t.Errorf("stage 1 %q (node %v), want the log source stage", st.Label, st.Node)
		}
		if !slices.Equal(r.Related, []rule.Related{{ID: "42a5f1e7-9603-4f6d-97ae-3f37d130d794", Type: "derived"}}) {
			t.Errorf("related %v, want the Sigma original", r.Related)
		}
		for _, s := range r.Stages {
			if s.Kind == rule.StageAggregation {
				t.Errorf("stage %d %q is an aggregation; the condition has no threshold", s.Index, s.Label)
			}
		}
		// Outcome columns are computed, never fields, and the risk score is not constant.
		if len(r.Computed) != 14 || r.Computed[0].Name != "$risk_score" || r.RiskScore != 0 || len(r.Outputs) != 14 {
			t.Errorf("computed %d, outputs %d, risk %d", len(r.Computed), len(r.Outputs), r.RiskScore)
		}
	})
	t.Run("event count threshold is an aggregation", func(t *testing.T) {
		r := parseCorpus(t, secrets)
		var agg *rule.Aggregation
		for _, s := range r.Stages {
			if s.Kind == rule.StageAggregation {
				agg = s.Aggregation
			}
		}
		if agg == nil || agg.Func != "count" || agg.Op != ">=" || agg.Value != "10" || agg.Timespan != "1h" ||
			!slices.Equal(agg.GroupBy, []string{"target.user.userid"}) {
			t.Fatalf("aggregation %+v", agg)
		}
	})
	t.Run("distinct placeholder count", func(t *testing.T) {
		r := parseCorpus(t, reconCISA)
		var agg *rule.Aggregation
		for _, s := range r.Stages {
			if s.Kind == rule.StageAggregation {
				agg = s.Aggregation
			}
		}
		if agg == nil || agg.Func != "value_count" || agg.Field != "target.process.command_line" || agg.Op != ">" || agg.Value != "5" {
			t.Fatalf("aggregation %+v", agg)
		}
		if r.RiskScore != 35 {
			t.Errorf("constant $risk_score = 35 gave %d", r.RiskScore)
		}
	})
	t.Run("two event variables are a correlation", func(t *testing.T) {
		r := parseCorpus(t, escalate)
		c := r.Correlation
		if c == nil || r.Root != nil {
			t.Fatal("want a correlation and no Root")
		}
		if c.Type != "temporal_ordered" || !slices.Equal(c.Rules, []string{"low_severity", "medium_severity"}) ||
			!slices.Equal(c.GroupBy, []string{"user_email"}) || c.Timespan != "24h" {
			t.Errorf("correlation %+v", c)
		}
		if c.Aliases["user_email"]["low_severity"] != "principal.user.email_addresses" {
			t.Errorf("aliases %v", c.Aliases)
		}
		var kinds []rule.StageKind
		for _, s := range r.Stages {
			kinds = append(kinds, s.Kind)
		}
		want := []rule.StageKind{rule.StageCondition, rule.StageSelection, rule.StageSelection, rule.StageCorrelation, rule.StagePipeline}
		if !slices.Equal(kinds, want) {
			t.Errorf("stage kinds %v, want %v", kinds, want)
		}
		if !slices.Equal(r.Techniques, []string{"T1078"}) {
			t.Errorf("techniques %v (from $mitre_attack_technique_id)", r.Techniques)
		}
	})
}

// TestSnippets covers constructs the corpus lacks and bad input, which must give a
// located diagnostic, never a panic or a lost rule.
func TestSnippets(t *testing.T) {
	cases := []struct {
		name, src string
		code      string // an expected diagnostic code, "" for a clean rule
		line      int
		check     func(t *testing.T, r *rule.Rule)
	}{
		{"all quantifier", "rule a {\nevents:\n all $e.target.ip != \"10.0.0.1\"\ncondition:\n $e\n}", "", 0, func(t *testing.T, r *rule.Rule) {
			p := rule.Preds(r.Root)[0].Pred
			if p.Kind != rule.Ne || !p.All || !slices.Contains(p.Transforms, rule.TElem) {
				t.Errorf("pred %+v", p)
			}
		}},
		{"two rules in one file", "rule a {\nevents:\n $e.x = 1\ncondition:\n $e\n}\nrule b {\nevents:\n $e.y = 2\ncondition:\n $e\n}", "", 0, func(t *testing.T, r *rule.Rule) {}},
		{"unterminated rule", "rule a {\nevents:\n $e.x = \"a\"\ncondition:\n $e\n", "yaral/unterminated", 1, nil},
		{"unknown condition variable", "rule a {\nevents:\n $e.x = \"a\"\ncondition:\n $f\n}", "yaral/condition/unknown-var", 5, nil},
		{"missing paren", "rule a {\nevents:\n ($e.x = \"a\" or\n $e.y = \"b\"\ncondition:\n $e\n}", "yaral/events/syntax", 5, nil},
		{"unterminated regex", "rule a {\nevents:\n $e.x = /abc\ncondition:\n $e\n}", "yaral/events/syntax", 3, nil},
		{"no rule", "just some text", "yaral/stray-text", 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, diags := Parser{}.Parse(rule.Source{Path: "x.yaral"}, []byte(c.src))
			for _, r := range rs {
				diags = append(diags, r.Diagnostics...)
			}
			if c.code == "" {
				if len(diags) > 0 || len(rs) == 0 {
					t.Fatalf("%d rules, diagnostics %v", len(rs), diags)
				}
				c.check(t, rs[0])
				return
			}
			for _, d := range diags {
				if d.Code == c.code && d.Pos.Line == c.line && d.Pos.File == "x.yaral" {
					return
				}
			}
			t.Errorf("want %s at line %d, got %v", c.code, c.line, diags)
		})
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		path, data string
		want       bool
	}{
		{"a/b.yaral", "", true},
		{"a/b.txt", "// c\nrule x {\n meta:\n events:\n $e.a = 1\n condition:\n $e\n}", true},
		{"a/b.txt", "rule x {\n strings:\n $a = \"x\"\n condition:\n $a\n}", false}, // YARA, not YARA-L
		{"a/b.yml", "rule x {\n events:\n}", false},
	}
	for _, c := range cases {
		if got := (Parser{}).Detect(c.path, []byte(c.data)); got != c.want {
			t.Errorf("Detect(%s, %q) = %v, want %v", c.path, c.data, got, c.want)
		}
	}
}
