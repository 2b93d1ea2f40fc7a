package kql

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

func TestLexStrings(t *testing.T) {
	tests := []struct {
		name, src string
		kind      TokKind
		val       string
	}{
		{"double", `"C:\\Windows\\System32"`, TString, `C:\Windows\System32`},
		{"double escaped quote", `"\"rundll32.exe\" x"`, TString, `"rundll32.exe" x`},
		{"single", `'SMB file copy'`, TString, `SMB file copy`},
		{"single escaped", `'it\'s'`, TString, `it's`},
		{"verbatim", `@"C:\Windows\System32\schtasks.exe"`, TString, `C:\Windows\System32\schtasks.exe`},
		{"verbatim single", `@'Custom Rule:\s(.*?)\sin Group'`, TString, `Custom Rule:\s(.*?)\sin Group`},
		{"verbatim doubled quote", `@"say ""hi"""`, TString, `say "hi"`},
		{"multi-line", "```line one\nline two```", TString, "line one\nline two"},
		{"obfuscated", `h"secret"`, TString, `secret`},
		{"obfuscated verbatim", `h@'C:\x'`, TString, `C:\x`},
		{"obfuscated url", `h'https://raw.githubusercontent.com/x.csv'`, TString, `https://raw.githubusercontent.com/x.csv`},
		{"unknown escape kept", `"\d+"`, TString, `\d+`},
		{"quoted ident", `['Total ASR hit count']`, TQIdent, `Total ASR hit count`},
		{"quoted ident double", `["Time Between"]`, TQIdent, `Time Between`},
		{"timespan d", `30d`, TTimespan, `30d`},
		{"timespan m", `15m`, TTimespan, `15m`},
		{"timespan ms", `10ms`, TTimespan, `10ms`},
		{"timespan real", `1.5h`, TTimespan, `1.5h`},
		{"timespan min", `5min`, TTimespan, `5min`},
		{"number", `50140`, TNumber, `50140`},
		{"real", `0.75`, TNumber, `0.75`},
		{"hex", `0x1F`, TNumber, `0x1F`},
		{"ident dollar", `$left`, TIdent, `$left`},
		{"wildcard table", `Device*`, TIdent, `Device*`},
		{"typographic quotes", "\u201cpowershell.exe\u201d", TString, "powershell.exe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, errs := Lex(tt.src)
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if toks[0].Kind != tt.kind || toks[0].Val != tt.val {
				t.Errorf("got kind %d val %q, want kind %d val %q", toks[0].Kind, toks[0].Val, tt.kind, tt.val)
			}
			if toks[1].Kind != TEOF {
				t.Errorf("left over %q", toks[1].Text)
			}
		})
	}
}

