package neighbors

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

func pred(field string, kind rule.Kind, vals ...string) *rule.Node {
	p := &rule.Pred{Field: field, Kind: kind}
	for _, v := range vals {
		p.Values = append(p.Values, rule.Value{S: v})
	}
	return rule.Leaf(p)
}

func mk(lang rule.Language, id, category string, root *rule.Node) *rule.Rule {
	r := &rule.Rule{ID: id, Language: lang, Root: root, LogSource: rule.LogSource{Product: "windows", Category: category}}
	if lang == rule.Kusto {
		r.LogSource = rule.LogSource{Tables: []string{"DeviceProcessEvents"}}
	}
	return r
}

func TestImplicationsOnHandBuiltRules(t *testing.T) {
	fm := fieldmap.Default()
	base := mk(rule.Sigma, "base", "process_creation", pred("Image", rule.EndsW, `\bitsadmin.exe`))
	filtered := mk(rule.Sigma, "filtered", "process_creation", rule.And(
		pred("Image", rule.EndsW, `\bitsadmin.exe`),
		rule.Not(pred("CommandLine", rule.Match, "/list")),
	))
	narrowed := mk(rule.Sigma, "narrowed", "process_creation", rule.And(
		pred("NewProcessName", rule.EndsW, `\BITSADMIN.exe`), // 4688 name, other case: same test
		pred("CommandLine", rule.Match, "/transfer"),
	))
	twoValues := mk(rule.Sigma, "two", "process_creation", rule.And(
		pred("Image", rule.EndsW, `\bitsadmin.exe`),
		pred("CommandLine", rule.Match, "/transfer", "/download"),
	))
	kql := mk(rule.Kusto, "k1", "", rule.And(
		pred("FileName", rule.Eq, "bitsadmin.exe"), // name-only: ends_with \bitsadmin.exe
		pred("ProcessCommandLine", rule.Match, "/transfer", "/download"),
	))
	otherCategory := mk(rule.Sigma, "other", "image_load", pred("Image", rule.EndsW, `\bitsadmin.exe`))
	res := Compute(fm, []*rule.Rule{base, filtered, narrowed, twoValues, kql, otherCategory}, Options{})

	has := func(m map[string][]Relation, from, to string) (string, bool) {
		for _, r := range m[from] {
			if r.Key == to {
				return r.Difference, true
			}
		}
		return "", false
	}
	tests := []struct {
		name     string
		m        map[string][]Relation
		from, to string
		want     bool
		diff     string
	}{
		{"filter makes stricter", res.Stricter, "sigma/base", "sigma/filtered", true, "adds 1 filter"},
		{"and the reverse is broader", res.Broader, "sigma/filtered", "sigma/base", true, "drops 1 filter this rule applies"},
		{"4688 field and case fold", res.Stricter, "sigma/base", "sigma/narrowed", true, "adds 1 condition"},
		{"value subset narrows", res.Stricter, "sigma/two", "sigma/narrowed", true, "narrows commandline to 1 of its 2 values"},
		{"kql name-only field is equivalent", res.Equivalent, "sigma/two", "kusto/k1", true, ""},
		{"filtered is not broader than base", res.Stricter, "sigma/filtered", "sigma/base", false, ""},
		{"other log source never related", res.Stricter, "sigma/other", "sigma/filtered", false, ""},
		{"filtered and narrowed unrelated", res.Stricter, "sigma/filtered", "sigma/narrowed", false, ""},
	}
	for _, tc := range tests {
		d, ok := has(tc.m, tc.from, tc.to)
		if ok != tc.want {
			t.Errorf("%s: relation %s→%s = %v, want %v", tc.name, tc.from, tc.to, ok, tc.want)
			continue
		}
		if tc.diff != "" && !strings.Contains(d, tc.diff) {
			t.Errorf("%s: difference %q, want it to contain %q", tc.name, d, tc.diff)
		}
	}
	if res.Forms["sigma/two"].EqID != res.Forms["kusto/k1"].EqID {
		t.Errorf("sigma/two and kusto/k1 should share an equivalence class")
	}
}

