package engine

import (
	"reflect"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/rule"
)

// oneRule compiles a single-predicate rule with no log source, failing if it is skipped.
func oneRule(t *testing.T, p *rule.Pred) *Matcher {
	t.Helper()
	r := &rule.Rule{ID: "r", Title: "r", Language: rule.Kusto, Root: rule.Leaf(p)}
	m, skipped := Compile([]*rule.Rule{r}, Options{})
	if len(skipped) > 0 {
		t.Fatalf("skipped: %v", skipped[0].Reason)
	}
	return m
}

func values(vs ...string) []rule.Value {
	out := make([]rule.Value, len(vs))
	for i, v := range vs {
		out[i] = rule.Value{S: v}
	}
	return out
}

// The examples are issue 11's: KQL `has` is a term test, so `has "shadowcopy"` must
// not fire on "wmic shadowcopies delete" although `contains` would.
func TestTermKinds(t *testing.T) {
	tests := []struct {
		name  string
		kind  rule.Kind
		cased bool
		value string
		field string
		want  bool
	}{
		{"has whole word", rule.Term, false, "shadowcopy", "wmic shadowcopy delete", true},
		{"has not inside a longer word", rule.Term, false, "shadowcopy", "wmic shadowcopies delete", false},
		{"has not a prefix of a host label", rule.Term, false, "team", "https://teams.microsoft.com/x", false},
		{"has at the end", rule.Term, false, "delete", "vssadmin delete", true},
		{"has folds case", rule.Term, false, "ShadowCopy", "WMIC SHADOWCOPY DELETE", true},
		{"has_cs keeps case", rule.Term, true, "ShadowCopy", "wmic shadowcopy delete", false},
		{"has_cs exact case", rule.Term, true, "shadowcopy", "wmic shadowcopy delete", true},
		{"later occurrence is bounded", rule.Term, false, "copy", "shadowcopy copy", true},
		{"punctuation is a boundary", rule.Term, false, "exe", `c:\x\cmd.exe`, true},
		{"hasprefix at a term start", rule.TermPrefix, false, "shadow", "wmic shadowcopies delete", true},
		{"hasprefix not mid-term", rule.TermPrefix, false, "copies", "wmic shadowcopies delete", false},
		{"hassuffix at a term end", rule.TermSuffix, false, "copies", "wmic shadowcopies delete", true},
		{"hassuffix not mid-term", rule.TermSuffix, false, "shadow", "wmic shadowcopies delete", false},
		{"absent from the field", rule.Term, false, "vssadmin", "wmic shadowcopy delete", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &rule.Pred{Field: "ProcessCommandLine", Kind: tc.kind, Values: values(tc.value)}
			if tc.cased {
				p.Transforms = []string{rule.TCased}
			}
			m := oneRule(t, p)
			got := len(m.Match(ev("ProcessCommandLine", tc.field), nil)) == 1
			if got != tc.want {
				t.Errorf("%s %q on %q = %v, want %v", tc.kind, tc.value, tc.field, got, tc.want)
			}
		})
	}
}

// Regexes are never folded: `\s-H\s` is not `\s-h\s`, and `\S` must not become `\s`.
func TestRegexNeverFolded(t *testing.T) {
	tests := []struct {
		expr  string
		flags []string
		field string
		want  bool
	}{
		{`\s-H\s`, nil, "curl -H x", true},
		{`\s-H\s`, nil, "curl -h x", false},
		{`\s-H\s`, []string{rule.TIgnoreCase}, "curl -h x", true},
		{`^\S+$`, nil, "nospace", true},
		{`^\S+$`, nil, "has space", false},
	}
	for _, tc := range tests {
		m := oneRule(t, &rule.Pred{Field: "CommandLine", Kind: rule.Regex, Values: values(tc.expr), Transforms: tc.flags})
		if got := len(m.Match(ev("CommandLine", tc.field), nil)) == 1; got != tc.want {
			t.Errorf("regex %q %v on %q = %v, want %v", tc.expr, tc.flags, tc.field, got, tc.want)
		}
	}
}

func TestElem(t *testing.T) {
	jsonArgs := func(args ...string) *event.Event {
		e := &event.Event{}
		for _, a := range args {
			e.Add("process.args", a) // a JSON array is read as one field per element
		}
		return e
	}
	tests := []struct {
		name string
		p    *rule.Pred
		ev   *event.Event
		want bool
	}{
		{"any element equals", &rule.Pred{Field: "process.args", Kind: rule.Eq, Values: values("-enc"), Transforms: []string{rule.TElem}},
			jsonArgs("powershell.exe", "-enc", "SQBFAFgA"), true},
		{"element equality is not substring", &rule.Pred{Field: "process.args", Kind: rule.Eq, Values: values("-enc"), Transforms: []string{rule.TElem}},
			jsonArgs("powershell.exe", "-encodedcommand"), false},
		{"split from a Sysmon command line", &rule.Pred{Field: "process.args", Kind: rule.Eq, Values: values("-enc"), Transforms: []string{rule.TElem}},
			ev("CommandLine", `"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -nop -enc SQBFAFgA`), true},
		{"split keeps quoted arguments whole", &rule.Pred{Field: "process.args", Kind: rule.Eq, Values: values(`C:\Program Files\x.dll`), Transforms: []string{rule.TElem}},
			ev("CommandLine", `rundll32.exe "C:\Program Files\x.dll",Start`), false},
		{"quoted argument with its suffix", &rule.Pred{Field: "process.args", Kind: rule.Eq, Values: values(`C:\Program Files\x.dll,Start`), Transforms: []string{rule.TElem}},
			ev("CommandLine", `rundll32.exe "C:\Program Files\x.dll",Start`), true},
		{"program name is an argument", &rule.Pred{Field: "process.args", Kind: rule.EndsW, Values: values(`\powershell.exe`), Transforms: []string{rule.TElem}},
			ev("CommandLine", `"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -nop`), true},
		{"every element with all", &rule.Pred{Field: "process.args", Kind: rule.StartsW, Values: values("-"), All: true, Transforms: []string{rule.TElem}},
			jsonArgs("-a", "-b"), true},
		{"every element with all fails on one", &rule.Pred{Field: "process.args", Kind: rule.StartsW, Values: values("-"), All: true, Transforms: []string{rule.TElem}},
			jsonArgs("-a", "b"), false},
		{"no array, no command line", &rule.Pred{Field: "process.args", Kind: rule.Eq, Values: values("-enc"), Transforms: []string{rule.TElem}},
			ev("Image", `C:\x.exe`), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := oneRule(t, tc.p)
			if got := len(m.Match(tc.ev, nil)) == 1; got != tc.want {
				t.Errorf("got %v, want %v on %v", got, tc.want, tc.ev.Fields)
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`cmd.exe /c whoami`, []string{"cmd.exe", "/c", "whoami"}},
		{`"C:\Program Files\a b.exe" x  y`, []string{`C:\Program Files\a b.exe`, "x", "y"}},
		{`a.exe "q r" s`, []string{"a.exe", "q r", "s"}},
		{`a.exe a\\\"b`, []string{"a.exe", `a\"b`}},
		{`a.exe "a\\" b`, []string{"a.exe", `a\`, "b"}},
		{`a.exe c:\dir\ x`, []string{"a.exe", `c:\dir\`, "x"}},
		{`a.exe "say ""hi"""`, []string{"a.exe", `say "hi"`}},
		{`a.exe`, []string{"a.exe"}},
	}
	for _, tc := range tests {
		if got := splitArgs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