func TestLexWhitespaceAndComments(t *testing.T) {
	// Non-breaking space, zero-width space, BOM and comments separate tokens.
	src := "\uFEFFDeviceEvents\u00a0|\u200Bwhere // comment | not a pipe\nX == 1"
	toks, errs := Lex(src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, tk := range toks[:len(toks)-1] {
		got = append(got, tk.Text)
	}
	want := []string{"DeviceEvents", "|", "where", "X", "==", "1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
	if toks[3].Line != 2 || toks[3].Col != 1 {
		t.Errorf("X at %d:%d, want 2:1", toks[3].Line, toks[3].Col)
	}
}

func TestLexErrors(t *testing.T) {
	for _, src := range []string{`"unterminated`, "```never closed", "a ¤ b", `'x.x.x.x’`} {
		toks, errs := Lex(src)
		if len(errs) == 0 {
			t.Errorf("%q: no error", src)
		}
		if toks[len(toks)-1].Kind != TEOF {
			t.Errorf("%q: no EOF", src)
		}
	}
}

// want describes one expected predicate.
type want struct {
	field  string
	kind   rule.Kind
	vals   []string
	cased  bool
	negate bool
	all    bool
}

// single parses "T | where <pred>" and returns the where stage's predicates.
func wherePreds(t *testing.T, q string) ([]rule.PolarPred, *rule.Rule) {
	t.Helper()
	rs, _ := Parser{}.Parse(rule.Source{Repo: "test", Path: "t.kql"}, []byte(q))
	if len(rs) != 1 {
		t.Fatalf("%q: %d rules", q, len(rs))
	}
	r := rs[0]
	if r.HasErrors() {
		t.Fatalf("%q: errors %v", q, r.Diagnostics)
	}
	var out []rule.PolarPred
	for _, s := range r.Stages {
		if s.Op == "where" && s.Node != nil {
			out = append(out, rule.Preds(s.Node)...)
		}
	}
	return out, r
}

func check(t *testing.T, q string, got []rule.PolarPred, ws []want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("%q: %d predicates, want %d", q, len(got), len(ws))
	}
	for i, w := range ws {
		p := got[i]
		var vals []string
		for _, v := range p.Pred.Values {
			vals = append(vals, v.S)
		}
		if p.Pred.Field != w.field || p.Pred.Kind != w.kind || p.Pred.Cased() != w.cased || p.Negated != w.negate || p.Pred.All != w.all {
			t.Errorf("%q pred %d: got %s %s cased=%v neg=%v all=%v, want %s %s cased=%v neg=%v all=%v", q, i,
				p.Pred.Field, p.Pred.Kind, p.Pred.Cased(), p.Negated, p.Pred.All, w.field, w.kind, w.cased, w.negate, w.all)
		}
		if diff := cmp.Diff(w.vals, vals); diff != "" {
			t.Errorf("%q pred %d values: %s", q, i, diff)
		}
	}
}

// TestOperators uses where clauses found in the corpus.
func TestOperators(t *testing.T) {
	tests := []struct {
		where string
		want  []want
	}{
		{`ActionType == 'SMB file copy'`, []want{{"ActionType", rule.Eq, []string{"SMB file copy"}, true, false, false}}},
		{`InitiatingProcessFileName =~ 'powershell.exe'`, []want{{"InitiatingProcessFileName", rule.Eq, []string{"powershell.exe"}, false, false, false}}},
		{`RescanVerdict != "NotSpam"`, []want{{"RescanVerdict", rule.Ne, []string{"NotSpam"}, true, false, false}}},
		{`MFAUsed !~ "Yes"`, []want{{"MFAUsed", rule.Ne, []string{"Yes"}, false, false, false}}},
		{`ProcessCommandLine contains "$client = New-Object System.Net.Sockets.TCPClient"`, []want{{"ProcessCommandLine", rule.Match, []string{"$client = New-Object System.Net.Sockets.TCPClient"}, false, false, false}}},
		{`UserIdentityPrincipalid contains_cs ":i-"`, []want{{"UserIdentityPrincipalid", rule.Match, []string{":i-"}, true, false, false}}},
		{`UserId !contains "#EXT#"`, []want{{"UserId", rule.Match, []string{"#EXT#"}, false, true, false}}},
		{`RemoteUrl has_cs "microsoft.com"`, []want{{"RemoteUrl", rule.Term, []string{"microsoft.com"}, true, false, false}}},
		{`ActionType has "ZAP"`, []want{{"ActionType", rule.Term, []string{"ZAP"}, false, false, false}}},
		{`['All Error Codes'] !has "0"`, []want{{"All Error Codes", rule.Term, []string{"0"}, false, true, false}}},
		{`Name startswith "_kerberos."`, []want{{"Name", rule.StartsW, []string{"_kerberos."}, false, false, false}}},
		{`FolderPath hasprefix "EmailStorage"`, []want{{"FolderPath", rule.TermPrefix, []string{"EmailStorage"}, false, false, false}}},
		{`ParentProcessName hassuffix "w3wp.exe"`, []want{{"ParentProcessName", rule.TermSuffix, []string{"w3wp.exe"}, false, false, false}}},
		{`RemoteUrl endswith ".kr"`, []want{{"RemoteUrl", rule.EndsW, []string{".kr"}, false, false, false}}},
		{`ActionType in ("Set-Mailbox", "New-InboxRule")`, []want{{"ActionType", rule.Eq, []string{"Set-Mailbox", "New-InboxRule"}, true, false, false}}},
		{`UserId in~ ("admin1@domain.com", "admin2@domain.com")`, []want{{"UserId", rule.Eq, []string{"admin1@domain.com", "admin2@domain.com"}, false, false, false}}},
		{`Activity !in ("a", "b")`, []want{{"Activity", rule.Eq, []string{"a", "b"}, true, true, false}}},
		{`InitiatingProcessAccountName !in~ ("system", "local service")`, []want{{"InitiatingProcessAccountName", rule.Eq, []string{"system", "local service"}, false, true, false}}},
		{`AssignedRoles has_any ("Exchange Administrator", "Global Administrator")`, []want{{"AssignedRoles", rule.Term, []string{"Exchange Administrator", "Global Administrator"}, false, false, false}}},
		{`ErrorCodes has_all (0, 50140, 50074)`, []want{{"ErrorCodes", rule.Term, []string{"0", "50140", "50074"}, false, false, true}}},
		{`IssuerSuffix matches regex "^[a-zA-Z0-9]{8}$"`, []want{{"IssuerSuffix", rule.Regex, []string{"^[a-zA-Z0-9]{8}$"}, true, false, false}}},
		{`FolderPath matches regex @"[12]\.(\d)+\.(\d)+\.(\d)+"`, []want{{"FolderPath", rule.Regex, []string{`[12]\.(\d)+\.(\d)+\.(\d)+`}, true, false, false}}},
		{`count_ > 1`, []want{{"count_", rule.Gt, []string{"1"}, false, false, false}}},
		{`GlobalPrevalence < 5`, []want{{"GlobalPrevalence", rule.Lt, []string{"5"}, false, false, false}}},
		{`ConfidenceScore >= 0.75`, []want{{"ConfidenceScore", rule.Ge, []string{"0.75"}, false, false, false}}},
		{`Size <= 100`, []want{{"Size", rule.Le, []string{"100"}, false, false, false}}},
		{`['Time Between Risky Sign in and search'] between (-30 .. 30)`, []want{
			{"Time Between Risky Sign in and search", rule.Ge, []string{"-30"}, false, false, false},
			{"Time Between Risky Sign in and search", rule.Le, []string{"30"}, false, false, false}}},
		{`isnotempty(host)`, []want{{"host", rule.IsNotNull, nil, false, false, false}}},
		{`isnotnull(AccountSid)`, []want{{"AccountSid", rule.IsNotNull, nil, false, false, false}}},
		{`isempty(InitiatingProcessFileName)`, []want{{"InitiatingProcessFileName", rule.IsNull, nil, false, false, false}}},
		{`isnull(isExclude)`, []want{{"isExclude", rule.IsNull, nil, false, false, false}}},
		{`not(ipv4_is_in_range(IPAddres, "169.254.0.0/16"))`, []want{{"IPAddres", rule.CIDR, []string{"169.254.0.0/16"}, false, true, false}}},
		{`not(ipv4_is_private(RemoteIP))`, []want{{"RemoteIP", rule.CIDR, []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}, false, true, false}}},
		{`not(AccountName has_any ('account1', 'account2'))`, []want{{"AccountName", rule.Term, []string{"account1", "account2"}, false, true, false}}},
		{`isnotempty( column_ifexists("McpServers",""))`, []want{{"McpServers", rule.IsNotNull, nil, false, false, false}}},
		{`column_ifexists('ProcessVersionInfoOriginalFileName','ColumnNotAvailable') =~ 'bitsadmin.exe'`, []want{{"ProcessVersionInfoOriginalFileName", rule.Eq, []string{"bitsadmin.exe"}, false, false, false}}},
		{`tolower(Actor) != "nt authority\\system (microsoft.exchange.servicehost)"`, []want{{"Actor", rule.Ne, []string{`nt authority\system (microsoft.exchange.servicehost)`}, false, false, false}}},
		{`tolower(FileName) == "x.exe"`, []want{{"FileName", rule.Eq, []string{"x.exe"}, false, false, false}}},
		{`Parameters.Name == "AutoForwardingMode"`, []want{{"Parameters.Name", rule.Eq, []string{"AutoForwardingMode"}, true, false, false}}},
		{`tostring(AdditionalFields ['ACTOR.ACCOUNT']) has "admin"`, []want{{"AdditionalFields.ACTOR.ACCOUNT", rule.Term, []string{"admin"}, false, false, false}}},
		{`"Delivered" == DeliveryAction`, []want{{"DeliveryAction", rule.Eq, []string{"Delivered"}, true, false, false}}},
		{`ExistingACL != NewACL and NewACL == "Allow"`, []want{
			{"ExistingACL", rule.FieldRef, []string{"NewACL"}, true, true, false},
			{"NewACL", rule.Eq, []string{"Allow"}, true, false, false}}},
		{`* has "mimikatz"`, []want{{"", rule.Keyword, []string{"mimikatz"}, false, false, false}}},
		{`FileName =~ "a.exe" or (FileName =~ "b.exe" and not(ProcessCommandLine has "x"))`, []want{
			{"FileName", rule.Eq, []string{"a.exe"}, false, false, false},
			{"FileName", rule.Eq, []string{"b.exe"}, false, false, false},
			{"ProcessCommandLine", rule.Term, []string{"x"}, false, true, false}}},
	}
	for _, tt := range tests {
		q := "DeviceEvents\n| where " + tt.where
		got, _ := wherePreds(t, q)
		check(t, q, got, tt.want)
	}
}

