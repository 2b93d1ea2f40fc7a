package sigma

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// parseOne parses a YAML text expected to hold one rule.
func parseOne(t *testing.T, text string) *rule.Rule {
	t.Helper()
	rules, diags := Parser{}.Parse(rule.Source{Repo: "test", Path: "t.yml"}, []byte(text))
	if len(diags) > 0 {
		t.Fatalf("file diagnostics: %v", diags)
	}
	if len(rules) != 1 {
		t.Fatalf("%d rules, want 1", len(rules))
	}
	return rules[0]
}

// show renders a tree compactly for table tests:
// and(...), or(...), not(...), $name (a Ref, body not shown), 1of(pat: $a $b),
// and predicates as `Field kind "v1","v2"` with `all`, `~"pattern"` for Wild values,
// `#type` for typed values and `[t1 t2]` for transforms.
func show(n *rule.Node) string {
	if n == nil {
		return "nil"
	}
	kids := func() string {
		var parts []string
		for _, c := range n.Children {
			parts = append(parts, show(c))
		}
		return strings.Join(parts, ", ")
	}
	switch n.Op {
	case rule.OpAnd, rule.OpOr, rule.OpNot:
		return string(n.Op) + "(" + kids() + ")"
	case rule.OpRef:
		return "$" + n.Name
	case rule.OpQuant:
		var parts []string
		for _, c := range n.Children {
			parts = append(parts, show(c))
		}
		return n.Quant + "of(" + n.Name + ": " + strings.Join(parts, " ") + ")"
	case rule.OpOpaque:
		return "opaque(" + n.Text + ")"
	case rule.OpTrue:
		return "true"
	case rule.OpPred:
		return showPred(n.Pred)
	}
	return "?" + string(n.Op)
}

func showPred(p *rule.Pred) string {
	var b strings.Builder
	if p.Field != "" {
		b.WriteString(p.Field + " ")
	}
	b.WriteString(string(p.Kind))
	if p.All {
		b.WriteString(" all")
	}
	for i, v := range p.Values {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		if v.Wild {
			b.WriteByte('~')
		}
		b.WriteString(strconv.Quote(v.S))
		if v.Type != "" {
			b.WriteString("#" + string(v.Type))
		}
	}
	if len(p.Transforms) > 0 {
		b.WriteString(" [" + strings.Join(p.Transforms, " ") + "]")
	}
	return b.String()
}

// body returns the tree of the selection named "sel" as the rule's Root refers to it.
func body(r *rule.Rule) *rule.Node {
	var out *rule.Node
	rule.Walk(r.Root, func(n *rule.Node, _ bool) bool {
		if n.Op == rule.OpRef && n.Name == "sel" && out == nil {
			out = n.Children[0]
		}
		return true
	})
	return out
}

func codes(r *rule.Rule) string {
	var cs []string
	for _, d := range r.Diagnostics {
		cs = append(cs, string(d.Severity[0])+":"+d.Code)
	}
	return strings.Join(cs, " ")
}

// selRule wraps a selection body (YAML, indented by 4) into a rule.
func selRule(sel string) string {
	return "title: t\nlogsource:\n  product: windows\ndetection:\n  sel:\n" + sel + "\n  condition: sel\n"
}

