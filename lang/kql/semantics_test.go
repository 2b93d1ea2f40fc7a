package kql

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// corpusRule parses one real rule of ../shared/corpus/kql: the rule whose title
// starts with title, or the file's only rule when title is "".
func corpusRule(t *testing.T, path, title string) *rule.Rule {
	t.Helper()
	p := corpustest.Path(t, "kql", path)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := Parser{}.Parse(rule.Source{Repo: "corpus/kql", Path: path}, data)
	for _, r := range rs {
		if title == "" && len(rs) == 1 || title != "" && strings.HasPrefix(r.Title, title) {
			return r
		}
	}
	t.Fatalf("%s: no rule titled %q among %d", path, title, len(rs))
	return nil
}

// predString shows a predicate as "Field kind[transforms] value|value" for comparisons.
func predString(pp rule.PolarPred) string {
	p := pp.Pred
	var vs []string
	for _, v := range p.Values {
		vs = append(vs, v.S)
	}
	s := p.Field + " " + string(p.Kind)
	if len(p.Transforms) > 0 {
		s += "[" + strings.Join(p.Transforms, ",") + "]"
	}
	if pp.Negated {
		s = "not " + s
	}
	return s + " " + strings.Join(vs, "|")
}

func rootPreds(r *rule.Rule) map[string]bool {
	out := map[string]bool{}
	for _, pp := range rule.Preds(r.Root) {
		out[predString(pp)] = true
	}
	return out
}

func rootOpaque(r *rule.Rule) []string {
	var out []string
	rule.Walk(r.Root, func(n *rule.Node, _ bool) bool {
		if n.Op == rule.OpOpaque {
			out = append(out, n.Text)
		}
		return true
	})
	return out
}

// TestKustoOperatorSemantics pins the Kusto string operators, as documented in the
// Kusto string operator reference, on where clauses of real rules.
func TestKustoOperatorSemantics(t *testing.T) {
	tests := []struct {
		path, title string
		want        []string // predicates that must be in Root
		notKinds    []rule.Kind
	}{
		// `has "shadowcopy"` is a term test: it does not hold on "shadowcopies".
		{"m365-defender/Ransomware/Backup deletion.md", "", []string{
			"FileName eq wmic.exe", "ProcessCommandLine term shadowcopy", "ProcessCommandLine term delete"}, []rule.Kind{rule.Match}},
		// has_any over a list: term tests, OR-ed; !has_any negated.
		{"falconfriday/hunts/T1204-WIN-001.md", "T1204 - User-Execution: Rule 1", []string{
			"FileName eq mscoree.dll|mscorlib.dll|mscorlib.ni.dll",
			"InitiatingProcessCommandLine term .doc|.wbk|.docm|.dot|.dotm.xls|.xlsm|.xltm|.xla|.xll|.xlam|.ppt|.pptm|.pot|.potm|.ppsm|.sldm",
			"not InitiatingProcessCommandLine term .docx|dotx|.xlsx|.xltx|.pptx"}, []rule.Kind{rule.Match, rule.In}},
		// in~ is case-insensitive equality with a list; matches regex is a cased RE2 search.
		{"alexverboon/Defender For Endpoint/MDE-PortableApps.md", "Defender for Endpoint - Identify Portable Apps (1)", []string{
			"AccountName ne[cased] system",
			`not FolderPath regex[cased] ^C:\\Windows\\.*$`,
			`not AccountSid starts_with S-1-5-18`}, []rule.Kind{rule.In}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := corpusRule(t, tt.path, tt.title)
			got := rootPreds(r)
			for _, w := range tt.want {
				if !got[w] {
					t.Errorf("root lacks %q; has %v", w, got)
				}
			}
			for _, pp := range rule.Preds(r.Root) {
				for _, k := range tt.notKinds {
					if pp.Pred.Kind == k {
						t.Errorf("root has a %s predicate %s", k, predString(pp))
					}
				}
			}
		})
	}
}