func TestPrecedence(t *testing.T) {
	// and binds tighter than or; comparison tighter than and.
	_, r := wherePreds(t, `T | where A == 1 or B == 2 and C == 3`)
	n := r.Root
	if n.Op != rule.OpOr || len(n.Children) != 2 || n.Children[1].Op != rule.OpAnd {
		t.Fatalf("root %+v", n)
	}
	// Arithmetic inside a comparison stays on its side (opaque, but one predicate).
	_, r = wherePreds(t, `T | where Total * 100 / Count > 5 + 1 and X == "y"`)
	if r.Root.Op != rule.OpAnd || r.Root.Children[0].Op != rule.OpOpaque || r.Root.Children[0].Text != "Total * 100 / Count > 5 + 1" {
		t.Fatalf("root %+v", r.Root.Children[0])
	}
}

func TestTimeWindows(t *testing.T) {
	got, r := wherePreds(t, "let lookback = 14d;\nDeviceNetworkEvents\n| where Timestamp > ago(lookback)\n| where TimeGenerated between (ago(1d) .. now())\n| where RemoteUrl endswith \".kr\"")
	check(t, "time", got, []want{{"RemoteUrl", rule.EndsW, []string{".kr"}, false, false, false}})
	if r.Timeframe != "14d" {
		t.Errorf("timeframe %q", r.Timeframe)
	}
}