func TestSelections(t *testing.T) {
	tests := []struct {
		name, sel, want, diags string
	}{
		// Plain values, wildcards and escaping (Sigma specification, pySigma SigmaString).
		{"eq", `    Image: 'C:\x.exe'`, `Image eq "C:\\x.exe"`, ""},
		{"leading star is endswith", `    Image: '*\x.exe'`, `Image ends_with "\\x.exe"`, ""},
		{"endswith modifier", `    Image|endswith: '\x.exe'`, `Image ends_with "\\x.exe"`, ""},
		{"trailing star is startswith", `    Image: 'C:\Windows\*'`, `Image eq "C:\\Windows*"`, ""},
		{"escaped backslash before star", `    Image: 'C:\Windows\\*'`, `Image starts_with "C:\\Windows\\"`, ""},
		{"both stars is contains", `    CommandLine: '*foo*'`, `CommandLine match "foo"`, ""},
		{"inner star is glob", `    Image: 'C:\*\x.exe'`, `Image eq "C:*\\x.exe"`, ""},
		{"escaped stars are literal", `    Image: 'C:\Users\*\AppData\*.exe'`, `Image eq "C:\\Users*\\AppData*.exe"`, ""},
		{"inner wildcard glob", `    Image: 'C:\Users*AppData*.exe'`, `Image glob ~"C:\\Users*AppData*.exe"`, ""},
		{"question mark glob", `    Image: 'a?b'`, `Image glob ~"a?b"`, ""},
		{"escaped question mark", `    Image: 'a\?b'`, `Image eq "a?b"`, ""},
		{"escaped star in glob", `    Image: 'a\**b'`, `Image glob ~"a\\**b"`, ""},
		{"literal backslash before star kept in glob", `    Image: 'x\\*y*z'`, `Image glob ~"x\\\\*y*z"`, ""},
		{"double backslash literal", `    Image: 'a\\\\b'`, `Image eq "a\\\\b"`, ""},
		{"trailing backslash", `    Image: 'a\'`, `Image eq "a\\"`, ""},
		{"contains inner wildcard", `    CommandLine|contains: 'a*b'`, `CommandLine glob ~"*a*b*"`, ""},
		{"contains keeps star", `    CommandLine|contains: '*foo'`, `CommandLine match "foo"`, ""},
		{"startswith", `    CommandLine|startswith: 'foo'`, `CommandLine starts_with "foo"`, ""},
		{"startswith with leading star", `    CommandLine|startswith: '*foo'`, `CommandLine match "foo"`, ""},
		{"star only", `    Image: '*'`, `Image glob ~"*"`, ""},
		{"contains empty", `    Image|contains: ''`, `Image glob ~"*"`, ""},
		// Lists, all, mixed kinds.
		{"list is or", "    Image|endswith:\n      - '\\a.exe'\n      - '\\b.exe'", `Image ends_with "\\a.exe","\\b.exe"`, ""},
		{"all", "    CommandLine|contains|all:\n      - 'a'\n      - 'b'", `CommandLine match all "a","b"`, ""},
		{"mixed kinds split", "    Image:\n      - '*\\a.exe'\n      - 'C:\\b.exe'\n      - '*\\c.exe'", `or(Image ends_with "\\a.exe","\\c.exe", Image eq "C:\\b.exe")`, ""},
		{"mixed kinds all", "    CommandLine|all:\n      - '*a*'\n      - 'b*'", `and(CommandLine match "a", CommandLine starts_with "b")`, ""},
		{"all single", "    CommandLine|contains|all: 'a'", `CommandLine match "a"`, "w:sigma/modifier/all-single"},
		// Types, null and empty.
		{"number", `    EventID: 4688`, `EventID eq "4688"#number`, ""},
		{"number list", "    EventID:\n      - 4624\n      - 4625", `EventID eq "4624"#number,"4625"#number`, ""},
		{"quoted number is string", `    EventID: '4688'`, `EventID eq "4688"`, ""},
		{"bool", `    Enabled: true`, `Enabled eq "true"#bool`, ""},
		{"null", `    CommandLine: null`, `CommandLine is_null`, ""},
		{"tilde null", `    CommandLine: ~`, `CommandLine is_null`, ""},
		{"empty value is null", `    CommandLine:`, `CommandLine is_null`, ""},
		{"empty string", `    CommandLine: ''`, `CommandLine eq ""`, ""},
		{"null in list", "    CommandLine:\n      - null\n      - ''", `or(CommandLine is_null, CommandLine eq "")`, ""},
		{"number contains", `    Port|contains: 44`, `Port match "44"`, ""},
		// Mapping and list-of-mapping selections, keywords.
		{"map is and", "    Image|endswith: '\\x.exe'\n    CommandLine|contains: 'y'", `and(Image ends_with "\\x.exe", CommandLine match "y")`, ""},
		{"list of maps is or of and", "    - Image|endswith: '\\x.exe'\n      CommandLine: 'y'\n    - Image|endswith: '\\z.exe'", `or(and(Image ends_with "\\x.exe", CommandLine eq "y"), Image ends_with "\\z.exe")`, ""},
		{"keywords", "    - 'evil'\n    - 'bad*thing'", `keyword "evil",~"bad*thing"`, ""},
		{"keyword scalar", `    'evil'`, `keyword "evil"`, ""},
		{"fieldless modifier is keyword", `    '|contains': 'evil'`, `keyword ~"*evil*"`, ""},
		{"empty mapping", `    {}`, `true`, "w:sigma/detection/empty"},
		// Modifiers.
		{"re", `    CommandLine|re: '\s-e(nc)?\s*'`, `CommandLine regex "\\s-e(nc)?\\s*"`, ""},
		{"re not RE2", `    CommandLine|re: '(?<=a)b'`, `CommandLine regex "(?<=a)b"`, "w:sigma/value/regex"},
		{"re flags", `    CommandLine|re|i|m|s: 'a.b'`, `CommandLine regex "a.b" [i m s]`, ""},
		{"re long flags", `    CommandLine|re|ignorecase|multiline|dotall: 'a'`, `CommandLine regex "a" [i m s]`, ""},
		{"flag without re", `    CommandLine|i: 'a'`, `opaque(CommandLine|i)`, "e:sigma/modifier/flag-without-re"},
		{"re after contains", `    CommandLine|contains|re: 'a'`, `opaque(CommandLine|contains|re)`, "e:sigma/modifier/conflict"},
		{"cidr", "    DestinationIp|cidr:\n      - '10.0.0.0/8'\n      - 'fe80::/10'", `DestinationIp cidr "10.0.0.0/8","fe80::/10"`, ""},
		{"gt", `    Size|gt: 100`, `Size gt "100"#number`, ""},
		{"gte lt lte", "    A|gte: 1\n    B|lt: 2.5\n    C|lte: -3", `and(A ge "1"#number, B lt "2.5"#number, C le "-3"#number)`, ""},
		{"gt quoted number", `    Size|gt: '100'`, `Size gt "100"#number`, "w:sigma/value/quoted-number"},
		{"gt not a number", `    Size|gt: 'abc'`, `opaque(Size|gt)`, "e:sigma/value/not-number"},
		{"exists true", `    Image|exists: true`, `Image is_not_null`, ""},
		{"exists false", `    Image|exists: false`, `Image is_null`, ""},
		{"exists needs bool", `    Image|exists: 'yes'`, `opaque(Image|exists)`, "e:sigma/modifier/exists"},
		{"neq", `    User|neq: 'SYSTEM'`, `User ne "SYSTEM"`, ""},
		{"neq number", `    LogonType|neq: 3`, `LogonType ne "3"#number`, ""},
		{"neq contains", `    User|contains|neq: 'adm'`, `not(User match "adm")`, ""},
		{"fieldref", `    TargetUserName|fieldref: SubjectUserName`, `TargetUserName fieldref "SubjectUserName"`, ""},
		{"fieldref neq", `    TargetUserName|fieldref|neq: SubjectUserName`, `not(TargetUserName fieldref "SubjectUserName")`, ""},
		{"fieldref startswith", `    TargetUserName|fieldref|startswith: SubjectUserName`, `TargetUserName fieldref "SubjectUserName" [startswith]`, ""},
		{"contains before fieldref", `    TargetUserName|contains|fieldref: SubjectUserName`, `opaque(TargetUserName|contains|fieldref)`, "e:sigma/modifier/fieldref"},
		{"cased", `    CommandLine|contains|cased: 'IEX'`, `CommandLine match "IEX" [cased]`, ""},
		{"windash", `    CommandLine|contains|windash: ' -enc '`, `CommandLine match " -enc " [windash]`, ""},
		{"base64offset contains", `    CommandLine|base64offset|contains: 'IEX'`, `CommandLine match "IEX" [base64offset]`, ""},
		{"wide base64offset", `    CommandLine|wide|base64offset|contains: 'ping'`, `CommandLine match "ping" [wide base64offset]`, ""},
		{"utf16 variants", "    A|utf16le|base64: 'x'\n    B|utf16be|base64: 'x'\n    C|utf16|base64: 'x'", `and(A eq "x" [utf16le base64], B eq "x" [utf16be base64], C eq "x" [utf16 base64])`, ""},
		{"base64", `    CommandLine|base64: 'foo'`, `CommandLine eq "foo" [base64]`, ""},
		{"base64 of wildcard", `    CommandLine|contains|base64: 'foo'`, `opaque(CommandLine|contains|base64)`, "e:sigma/modifier/wildcard-encoding"},
		{"expand", `    Computer|expand: '%DomainControllers%'`, `Computer eq "%DomainControllers%" [expand]`, ""},
		{"placeholder without expand is a value", `    Computer: '%DomainControllers%'`, `Computer eq "%DomainControllers%"`, ""},
		{"expand contains", `    User|expand|contains: '%admins%'`, `User match "%admins%" [expand]`, ""},
		{"date parts", "    Time|hour|gte: 20\n    Time|day: 1", `and(Time ge "20"#number [hour], Time eq "1"#number [day])`, ""},
		{"all date parts", "    T|minute: 1\n    T|week: 2\n    T|month: 3\n    T|year: 2024", `and(T eq "1"#number [minute], T eq "2"#number [week], T eq "3"#number [month], T eq "2024"#number [year])`, ""},
		{"unknown modifier", `    Image|endwith: 'x'`, `opaque(Image|endwith)`, "e:sigma/modifier/unknown"},
		{"repeated modifier", `    Image|endswith|endswith: '\x.exe'`, `Image ends_with "\\x.exe"`, "w:sigma/modifier/repeated"},
		{"uppercase modifier", `    Image|EndsWith: '\x.exe'`, `Image ends_with "\\x.exe"`, "w:sigma/modifier/spelling"},
		{"mapping value", "    Image:\n      a: b", `opaque(Image)`, "e:sigma/value/type"},
		{"empty list", `    Image: []`, `opaque(Image)`, "e:sigma/value/empty-list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := parseOne(t, selRule(tc.sel))
			if got := show(body(r)); got != tc.want {
				t.Errorf("tree\n got %s\nwant %s", got, tc.want)
			}
			if got := codes(r); got != tc.diags {
				t.Errorf("diagnostics %q, want %q (%v)", got, tc.diags, r.Diagnostics)
			}
		})
	}
}