func TestKustoOperatorTable(t *testing.T) {
	tests := []struct {
		where string
		want  string
	}{
		{`ProcessCommandLine hasprefix "-enc"`, "ProcessCommandLine term_prefix -enc"},
		{`ProcessCommandLine hasprefix_cs "-Enc"`, "ProcessCommandLine term_prefix[cased] -Enc"},
		{`ProcessCommandLine !hasprefix "-enc"`, "not ProcessCommandLine term_prefix -enc"},
		{`FileName hassuffix ".ps1"`, "FileName term_suffix .ps1"},
		{`FileName !hassuffix_cs ".PS1"`, "not FileName term_suffix[cased] .PS1"},
		{`ProcessCommandLine has_cs "IEX"`, "ProcessCommandLine term[cased] IEX"},
		{`ProcessCommandLine !has_cs "IEX"`, "not ProcessCommandLine term[cased] IEX"},
		{`ProcessCommandLine contains "iex"`, "ProcessCommandLine match iex"},
		{`ProcessCommandLine contains_cs "IEX"`, "ProcessCommandLine match[cased] IEX"},
		{`ProcessCommandLine startswith_cs "C:"`, "ProcessCommandLine starts_with[cased] C:"},
		{`FileName == "cmd.exe"`, "FileName eq[cased] cmd.exe"},
		{`EventID == 4688`, "EventID eq 4688"},
		{`RemotePort in (445, 139)`, "RemotePort eq 445|139"},
		{`ProcessCommandLine contains_cs "/"`, "ProcessCommandLine match /"},
		{`FileName =~ "cmd.exe"`, "FileName eq cmd.exe"},
		{`FileName in ("a.exe", "b.exe")`, "FileName eq[cased] a.exe|b.exe"},
		{`FileName in~ ("a.exe", "b.exe")`, "FileName eq a.exe|b.exe"},
		{`FileName !in~ ("a.exe")`, "not FileName eq a.exe"},
		{`ProcessCommandLine matches regex @"\s-H\s"`, `ProcessCommandLine regex[cased] \s-H\s`},
		{`ProcessCommandLine matches regex @"(?i)\s-h\s"`, `ProcessCommandLine regex[cased,i] (?i)\s-h\s`},
		{`tolower(ProcessCommandLine) matches regex @"\s-h\s"`, `ProcessCommandLine regex[cased,i] \s-h\s`},
	}
	for _, tt := range tests {
		q := "DeviceProcessEvents\n| where " + tt.where
		got, _ := wherePreds(t, q)
		if len(got) != 1 || predString(got[0]) != tt.want {
			var gs []string
			for _, g := range got {
				gs = append(gs, predString(g))
			}
			t.Errorf("%s: got %v, want %q", tt.where, gs, tt.want)
		}
	}
}

// TestComputedColumns: predicates on columns a rule computes stay in their stage, the
// column is listed in Computed with its definition, and Root does not claim them.
func TestComputedColumns(t *testing.T) {
	tests := []struct {
		path, title string
		computed    map[string]string // name -> a substring of its definition
		notInRoot   []string          // fields that must not be read by Root
		inRoot      []string          // predicates that stay in Root
		placeholder bool              // Root holds an opaque stand-in for the computed filter
		aggregation bool              // some stage is an aggregation
	}{
		{"reprise99/Azure Active Directory/Identity-DeviceCodePhishing.kql", "Identity - Device Code Phishing (1)",
			map[string]string{"Results": "make_set(ResultType)"}, []string{"Results", "ResultType"}, nil, false, true},
		{"azure-sentinel/Detections/Syslog/FailedLogonAttempts_UnknownUser.yaml", "",
			map[string]string{"TotalLogonAttempts": "count()", "ExternalIP": "parse SyslogMessage"}, []string{"TotalLogonAttempts"},
			[]string{"Facility eq authpriv", "SyslogMessage match authentication failure"}, false, true},
		{"bert-janp/Defender For Endpoint/ExecutableFilesPublicFolder.md", "",
			map[string]string{"FileExtension": "extract("}, []string{"FileExtension"},
			[]string{`FolderPath match C:\Users\Public`}, true, false},
		{"alexverboon/Defender For Endpoint/MDE-PortableApps.md", "Defender for Endpoint - Identify Portable Apps: Show Portable files",
			map[string]string{"FileExtension": "parse_path(FolderPath).Extension"}, []string{"FileExtension"},
			[]string{"AdditionalFields.FileType term PortableExecutable", "FileOriginUrl is_not_null "}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := corpusRule(t, tt.path, tt.title)
			for name, def := range tt.computed {
				found := false
				for _, c := range r.Computed {
					if c.Name == name && strings.Contains(c.Definition, def) && c.Stage > 0 && c.Stage < len(r.Stages) {
						found = true
					}
				}
				if !found {
					t.Errorf("computed %s (%s) missing: %+v", name, def, r.Computed)
				}
			}
			for _, pp := range rule.Preds(r.Root) {
				for _, f := range tt.notInRoot {
					if pp.Pred.Field == f {
						t.Errorf("root reads %s: %s", f, predString(pp))
					}
				}
			}
			got := rootPreds(r)
			for _, w := range tt.inRoot {
				if !got[w] {
					t.Errorf("root lacks %q; has %v", w, got)
				}
			}
			ops := rootOpaque(r)
			hasPlaceholder := false
			for _, o := range ops {
				hasPlaceholder = hasPlaceholder || strings.HasPrefix(o, "filter on computed column")
			}
			if hasPlaceholder != tt.placeholder {
				t.Errorf("computed-filter placeholder in root = %v, want %v (%v)", hasPlaceholder, tt.placeholder, ops)
			}
			agg := false
			for _, s := range r.Stages {
				agg = agg || s.Kind == rule.StageAggregation
			}
			if agg != tt.aggregation {
				t.Errorf("aggregation stage = %v, want %v", agg, tt.aggregation)
			}
		})
	}
}