func TestLetResolution(t *testing.T) {
	q := `let threshold = 10;
let lolbins = dynamic(["certutil.exe", "bitsadmin.exe"]);
let more = dynamic(['mshta.exe']);
let all = array_concat(lolbins, more);
let users = datatable(name:string)["svc1", "svc2"];
let domain = "evil.example";
DeviceProcessEvents
| where FileName in~ (all)
| where AccountName !in (users)
| where ProcessCommandLine has_any (lolbins)
| where RemoteUrl endswith domain
| summarize count() by DeviceName
| where count_ > threshold`
	got, r := wherePreds(t, q)
	check(t, q, got, []want{
		{"FileName", rule.Eq, []string{"certutil.exe", "bitsadmin.exe", "mshta.exe"}, false, false, false},
		{"AccountName", rule.Eq, []string{"svc1", "svc2"}, true, true, false},
		{"ProcessCommandLine", rule.Term, []string{"certutil.exe", "bitsadmin.exe"}, false, false, false},
		{"RemoteUrl", rule.EndsW, []string{"evil.example"}, false, false, false},
		{"count_", rule.Gt, []string{"10"}, false, false, false},
	})
	var names []string
	for _, p := range r.Params {
		names = append(names, p.Name+"="+p.Value)
	}
	wantP := []string{"threshold=10", `lolbins=dynamic(["certutil.exe", "bitsadmin.exe"])`, `more=dynamic(['mshta.exe'])`,
		"all=array_concat(lolbins, more)", `users=datatable(name:string)["svc1", "svc2"]`, `domain="evil.example"`}
	if diff := cmp.Diff(wantP, names); diff != "" {
		t.Error(diff)
	}
	if r.Stages[1].Kind != rule.StageParameter || !strings.Contains(r.Stages[1].Text, "let threshold = 10;") {
		t.Errorf("stage 1: %+v", r.Stages[1])
	}
	var agg *rule.Stage
	for i := range r.Stages {
		if r.Stages[i].Op == "summarize" {
			agg = &r.Stages[i]
		}
	}
	if agg == nil || agg.Kind != rule.StageAggregation || agg.Aggregation.Value != "10" || agg.Aggregation.Op != ">" {
		t.Errorf("summarize stage %+v", agg)
	}
	// Root holds only the event-level filters, not the threshold after summarize.
	if n := len(rule.Preds(r.Root)); n != 4 {
		t.Errorf("root has %d predicates, want 4", n)
	}
	if diff := cmp.Diff([]string{"DeviceName"}, r.GroupBy); diff != "" {
		t.Error(diff)
	}
}