// condRule builds a rule with selections a, b, c, sel_1, sel_2, filter_1, filter_2 and _hidden.
func condRule(cond string) string {
	var b strings.Builder
	b.WriteString("title: t\nlogsource:\n  product: windows\ndetection:\n")
	for _, s := range []string{"a", "b", "c", "sel_1", "sel_2", "filter_1", "filter_2", "_hidden"} {
		fmt.Fprintf(&b, "  %s:\n    F: '%s'\n", s, s)
	}
	b.WriteString("  condition: " + cond + "\n")
	return b.String()
}

func TestConditions(t *testing.T) {
	tests := []struct {
		cond, want, diags string
	}{
		{"a", "$a", ""},
		{"a and b", "and($a, $b)", ""},
		{"a or b", "or($a, $b)", ""},
		{"not a", "not($a)", ""},
		{"a and not b", "and($a, not($b))", ""},
		{"a or b and c", "or($a, and($b, $c))", ""},
		{"a and b or c", "or(and($a, $b), $c)", ""},
		{"(a or b) and c", "and(or($a, $b), $c)", ""},
		{"not a and b", "and(not($a), $b)", ""},
		{"not (a and b)", "not(and($a, $b))", ""},
		{"not not a", "not(not($a))", ""},
		{"a and b and c", "and($a, $b, $c)", ""},
		{"((a))", "$a", ""},
		{"1 of sel_*", "1of(sel_*: $sel_1 $sel_2)", ""},
		{"any of sel_*", "1of(sel_*: $sel_1 $sel_2)", ""},
		{"all of sel_*", "allof(sel_*: $sel_1 $sel_2)", ""},
		{"1 of them", "1of(them: $a $b $c $sel_1 $sel_2 $filter_1 $filter_2)", ""},
		{"all of them", "allof(them: $a $b $c $sel_1 $sel_2 $filter_1 $filter_2)", ""},
		{"all of sel_* and not 1 of filter_*", "and(allof(sel_*: $sel_1 $sel_2), not(1of(filter_*: $filter_1 $filter_2)))", ""},
		{"1 of *_1", "1of(*_1: $sel_1 $filter_1)", ""},
		{"1 of _hidden*", "1of(_hidden*: $_hidden)", ""},
		{"a OR b", "or($a, $b)", "w:sigma/condition/keyword-case"},
		{"a AND NOT b", "and($a, not($b))", "w:sigma/condition/keyword-case w:sigma/condition/keyword-case"},
		{"1 OF sel_*", "1of(sel_*: $sel_1 $sel_2)", "w:sigma/condition/keyword-case"},
		{"A", "$a", "w:sigma/condition/ref-case"},
		{"a and missing", "and($a, opaque(missing))", "e:sigma/condition/unknown-ref"},
		{"1 of nothing_*", "1of(nothing_*: )", "e:sigma/condition/no-match"},
		{"a > 7", "opaque(a)", "e:sigma/condition/comparison"},
		{"a and (b", "and($a, $b)", "e:sigma/condition/syntax"},
		{"a b", "$a", "e:sigma/condition/syntax"},
		{"a and", "and($a, opaque())", "e:sigma/condition/syntax"},
		{"a | count() > 5", "$a", ""},
		{"a | count(User) by Host > 5", "$a", ""},
		{"a | count(User) by Host, Port >= 5", "$a", ""},
		{"a | near b", "$a", "w:sigma/aggregation/near"},
		{"a | group(x)", "$a", "e:sigma/aggregation/unknown"},
		{"a | count() by", "$a", "e:sigma/aggregation/syntax"},
		{"a | count() > x", "$a", "e:sigma/aggregation/syntax"},
		{"[a, b]", "or($a, $b)", ""},
		{strings.Repeat("(", 300) + "a" + strings.Repeat(")", 300), "opaque(()", "e:sigma/condition/too-deep"},
		{strings.Repeat("not ", 150) + "a", strings.Repeat("not(", 150) + "$a" + strings.Repeat(")", 150), ""},
	}
	for _, tc := range tests {
		t.Run(tc.cond, func(t *testing.T) {
			r := parseOne(t, condRule(tc.cond))
			if got := show(r.Root); got != tc.want {
				t.Errorf("tree\n got %s\nwant %s", got, tc.want)
			}
			if got := codes(r); got != tc.diags {
				t.Errorf("diagnostics %q, want %q (%v)", got, tc.diags, r.Diagnostics)
			}
		})
	}
}

