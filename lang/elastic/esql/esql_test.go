package esql

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/elasticq"
	"github.com/ruledex/ruledex/rule"
)

func ruleQuery(t *testing.T, file string) elasticq.Query {
	t.Helper()
	return elasticq.File(t, file, "esql")
}

func predStrings(n *rule.Node) []string { return elasticq.PredStrings(n) }

func stagePreds(q *Query) []string {
	var out []string
	for _, s := range q.Stages {
		out = append(out, predStrings(s.Node)...)
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func computedDef(q *Query, name string) (string, bool) {
	for _, c := range q.Computed {
		if c.Name == name {
			return c.Definition, true
		}
	}
	return "", false
}

// TestRealRules pins the reading of real ES|QL rules and hunting queries.
func TestRealRules(t *testing.T) {
	for _, tc := range []struct {
		file      string
		root      []string // predicates that must be in Root
		notRoot   []string // predicates that must be in a stage but not in Root
		agg       bool
		groupBy   string
		threshold string // "func field op value" of the STATS stage, "" for none
		computed  map[string]string
		timeframe string
		sources   string
	}{
		{
			file: "rules/windows/credential_access_lsass_openprocess_api.toml",
			root: []string{
				"Target.process.name eq lsass.exe [cased]",
				"process.Ext.api.name in OpenProcess|OpenThread|ReadProcessMemory [cased]",
				"process.executable is_not_null  []",
				// to_lower(...) like """c:\\program files\\*.exe""": case-insensitive; the
				// raw string keeps \\, which LIKE reads as one literal backslash.
				`not process.executable glob c:\\program files\\*.exe []`,
				`not process.executable eq c:\programdata\microsoft\windows defender\platform\msmpeng.exe []`,
			},
			notRoot:   []string{"Esql.count_distinct_hosts eq 1 []", "Esql.access_count le 3 []"},
			agg:       true,
			groupBy:   "Esql.process_path",
			threshold: "count_distinct host.id == 1",
			computed:  map[string]string{"Esql.access_count": "count(*)", "host.id": "mv_min(Esql.host_id_values)"},
			sources:   "logs-endpoint.events.api-*,logs-m365_defender.event-*",
		},
		{
			file: "hunting/linux/queries/low_volume_gtfobins_external_network_connections.toml",
			root: []string{
				"host.os.type eq linux [cased]",
				"destination.ip is_not_null  []",
			},
			notRoot:   []string{"cc le 5 []"},
			agg:       true,
			groupBy:   "destination.port,process.name",
			threshold: "count * <= 5",
			timeframe: "7 day",
		},
		{
			// STATS ... BY with no filter after it: grouping, not an aggregation rule.
			file: "rules/cross-platform/discovery_web_server_local_file_inclusion_activity.toml",
			root: []string{
				"http.request.method eq GET [cased]",
				"http.response.status_code eq 200 []",
				"url.original match = [cased]",
			},
			notRoot: []string{
				"Esql.url_original_url_decoded_to_lower match ../../../../ [cased]",
				`Esql.url_original_url_decoded_to_lower match ..\..\..\.. [cased]`,
			},
			groupBy:  "source.ip",
			computed: map[string]string{"Esql.url_original_url_decoded_to_lower": "to_lower(URL_DECODE(url.original))"},
		},
		{
			file:     "rules/cross-platform/defense_evasion_whitespace_padding_command_line.toml",
			root:     []string{"event.category eq process [cased]", "event.action ne fork [cased]"},
			notRoot:  []string{"multi_spaces gt 0 []"},
			computed: map[string]string{"multi_spaces": "LOCATE(process.command_line, space(100))"},
		},
		{
			// After MV_EXPAND each row holds one element of event.action.
			file: "rules/_deprecated/persistence_web_server_sus_child_spawned.toml",
			root: []string{
				"event.action eq exec [cased,elem]",
				"event.type eq start [cased]",
				"process.parent.name starts_with php-fpm [cased]",
				"process.parent.working_directory glob /u0?/* [cased]",
				// LIKE without a wildcard is equality.
				"process.name eq perl [cased]",
				"not process.working_directory eq / [cased]",
			},
			agg:       true,
			threshold: "count_distinct agent.id == 1",
		},
		{
			// % is not an ES|QL LIKE wildcard: this LIKE is a literal equality.
			file: "rules/cross-platform/execution_aws_ec2_lolbin_via_ssm.toml",
			root: []string{
				"process.command_line eq %/document/orchestration/%/awsrunShellScript/%/_script.sh [cased]",
				"aws.cloudtrail.request_parameters match documentName=AWS-RunShellScript [cased]",
			},
			notRoot: []string{"Esql.aws_ssm_command_id is_not_null  []"},
			computed: map[string]string{"Esql.process_parent_command_line_ssm_command_id": `dissect process.parent.command_line
    "%{}/document/orchestration/%{Esql.process_parent_command_line_ssm_command_id}/%{}"`},
			agg: true,
		},
		{
			// KQL("...") inside WHERE is read as a Kibana query.
			file: "rules/cross-platform/multiple_alerts_from_different_modules_by_user.toml",
			root: []string{
				"not kibana.alert.rule.tags eq Rule Type: Higher-Order Rule [cased]",
				"kibana.alert.risk_score gt 21 []",
			},
			agg:     true,
			groupBy: "user.name,user.id",
		},
		{
			// A fuzzy MATCH is not a term test: it stays a computed column.
			file: "rules/windows/defense_evasion_masquerading_as_svchost.toml",
			root: []string{
				`not process.executable in c:\windows\syswow64\svchost.exe|c:\windows\system32\svchost.exe []`,
				`not process.executable glob \\device\\harddiskvolume*\\windows\\system32\\svchost.exe []`,
			},
			notRoot: []string{`match(process.name, "svchost.exe", { "fuzziness": 1, "max_expansions": 10 }) eq true []`},
		},
		{
			file: "rules/_deprecated/credential_access_entra_signin_brute_force_microsoft_365_repeat_source.toml",
			root: []string{"azure.signinlogs.properties.resource_display_name regex ^(?:(.*)365(.*))$ [i,s]"},
			agg:  true,
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cq := ruleQuery(t, tc.file)
			q := Parse(cq.Text, rule.Pos{File: cq.File, Line: cq.Line, Col: 1})
			if len(q.Diags) > 0 {
				t.Errorf("diagnostics: %v", q.Diags)
			}
			root, all := predStrings(q.Root), stagePreds(q)
			for _, w := range tc.root {
				if !has(root, w) {
					t.Errorf("root lacks %q:\n  %s", w, strings.Join(root, "\n  "))
				}
				if !has(all, w) {
					t.Errorf("no stage holds root predicate %q", w)
				}
			}
			for _, w := range tc.notRoot {
				if has(root, w) {
					t.Errorf("root holds computed-column test %q", w)
				}
				if !has(all, w) {
					t.Errorf("no stage holds %q:\n  %s", w, strings.Join(all, "\n  "))
				}
			}
			if q.Aggregation != tc.agg {
				t.Errorf("Aggregation = %v, want %v", q.Aggregation, tc.agg)
			}
			if tc.groupBy != "" && strings.Join(q.GroupBy, ",") != tc.groupBy {
				t.Errorf("GroupBy = %v, want %s", q.GroupBy, tc.groupBy)
			}
			if tc.threshold != "" {
				var got string
				for _, s := range q.Stages {
					if a := s.Aggregation; a != nil {
						got = strings.Join([]string{a.Func, a.Field, a.Op, a.Value}, " ")
						if s.Kind != rule.StageAggregation || s.Op != "stats" {
							t.Errorf("threshold on stage %s/%s", s.Kind, s.Op)
						}
					}
				}
				if got != tc.threshold {
					t.Errorf("threshold %q, want %q", got, tc.threshold)
				}
			}
			for name, def := range tc.computed {
				if got, ok := computedDef(q, name); !ok || got != def {
					t.Errorf("computed %s = %q (%v), want %q", name, got, ok, def)
				}
			}
			if q.Timeframe != tc.timeframe {
				t.Errorf("Timeframe %q, want %q", q.Timeframe, tc.timeframe)
			}
			if tc.sources != "" && strings.Join(q.Sources, ",") != tc.sources {
				t.Errorf("Sources %v, want %s", q.Sources, tc.sources)
			}
			for i, s := range q.Stages {
				if s.Index != i+1 || s.Kind == rule.StageOpaque {
					t.Errorf("stage %d: index %d kind %s", i, s.Index, s.Kind)
				}
			}
		})
	}
}

// TestSemantics pins operator readings on small queries.
func TestSemantics(t *testing.T) {
	for _, tc := range []struct {
		name, q string
		root    []string
		stage   []string // more predicates that only a stage holds
		agg     bool
		codes   []string
	}{
		{"== is cased, to_upper is not", `from x | where a == "Foo" and to_upper(b) == "BAR"`,
			[]string{"a eq Foo [cased]", "b eq BAR []"}, nil, false, nil},
		{"like kinds", `from x | where a like "ab*" and b like "*cd" and c like "*e*" and d like "f?g" and e like "h\\*"`,
			[]string{"a starts_with ab [cased]", "b ends_with cd [cased]", "c match e [cased]", "d glob f?g [cased]", "e eq h* [cased]"}, nil, false, nil},
		{"like list and not like", `from x | where a like ("x*", "*y") and a not like "z*"`,
			[]string{"a starts_with x [cased]", "a ends_with y [cased]", "not a starts_with z [cased]"}, nil, false, nil},
		{"rlike anchored and cased", `from x | where a rlike "ab+c"`,
			[]string{"a regex ^(?:ab+c)$ [cased,s]"}, nil, false, nil},
		{"functions", `from x | where starts_with(a, "p") and ends_with(to_lower(b), ".exe") and locate(c, "q") > 0 and cidr_match(ip, "10.0.0.0/8", "::1")`,
			[]string{"a starts_with p [cased]", "b ends_with .exe []", "c match q [cased]", "ip cidr 10.0.0.0/8|::1 []"}, nil, false, nil},
		{"in, not in, is null", `from x | where a in ("x", "y") and b not in (1, 2) and c is null and not d is not null`,
			[]string{"a in x|y [cased]", "not b in 1|2 []", "c is_null  []", "not d is_not_null  []"}, nil, false, nil},
		{"literal on the left flips", `from x | where 5 < a`, []string{"a gt 5 []"}, nil, false, nil},
		{"match operator as kuery", `from x | where process.name : "cmd.exe"`,
			[]string{"process.name eq cmd.exe [cased]"}, nil, false, nil},
		{"eval column stays out of root", `from x | eval l = length(a) | where l > 10 and b == "y"`,
			[]string{"b eq y [cased]"}, []string{"l gt 10 []"}, false, nil},
		{"inline expression is computed", `from x | where length(a) > 10 and b == "y"`,
			[]string{"b eq y [cased]"}, []string{"length(a) gt 10 []"}, false, nil},
		{"rename is an alias", `from x | rename a as b | where b == "y"`,
			[]string{"a eq y [cased]"}, nil, false, nil},
		{"eval case-folding alias", `from x | eval l = to_lower(process.name), m = n | where l == "cmd.exe" and m like "*x*"`,
			[]string{"process.name eq cmd.exe []", "n match x [cased]"}, nil, false, nil},
		{"eval of a function is computed", `from x | eval l = to_lower(url_decode(u)) | where l like "*../*"`,
			nil, []string{"l match ../ [cased]"}, false, nil},
		{"an alias reassigned is computed", `from x | eval l = a | eval l = concat(a, b) | where l == "z"`,
			nil, []string{"l eq z [cased]"}, false, nil},
		{"grok keys are computed", `from x | grok msg "%{IP:client.ip} %{WORD:verb}" | where verb == "GET"`,
			nil, []string{"verb eq GET [cased]"}, false, nil},
		{"filter after stats on an aggregate is a threshold", `from x | where a == "1" | stats n = count(*) by h | where n > 5`,
			[]string{"a eq 1 [cased]"}, []string{"n gt 5 []"}, true, nil},
		{"filter after stats on a group key only is not", `from x | stats n = count(*) by h | where h != "z"`,
			nil, []string{"h ne z [cased]"}, false, nil},
		{"where after stats never reaches root", `from x | stats count(*) by h | where h == "z" | where count(*) > 3`,
			nil, []string{"h eq z [cased]", "count(*) gt 3 []"}, true, nil},
		{"enrich with named columns", `from x | enrich p on h with owner = o | where owner == "a" and b == "c"`,
			[]string{"b eq c [cased]"}, []string{"owner eq a [cased]"}, false, nil},
		{"enrich without with ends root", `from x | enrich p on h | where b == "c"`,
			nil, []string{"b eq c [cased]"}, false, nil},
		{"time window is not a predicate", `from x | where @timestamp >= now() - 1 hour and a == "b"`,
			[]string{"a eq b [cased]"}, nil, false, nil},
		{"a time test under OR stays a condition (computed, so the OR leaves root)", `from x | where @timestamp >= now() - 1 hour or a == "b"`,
			nil, []string{"@timestamp >= now() - 1 hour eq true []", "a eq b [cased]"}, false, nil},
		{"syntax error is a located opaque filter", "from x\n| where a == (\n| keep a",
			nil, nil, false, []string{"esql/syntax"}},
		{"unknown command", "from x | frobnicate y | where a == 1",
			[]string{"a eq 1 []"}, nil, false, []string{"esql/unknown-command"}},
		{"fence tag before from", "sql\nfrom x | where a == 1",
			[]string{"a eq 1 []"}, nil, false, []string{"esql/prefix"}},
		{"comments and triple quotes", "from x // c | where z == 1\n/* | where y == 2 */ | where a == \"\"\"q\\d\"\"\"",
			[]string{`a eq q\d [cased]`}, nil, false, nil},
		{"backquoted names", "from x | where a.`no-wait` == false",
			[]string{"a.no-wait eq false []"}, nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := Parse(tc.q, rule.Pos{File: "q", Line: 2, Col: 9})
			root := predStrings(q.Root)
			if strings.Join(root, "\n") != strings.Join(tc.root, "\n") {
				t.Errorf("root:\n got  %q\n want %q", root, tc.root)
			}
			all := stagePreds(q)
			for _, w := range tc.stage {
				if !has(all, w) {
					t.Errorf("stages lack %q: %q", w, all)
				}
			}
			if q.Aggregation != tc.agg {
				t.Errorf("Aggregation %v, want %v", q.Aggregation, tc.agg)
			}
			var codes []string
			for _, d := range q.Diags {
				codes = append(codes, d.Code)
				if d.Pos.File != "q" || d.Pos.Line < 2 || d.Pos.Col < 1 {
					t.Errorf("bad location %s", d)
				}
			}
			if strings.Join(codes, ",") != strings.Join(tc.codes, ",") {
				t.Errorf("diagnostics %v, want %v", q.Diags, tc.codes)
			}
		})
	}
}

// TestLocation: a syntax error on the second line of a query is located on that line
// of the file; a KQL("...") error inside it is located inside the string.
func TestLocation(t *testing.T) {
	q := Parse("from x\n| where a == (\n| keep a", rule.Pos{File: "f.toml", Line: 20, Col: 1})
	if len(q.Diags) != 1 || q.Diags[0].Pos.Line != 21 {
		t.Fatalf("diags %v, want one on line 21", q.Diags)
	}
	q = Parse("from x\n| where kql(\"a : (b\")", rule.Pos{File: "f.toml", Line: 20, Col: 1})
	if len(q.Diags) != 1 || q.Diags[0].Code != "kuery/syntax" || q.Diags[0].Pos.Line != 21 || q.Diags[0].Pos.Col < 14 {
		t.Fatalf("diags %v, want kuery/syntax at 21:>=14", q.Diags)
	}
}