func TestExtendAliases(t *testing.T) {
	q := `DeviceProcessEvents
| extend process_name=tolower(FileName)
| extend original_file_name=tolower(ProcessVersionInfoOriginalFileName)
| where not(process_name=="psexec.exe" and original_file_name=="psexec.c")`
	got, _ := wherePreds(t, q)
	check(t, q, got, []want{
		{"FileName", rule.Eq, []string{"psexec.exe"}, false, true, false},
		{"ProcessVersionInfoOriginalFileName", rule.Eq, []string{"psexec.c"}, false, true, false},
	})
}

func TestTabularLetsAndTables(t *testing.T) {
	q := `let EPwithLowFP =
DeviceFileEvents
| where FileName has_any (".lnk", ".exe")
| distinct DeviceName;
union isfuzzy=true
    (DeviceNetworkEvents | where RemoteUrl == "wetransfers.io"),
    (imProcessCreate | where TargetProcessName endswith "x.exe")
| where DeviceName has_any (EPwithLowFP)
| join kind=inner (SecurityEvent | where EventID == 4688) on DeviceName`
	rs, _ := Parser{}.Parse(rule.Source{Path: "t.kql"}, []byte(q))
	if len(rs) != 1 {
		t.Fatalf("%d rules", len(rs))
	}
	r := rs[0]
	want := []string{"DeviceFileEvents", "DeviceNetworkEvents", "imProcessCreate", "SecurityEvent"}
	if diff := cmp.Diff(want, r.LogSource.Tables); diff != "" {
		t.Error(diff)
	}
	var ops []string
	for _, s := range r.Stages {
		ops = append(ops, s.Op)
	}
	// The let ends in distinct: it aggregates, and its stage says so.
	if diff := cmp.Diff([]string{"", "distinct", "union", "where", "join"}, ops); diff != "" {
		t.Error(diff)
	}
	// The union's members are alternatives.
	if r.Stages[2].Node == nil || r.Stages[2].Node.Op != rule.OpOr {
		t.Errorf("union node %+v", r.Stages[2].Node)
	}
	// has_any over a tabular let is kept as text with a warning, not an error.
	if r.HasErrors() || r.Stages[3].Node.Op != rule.OpOpaque {
		t.Errorf("diags %v node %+v", r.Diagnostics, r.Stages[3].Node)
	}
}

func TestErrorRecovery(t *testing.T) {
	tests := []struct {
		name, q  string
		errLine  int
		errCol   int
		minPreds int
	}{
		// A missing `or` (bert-janp ttp_t1219): the error is located, the rest still read.
		{"missing operator", "DeviceProcessEvents\n| where ( A contains \"x\" or B contains \"y\" C contains \"z\")\n| where FileName =~ \"client32.exe\"", 2, 44, 1},
		{"unterminated string", "DeviceEvents\n| where IPAddress == 'x.x.x.x’ //Replace\n| where A == \"b\"", 2, 22, 1},
		{"unbalanced paren", "DeviceEvents\n| where (A == \"x\"\n| where B == \"y\"", 3, 1, 1},
		{"dangling operator", "DeviceEvents\n| where A ==\n| where B == \"y\"", 2, 11, 1},
		{"missing operator name", "DeviceEvents\n| | where B == \"y\"", 2, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, _ := Parser{}.Parse(rule.Source{Path: "bad.kql"}, []byte(tt.q))
			if len(rs) == 0 {
				t.Fatal("no rule")
			}
			r := rs[0]
			var errs []rule.Diagnostic
			for _, d := range r.Diagnostics {
				if d.Severity == rule.Error {
					errs = append(errs, d)
				}
			}
			if len(errs) == 0 {
				t.Fatalf("no error diagnostic: %v", r.Diagnostics)
			}
			if errs[0].Pos.File != "bad.kql" || errs[0].Pos.Line != tt.errLine || errs[0].Pos.Col != tt.errCol {
				t.Errorf("error at %s, want bad.kql:%d:%d", errs[0], tt.errLine, tt.errCol)
			}
			if n := len(rule.Preds(r.Root)); n < tt.minPreds {
				t.Errorf("%d predicates recovered, want >= %d", n, tt.minPreds)
			}
		})
	}
}

func TestProseIsWarning(t *testing.T) {
	// slimkql files paste prose between comments and the query.
	q := "// title\nCustom NRT DefenderXDR detection & isolation of endpoint\n\nDeviceRegistryEvents\n| where RegistryKey has \"Specula\""
	rs, _ := Parser{}.Parse(rule.Source{Path: "p.kql"}, []byte(q))
	if len(rs) != 1 || rs[0].HasErrors() {
		t.Fatalf("rules %d diags %v", len(rs), rs[0].Diagnostics)
	}
	if rs[0].Diagnostics[0].Code != "kql/parse/prose" || rs[0].Diagnostics[0].Pos.Line != 2 {
		t.Errorf("diag %v", rs[0].Diagnostics[0])
	}
}