func TestAtomImplication(t *testing.T) {
	a := func(k rule.Kind, v string) Atom { return Atom{Field: "f", Kind: k, Value: v} }
	cased := func(k rule.Kind, v string) Atom { return Atom{Field: "f", Kind: k, Value: v, Cased: true} }
	tests := []struct {
		x, y Atom
		want bool
	}{
		{a(rule.Eq, `c:\x.exe`), a(rule.EndsW, `\x.exe`), true},
		{a(rule.Eq, `c:\x.exe`), a(rule.StartsW, `c:\`), true},
		{a(rule.Eq, `c:\x.exe`), a(rule.Match, `x.e`), true},
		{a(rule.EndsW, `\x.exe`), a(rule.Eq, `c:\x.exe`), false},
		{a(rule.Match, `abc`), a(rule.Match, `b`), true},
		{a(rule.Match, `b`), a(rule.Match, `abc`), false},
		{a(rule.StartsW, `abc`), a(rule.EndsW, `c`), false},
		{cased(rule.Eq, `ABC`), a(rule.Match, `b`), true},
		{a(rule.Eq, `abc`), cased(rule.Eq, `abc`), false},
		{a(rule.Gt, `10`), a(rule.Gt, `5`), true},
		{a(rule.Gt, `5`), a(rule.Gt, `10`), false},
		{a(rule.Ge, `5`), a(rule.Gt, `5`), false},
		{a(rule.Ge, `6`), a(rule.Gt, `5`), true},
		{a(rule.Lt, `5`), a(rule.Lt, `10`), true},
		{a(rule.Lt, `10`), a(rule.Lt, `5`), false},
		{a(rule.Le, `5`), a(rule.Lt, `5`), false},
		{a(rule.Lt, `5`), a(rule.Le, `5`), true},
		{a(rule.Gt, `5`), a(rule.Lt, `10`), false},
		{a(rule.StartsW, `abc`), a(rule.StartsW, `ab`), true},
		{a(rule.Keyword, `abc`), a(rule.Match, `b`), false},
		{a(rule.Eq, `x`), Atom{Field: "f", Kind: rule.IsNotNull}, true},
		{a(rule.Eq, `x`), Atom{Field: "g", Kind: rule.Eq, Value: "x"}, false},
		{Atom{Field: "f", Kind: rule.Match, Value: "-enc", Transforms: "windash"}, a(rule.Match, "enc"), false},
	}
	for _, tc := range tests {
		if got := atomImplies(tc.x, tc.y); got != tc.want {
			t.Errorf("atomImplies(%+v, %+v) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
}

// A name-only column (FileName) is the path's last element: `FileName contains ":"` is
// not `Image contains ":"` (every full path has one), so no Sigma rule on a full path
// may be called stricter than it; `FileName == "x.exe"` is exactly Image ends_with \x.exe.
func TestNameOnlyFieldsRelateOnlyWhenExact(t *testing.T) {
	fm := fieldmap.Default()
	colon := mk(rule.Kusto, "colon", "", pred("FileName", rule.Match, ":"))
	named := mk(rule.Kusto, "named", "", pred("FileName", rule.Eq, "aspnet_compiler.exe"))
	path := mk(rule.Sigma, "path", "process_creation", pred("Image", rule.Eq, `C:\Windows\Microsoft.NET\aspnet_compiler.exe`))
	res := Compute(fm, []*rule.Rule{colon, named, path}, Options{})
	for _, r := range res.Stricter["kusto/colon"] {
		t.Errorf("%s claimed stricter than FileName contains \":\" (%s)", r.Key, r.Difference)
	}
	found := false
	for _, r := range res.Stricter["kusto/named"] {
		found = found || r.Key == "sigma/path"
	}
	if !found {
		t.Errorf("Image eq C:\\...\\aspnet_compiler.exe should be stricter than FileName == aspnet_compiler.exe; got %v", res.Stricter["kusto/named"])
	}
}