func TestAggregation(t *testing.T) {
	r := parseOne(t, "title: t\nlogsource:\n  product: windows\ndetection:\n  a:\n    EventID: 4625\n  timeframe: 5m\n  condition: a | count(TargetUserName) by IpAddress, Computer > 10\n")
	if r.Timeframe != "5m" {
		t.Errorf("timeframe %q", r.Timeframe)
	}
	last := r.Stages[len(r.Stages)-1]
	want := rule.Aggregation{Func: "count", Field: "TargetUserName", GroupBy: []string{"IpAddress", "Computer"}, Op: ">", Value: "10", Timespan: "5m"}
	if last.Kind != rule.StageAggregation || last.Aggregation == nil || fmt.Sprint(*last.Aggregation) != fmt.Sprint(want) {
		t.Fatalf("last stage %+v %+v", last, last.Aggregation)
	}
	if last.Label != "count(TargetUserName) by IpAddress, Computer > 10" || last.Text != last.Label {
		t.Errorf("label %q text %q", last.Label, last.Text)
	}
	if fmt.Sprint(r.GroupBy) != "[IpAddress Computer]" {
		t.Errorf("group by %v", r.GroupBy)
	}
}

func TestNameMatch(t *testing.T) {
	tests := []struct {
		pat, name string
		want      bool
	}{
		{"sel_*", "sel_1", true}, {"sel_*", "sel_", true}, {"sel_*", "sel", false}, {"*_1", "filter_1", true},
		{"*", "x", true}, {"a*b*c", "abc", true}, {"a*b*c", "axbyc", true}, {"a*b*c", "acb", false},
		{"sel[1]", "sel[1]", true}, {"sel?", "sel1", false}, {"a*a", "a", false}, {"a*a", "aa", true},
		{`sel\*`, `sel\x`, true},
	}
	for _, tc := range tests {
		if got := nameMatch(tc.pat, tc.name); got != tc.want {
			t.Errorf("nameMatch(%q, %q) = %v", tc.pat, tc.name, got)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name, path, text string
		want             bool
	}{
		{"rule", "r.yml", "title: x\nlogsource:\n  product: windows\ndetection:\n  sel:\n    A: b\n  condition: sel\n", true},
		{"yaml extension", "r.yaml", "title: x\ndetection:\n  sel: [a]\n  condition: sel\n", true},
		{"bom", "r.yml", "\xef\xbb\xbftitle: x\ndetection:\n  condition: sel\n", true},
		{"correlation", "c.yml", "title: c\ncorrelation:\n  type: temporal\n", true},
		{"filter", "f.yml", "title: f\nlogsource:\n  product: windows\nfilter:\n  rules: [a]\n  sel:\n    A: b\n  condition: not sel\n", true},
		{"collection with indented document", "c.yml", "action: global\ntitle: t\n---\n logsource:\n     product: windows\n detection:\n     sel:\n         A: 1\n     condition: sel\n", true},
		{"not yaml", "r.txt", "detection:\n  condition: sel\n", false},
		{"nested detection key", "x.yml", "rule:\n  detection:\n    condition: sel\n", false},
		{"escu", "d.yml", "name: x\nsearch: '| tstats count from datamodel=Endpoint.Processes'\ndetection:\n  x: y\n", false},
		{"sentinel", "s.yaml", "id: x\nquery: |\n  SecurityEvent\ndetection: x\n", false},
		{"pysigma pipeline", "p.yml", "name: pipe\npriority: 10\ntransformations:\n  - id: x\n    type: field_name_mapping\n", false},
		{"legacy sigmac config", "c.yml", "title: cfg\nlogsources:\n  a:\n    product: windows\nfieldmappings:\n  A: B\n", false},
		{"filter without logsource", "f.yml", "filter:\n  x: y\n", false},
		{"key prefix", "r.yml", "detections:\n  a: b\n", false},
	}
	for _, tc := range tests {
		if got := (Parser{}).Detect(tc.path, []byte(tc.text)); got != tc.want {
			t.Errorf("%s: Detect = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestContentIDWithoutID (issue 13, item 8): a rule without id: gets the same id
// however its file is named or reached, and a different one when its text differs.
func TestContentIDWithoutID(t *testing.T) {
	body := "title: No id\nlogsource:\n  product: windows\ndetection:\n  sel:\n    EventID: 1\n  condition: sel\n"
	parse := func(repo, p, text string) string {
		rs, _ := Parser{}.Parse(rule.Source{Repo: repo, Path: p}, []byte(text))
		if len(rs) != 1 {
			t.Fatalf("%d rules", len(rs))
		}
		return rs[0].ID
	}
	base := parse("sigmahq", "rules/x.yml", body)
	tests := []struct {
		name, repo, path, text string
		same                   bool
	}{
		{"path spelled differently", "../shared/corpus/sigma", "../shared/corpus/sigma/rules/x.yml", body, true},
		{"absolute path", "/abs", "/abs/rules/x.yml", body, true},
		{"CRLF and trailing blanks", "r", "x.yml", strings.ReplaceAll(body, "\n", "  \r\n"), true},
		{"other content", "sigmahq", "rules/x.yml", strings.Replace(body, "EventID: 1", "EventID: 2", 1), false},
	}
	for _, tc := range tests {
		if got := parse(tc.repo, tc.path, tc.text); (got == base) != tc.same {
			t.Errorf("%s: id %s, base %s, want same=%v", tc.name, got, base, tc.same)
		}
	}
	if withID := parse("r", "x.yml", "id: 11111111-2222-3333-4444-555555555555\n"+body); withID != "11111111-2222-3333-4444-555555555555" {
		t.Errorf("explicit id replaced: %s", withID)
	}
}