func readCorpus(t *testing.T, elem ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(corpustest.Path(t, append([]string{"kql"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSentinelYAML(t *testing.T) {
	p := "Hunting Queries/Microsoft 365 Defender/Execution/Bitsadmin Activity.yaml"
	data := readCorpus(t, "azure-sentinel", p)
	if !(Parser{}).Detect(p, data) {
		t.Fatal("not detected")
	}
	rs, diags := Parser{}.Parse(rule.Source{Repo: "github.com/Azure/Azure-Sentinel", Path: p}, data)
	if len(rs) != 1 || len(diags) != 0 {
		t.Fatalf("%d rules, %v", len(rs), diags)
	}
	r := rs[0]
	if r.ID != "2458e226-76e6-458c-8bf7-8766cc993b82" || r.Title != "Bitsadmin Activity" || r.Type != "hunting" || r.Class != rule.Hunting {
		t.Errorf("meta %q %q %q %q", r.ID, r.Title, r.Type, r.Class)
	}
	if diff := cmp.Diff([]string{"persistence", "command-and-control", "exfiltration"}, r.Tactics); diff != "" {
		t.Error(diff)
	}
	if len(r.Techniques) != 0 {
		t.Errorf("techniques %v: the file names none", r.Techniques)
	}
	if diff := cmp.Diff([]string{"MicrosoftThreatProtection"}, r.LogSource.DataSources); diff != "" {
		t.Error(diff)
	}
	if r.BodyLang != "kusto" || !strings.HasPrefix(r.Body, "DeviceProcessEvents") {
		t.Errorf("body %q", r.Body)
	}
	// Predicates are located in the YAML file: `(FileName` is on line 20, F in column 8.
	var fn *rule.Pred
	for _, pp := range rule.Preds(r.Root) {
		if pp.Pred.Field == "FileName" {
			fn = pp.Pred
		}
	}
	if fn == nil || fn.Pos.Line != 20 || fn.Pos.Col != 8 || fn.Pos.File != p {
		t.Errorf("FileName pred %+v", fn)
	}

	p = "Solutions/CrowdStrike Falcon Endpoint Protection/Analytic Rules/CriticalSeverityDetection.yaml"
	rs, _ = Parser{}.Parse(rule.Source{Path: p}, readCorpus(t, "azure-sentinel", p))
	r = rs[0]
	if r.Type != "analytic" || r.Frequency != "1h" || r.Timeframe != "1h" || r.Class != rule.VendorFeed {
		t.Errorf("type %q freq %q tf %q class %q", r.Type, r.Frequency, r.Timeframe, r.Class)
	}
	outs := map[string]bool{}
	for _, o := range r.Outputs {
		outs[o] = true
	}
	for _, o := range []string{"AccountCustomEntity", "HostCustomEntity", "IPCustomEntity", "FileHashAlgo", "FileHashCustomEntity", "DstHostName"} {
		if !outs[o] {
			t.Errorf("output %s missing from %v", o, r.Outputs)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		path, data string
		want       bool
	}{
		{"x.kql", "anything", true},
		{"x.csl", "T | take 1", true},
		{"a/b.txt", "DeviceEvents\n| where A == 1", true},
		{"a/notes.txt", "just notes", false},
		{"r.md", "# T\n```KQL\nT | take 1\n```", true},
		{"r.md", "# T\n```\nDeviceEvents\n| where X == 1\n```", true},
		{"r.md", "# T\n```powershell\nGet-Item\n```", false},
		{"s.yaml", "id: 1\nname: x\nquery: |\n  T\n", true},
		{"sigma.yml", "title: x\nid: 1\ndetection:\n  sel:\n    a: b\nquery: x\n", false},
		{"escu.yml", "name: x\nid: 1\nsearch: '| tstats'\nquery: x\n", false},
	}
	for _, tt := range tests {
		if got := (Parser{}).Detect(tt.path, []byte(tt.data)); got != tt.want {
			t.Errorf("Detect(%s, %q) = %v", tt.path, tt.data, got)
		}
	}
}

func TestMarkdownVariants(t *testing.T) {
	p := "Defender For Identity/SMBFileCopy.md"
	rs, _ := Parser{}.Parse(rule.Source{Repo: "bert-janp", Path: p}, readCorpus(t, "bert-janp", p))
	if len(rs) != 1 {
		t.Fatalf("%d rules, want one with two bodies", len(rs))
	}
	r := rs[0]
	if r.Title != "Detect SMB File Copies" || len(r.Bodies) != 1 || r.Bodies[0].Label != "Sentinel" || !strings.Contains(r.Bodies[0].Body, "TimeGenerated") {
		t.Errorf("title %q bodies %+v", r.Title, r.Bodies)
	}
	if !strings.Contains(r.Body, "Timestamp") {
		t.Errorf("primary body should be the Defender XDR one: %q", r.Body)
	}
	if diff := cmp.Diff([]string{"T1021.002"}, r.Techniques); diff != "" {
		t.Error(diff)
	}
	if !strings.HasPrefix(r.Description, "Adversaries can use SMB") {
		t.Errorf("description %q", r.Description)
	}
	// WhitelistedAccounts is resolved into the negated has_any.
	ex := r.Exclusions()
	if len(ex) != 1 || ex[0].Pred.Field != "AccountName" || len(ex[0].Pred.Values) != 2 {
		t.Errorf("exclusions %+v", ex)
	}

	// m365-defender: tactics from the "Covered?" table, bare fence under "## Query".
	p = "Execution/Detect PowerShell v2 Downgrade.md"
	rs, _ = Parser{}.Parse(rule.Source{Path: p}, readCorpus(t, "m365-defender", p))
	if len(rs) != 1 || rs[0].Title != "Detect PowerShell Downgrade" {
		t.Fatalf("%d rules", len(rs))
	}
	if diff := cmp.Diff([]string{"execution"}, rs[0].Tactics); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"Michael Melone"}, rs[0].Authors); diff != "" {
		t.Error(diff)
	}

	// FalconFriday: ```C# fences, technique from the Technique/Subtechnique columns, upstream id.
	p = "0xFF-0015-Masquerading-Renamed-executables-of-interest-Win.md"
	rs, _ = Parser{}.Parse(rule.Source{Path: p}, readCorpus(t, "falconfriday", p))
	if len(rs) != 1 || rs[0].ID != "0xFF-0015-Masquerading-Renamed-executables-of-interest-Win" {
		t.Fatalf("%d rules %v", len(rs), rs)
	}
	if diff := cmp.Diff([]string{"T1036.003"}, rs[0].Techniques); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"defense-evasion"}, rs[0].Tactics); diff != "" {
		t.Error(diff)
	}
}

func TestRawFiles(t *testing.T) {
	// Sentinel and Advanced Hunting variants of one query in one .kql file.
	p := "Defender for Endpoint/Device-FindDevicesMostASR.kql"
	rs, _ := Parser{}.Parse(rule.Source{Repo: "reprise99", Path: p}, readCorpus(t, "reprise99", p))
	if len(rs) != 1 || len(rs[0].Bodies) != 1 || rs[0].Bodies[0].Label != "Defender XDR" {
		t.Fatalf("%d rules", len(rs))
	}
	// Titled by its file name, not by its first comment (a sentence, now the
	// description's first line).
	if rs[0].Title != "Device - Find Devices Most ASR" || !strings.HasPrefix(rs[0].Description, "Summarize the machines in your environment") {
		t.Errorf("title %q, description %q", rs[0].Title, rs[0].Description)
	}
	// Several queries in one Markdown file: one rule each, stable distinct ids, titled by heading.
	p = "hunts/FireEye_red_team_tool_countermeasures.md"
	data := readCorpus(t, "falconfriday", p)
	rs, _ = Parser{}.Parse(rule.Source{Repo: "ff", Path: p}, data)
	rs2, _ := Parser{}.Parse(rule.Source{Repo: "ff", Path: p}, data)
	if len(rs) != 47 {
		t.Errorf("%d rules, want 47", len(rs))
	}
	ids := map[string]bool{}
	for i, r := range rs {
		if ids[r.ID] || r.ID != rs2[i].ID || r.ID != rule.StableID("ff", p, i) {
			t.Errorf("rule %d id %s not stable/unique", i, r.ID)
		}
		ids[r.ID] = true
	}
	if rs[0].Title != "FireEye red_team_tool_countermeasures KQL queries: ADPASSHUNT" {
		t.Errorf("title %q", rs[0].Title)
	}
}

func TestVendorFeed(t *testing.T) {
	tests := []struct {
		q    string
		want rule.Class
	}{
		{`MorphisecAlerts_CL | where Severity == "High"`, rule.VendorFeed},
		{`SecurityAlert | where ProductName == "Azure Advanced Threat Protection" | where AlertName has "Suspicious"`, rule.VendorFeed},
		{`CrowdStrikeFalconEventStream | where EventType == "DetectionSummaryEvent" | where Severity == "Critical"`, rule.VendorFeed},
		{`SecurityAlert | where AlertName has "x" | join (SigninLogs | where ResultType == 0) on UserPrincipalName`, rule.Detection},
		{`DeviceProcessEvents | where FileName =~ "bitsadmin.exe"`, rule.Detection},
	}
	for _, tt := range tests {
		rs, _ := Parser{}.Parse(rule.Source{Path: "v.kql"}, []byte(tt.q))
		if rs[0].Class != tt.want {
			t.Errorf("%q: class %s, want %s", tt.q, rs[0].Class, tt.want)
		}
	}
}

// TestCrossLanguageBitsadmin: the KQL test FileName =~ "bitsadmin.exe" and the Sigma
// seed's NewProcessName|endswith '\bitsadmin.exe' are the same indicator, as are
// ProcessCommandLine contains "/transfer" and CommandLine|contains '/transfer'. KQL
// `has "/transfer"` is a term test, stricter than contains: it counts under the same
// indicator (the same string looked for, as the reference's `/transfer corpus 2 (sigma 1,
// kusto 1)` counts it), while relations keep the two kinds apart (package neighbors).
func TestCrossLanguageBitsadmin(t *testing.T) {
	sigma := &rule.Rule{Language: rule.Sigma, LogSource: rule.LogSource{Product: "windows", Category: "process_creation"}}
	sigma.Root = rule.And(
		rule.Leaf(&rule.Pred{Field: "NewProcessName", Kind: rule.EndsW, Values: []rule.Value{{S: `\bitsadmin.exe`}}}),
		rule.Leaf(&rule.Pred{Field: "CommandLine", Kind: rule.Match, Values: []rule.Value{{S: "/transfer"}}}),
	)
	var sigmaKeys []string
	for _, in := range fieldmap.Default().Indicators(sigma) {
		sigmaKeys = append(sigmaKeys, in.Key)
	}
	tests := []struct {
		op     string
		shared int // indicators the KQL rule shares with the Sigma one
	}{
		{"contains", 2},
		{"has", 2},
	}
	for _, tt := range tests {
		rs, _ := Parser{}.Parse(rule.Source{Path: "b.kql"}, []byte(`DeviceProcessEvents
| where FileName =~ "bitsadmin.exe"
| where ProcessCommandLine `+tt.op+` "/transfer"`))
		kql := map[string]bool{}
		for _, in := range fieldmap.Default().Indicators(rs[0]) {
			kql[in.Key] = true
		}
		shared := 0
		for _, k := range sigmaKeys {
			if kql[k] {
				shared++
			}
		}
		if shared != tt.shared || len(kql) != 2 {
			t.Errorf("%s: %d indicators shared with Sigma, want %d (kql keys %v)", tt.op, shared, tt.shared, kql)
		}
	}
}

func TestMaterializeAndFunctions(t *testing.T) {
	q := `let Procs = materialize(DeviceProcessEvents | where FileName =~ "rundll32.exe");
let Net = (lookback:timespan) { DeviceNetworkEvents | where RemotePort == 4444 };
Procs
| join kind=inner (Net(1d)) on DeviceId`
	rs, _ := Parser{}.Parse(rule.Source{Path: "m.kql"}, []byte(q))
	r := rs[0]
	if diff := cmp.Diff([]string{"DeviceProcessEvents", "DeviceNetworkEvents"}, r.LogSource.Tables); diff != "" {
		t.Error(diff)
	}
	var fields []string
	for _, s := range r.Stages {
		if s.Op == "let" && s.Node != nil {
			for _, pp := range rule.Preds(s.Node) {
				fields = append(fields, pp.Pred.Field)
			}
		}
	}
	if diff := cmp.Diff([]string{"FileName", "RemotePort"}, fields); diff != "" {
		t.Error(diff)
	}
	// The main pipeline reads Procs, so Root inherits its filter.
	if ps := rule.Preds(r.Root); len(ps) != 1 || ps[0].Pred.Field != "FileName" {
		t.Errorf("root %+v", r.Root)
	}
}