// TestRuleShape: a rule's stages say whether it only filters and groups events, or
// joins or thresholds them; lets count too.
func TestRuleShape(t *testing.T) {
	tests := []struct {
		path, title string
		ops         []string // stage ops that must be present
		aggregation bool     // a thresholded (StageAggregation) stage exists
		grouping    bool     // a summarize stage that only groups (StagePipeline with Aggregation)
	}{
		// summarize ... by with nothing after it: a grouping, not an aggregation.
		{"alexverboon/Defender For Endpoint/MDE-PortableApps.md", "Defender for Endpoint - Identify Portable Apps: Show Portable files by download URL",
			[]string{"summarize"}, false, true},
		// The joins and summarizes are inside lets; their stages carry the operator.
		{"azure-sentinel/Detections/Syslog/FailedLogonAttempts_UnknownUser.yaml", "", []string{"join", "summarize"}, true, false},
		// A summarize inside a let, read through a list test.
		{"reprise99/Azure Active Directory/Identity-DeviceCodePhishing.kql", "Identity - Device Code Phishing (1)", []string{"summarize"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := corpusRule(t, tt.path, tt.title)
			have := map[string]bool{}
			agg, grouping := false, false
			for _, s := range r.Stages {
				have[s.Op] = true
				agg = agg || s.Kind == rule.StageAggregation
				grouping = grouping || s.Kind == rule.StagePipeline && s.Op == "summarize" && s.Aggregation != nil
			}
			for _, op := range tt.ops {
				if !have[op] {
					t.Errorf("no %s stage: %v", op, have)
				}
			}
			if agg != tt.aggregation || grouping != tt.grouping {
				t.Errorf("aggregation %v grouping %v, want %v %v", agg, grouping, tt.aggregation, tt.grouping)
			}
		})
	}
}

// TestJoinColumnsResolveInJoinedTable: columns on a join's right side are read in that
// table, so FileName there is the launched process's name, not the main table's.
func TestJoinColumnsResolveInJoinedTable(t *testing.T) {
	tests := []struct {
		path, title string
		field       string // as written on the joined side
		table       string // the joined table
		canonical   string // what the field map makes of it there
	}{
		{"falconfriday/hunts/T1204-WIN-001.md", "T1204 - User-Execution: Rule 1", "FileName", "DeviceProcessEvents", "Image"},
		{"m365-defender/Execution/powershell-activity-after-email-from-malicious-sender.md", "", "FileName", "DeviceProcessEvents", "Image"},
	}
	fm := fieldmap.Default()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := corpusRule(t, tt.path, tt.title)
			found := false
			for _, s := range r.Stages {
				if s.Op != "join" {
					continue
				}
				for _, pp := range rule.Preds(s.Node) {
					if pp.Pred.Field != tt.table+"."+tt.field {
						continue
					}
					found = true
					if e, ok := fm.Lookup(fieldmap.Contexts(r), pp.Pred.Field); !ok || e.Canonical != tt.canonical {
						t.Errorf("%s resolves to %+v, want %s", pp.Pred.Field, e, tt.canonical)
					}
				}
			}
			if !found {
				t.Errorf("no join predicate on %s.%s", tt.table, tt.field)
			}
		})
	}
}

// TestOperatorColumns: the columns parse and mv-expand define, on operators found in
// the corpus.
func TestOperatorColumns(t *testing.T) {
	tests := []struct {
		op, text string
		want     []string
	}{
		{"parse", `parse SyslogMessage with * "rhost=" ExternalIP`, []string{"ExternalIP"}},
		{"parse-where", `parse-where MaliciousURL with * "//" ['Malicious Domain'] "/" *`, []string{"Malicious Domain"}},
		{"parse", `parse kind=regex flags=i Msg with @"user=" User:string " ip=" IP:string`, []string{"User", "IP"}},
		{"mv-expand", `mv-expand TimeGenerated, EventCount, outliers`, []string{"TimeGenerated", "EventCount", "outliers"}},
		{"mv-expand", `mv-expand todynamic(Entities)`, []string{"Entities"}},
		{"mv-expand", `mv-expand bagexpansion=array Ip = IPAddresses to typeof(string) limit 100`, []string{"Ip"}},
		{"parse-kv", `parse-kv Message as (User:string, Host:string) with (pair_delimiter=' ', kv_delimiter='=')`, []string{"User", "Host"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range opColumns(tt.op, tt.text) {
			got = append(got, c.Name)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: columns %v, want %v", tt.text, got, tt.want)
		}
	}
}

// TestFilterAfterSummarize: after a summarize, a filter on its group-by columns is an
// event filter (Root), a filter on anything else or a row limit thresholds the groups.
func TestFilterAfterSummarize(t *testing.T) {
	tests := []struct {
		q    string
		root []string
		agg  bool
	}{
		{`DeviceProcessEvents | where FileName =~ "certutil.exe" | summarize count() by DeviceName, ProcessCommandLine | where ProcessCommandLine has "urlcache"`,
			[]string{"FileName eq certutil.exe", "ProcessCommandLine term urlcache"}, false},
		{`DeviceProcessEvents | where FileName =~ "certutil.exe" | summarize count() by DeviceName | where count_ > 5`,
			[]string{"FileName eq certutil.exe"}, true},
		{`DeviceProcessEvents | where FileName =~ "certutil.exe" | summarize arg_max(Timestamp, *) by DeviceName | where ProcessCommandLine has "urlcache"`,
			[]string{"FileName eq certutil.exe"}, true},
		{`DeviceProcessEvents | where FileName =~ "certutil.exe" | summarize count() by DeviceName | take 10`,
			[]string{"FileName eq certutil.exe"}, true},
		{`DeviceProcessEvents | where FileName =~ "certutil.exe" | summarize count() by DeviceName | project DeviceName`,
			[]string{"FileName eq certutil.exe"}, false},
	}
	for _, tt := range tests {
		_, r := wherePreds(t, tt.q)
		got := map[string]bool{}
		for _, pp := range rule.Preds(r.Root) {
			got[predString(pp)] = true
		}
		if len(got) != len(tt.root) {
			t.Errorf("%s: root %v, want %v", tt.q, got, tt.root)
		}
		for _, w := range tt.root {
			if !got[w] {
				t.Errorf("%s: root lacks %q (%v)", tt.q, w, got)
			}
		}
		agg := false
		for _, s := range r.Stages {
			agg = agg || s.Kind == rule.StageAggregation
		}
		if agg != tt.agg {
			t.Errorf("%s: aggregation %v, want %v", tt.q, agg, tt.agg)
		}
	}
}

// TestFunctionBodyLets: lets inside a function body are tables' names only to the
// body; a function that unions them is an aggregating source, and what reads it
// filters rows, not events.
func TestFunctionBodyLets(t *testing.T) {
	r := corpusRule(t, "azure-sentinel/Hunting Queries/SecurityEvent/HostsWithNewLogons.yaml", "")
	if got := strings.Join(r.LogSource.Tables, ","); got != "SecurityEvent" {
		t.Errorf("tables %s, want SecurityEvent", got)
	}
	// ActionType is a constant the function projects ('Logon'), not an event field.
	for _, pp := range rule.Preds(r.Root) {
		t.Errorf("root holds %s", predString(pp))
	}
}

// rootReadsComputed lists Root predicates that test a column computed by an earlier
// stage (a Root predicate is the same node as in its stage, so its stage is known).
func rootReadsComputed(r *rule.Rule) []string {
	inRoot := map[*rule.Pred]bool{}
	for _, pp := range rule.Preds(r.Root) {
		inRoot[pp.Pred] = true
	}
	var out []string
	for _, s := range r.Stages {
		for _, pp := range rule.Preds(s.Node) {
			if !inRoot[pp.Pred] {
				continue
			}
			for _, c := range r.Computed {
				if c.Name == pp.Pred.Field && c.Stage < s.Index {
					out = append(out, fmt.Sprintf("%s (stage %d) computed at stage %d", c.Name, s.Index, c.Stage))
				}
			}
		}
	}
	return out
}

// TestCorpusRootNeverReadsComputed: over the whole KQL corpus, no Root predicate tests
// a column the rule computed before it.
func TestCorpusRootNeverReadsComputed(t *testing.T) {
	_, rules := parseCorpus(t)
	withComputed := 0
	for _, r := range rules {
		if len(r.Computed) > 0 {
			withComputed++
		}
		for _, v := range rootReadsComputed(r) {
			t.Errorf("%s: %s: root reads %s", r.Source.Path, r.Title, v)
		}
	}
	if withComputed < 1000 {
		t.Errorf("only %d rules compute columns: the check saw too little", withComputed)
	}
}
