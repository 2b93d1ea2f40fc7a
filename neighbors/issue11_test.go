package neighbors

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

func findRule(tb testing.TB, rules []*rule.Rule, lang rule.Language, title, pathPart string) *rule.Rule {
	tb.Helper()
	for _, r := range rules {
		if r.Language == lang && r.Title == title && strings.Contains(r.Source.Path, pathPart) {
			return r
		}
	}
	tb.Fatalf("no %s rule %q under %q", lang, title, pathPart)
	return nil
}

// The unsound claims of issue 11, each pinned on the real rules that showed it.
func TestIssue11Claims(t *testing.T) {
	f := allLanguageFixture(t)
	res := f.res
	vss := findRule(t, f.rules, rule.Sigma, "VSS backup deletion (WMI)", "")
	backup := findRule(t, f.rules, rule.Kusto, "Backup deletion", "Ransomware/Backup deletion.md")
	certKQL := findRule(t, f.rules, rule.Kusto, "Certutil Remote Download", "")
	certSigma := findRule(t, f.rules, rule.Sigma, "Certutil payload download (command)", "")
	wfSigma := findRule(t, f.rules, rule.Sigma, "Microsoft Workflow Compiler Execution", "")
	wfSPL := findRule(t, f.rules, rule.Splunk, "Suspicious microsoft workflow compiler usage", "")
	dsqSigma := findRule(t, f.rules, rule.Sigma, "Domain Trust Discovery Via Dsquery", "")
	dsqSPL := findRule(t, f.rules, rule.Splunk, "DSQuery Domain Discovery", "")
	iuSigma := findRule(t, f.rules, rule.Sigma, "File Download Via InstallUtil.EXE", "")
	iuSPL := findRule(t, f.rules, rule.Splunk, "Windows InstallUtil URL in Command Line", "")

	type want int
	const (
		none want = iota
		equivalent
		stricter // to is stricter than from
	)
	tests := []struct {
		name     string
		from, to *rule.Rule
		want     want
		basis    string
	}{
		// `has "shadowcopy"` does not hold on "wmic shadowcopies delete" while `contains`
		// does: the KQL rule is stricter, never equivalent.
		{"has is stricter than contains", vss, backup, stricter, BasisFieldMap},
		{"and not equivalent", backup, vss, none, ""},
		// KQL == is cased, term urlcache implies contains urlcache; Defender process
		// events read as 4688 through the field map.
		{"certutil KQL stricter than Sigma 4688", certSigma, certKQL, stricter, BasisFieldMap},
		// The Splunk pairs the issue names: an ESCU tstats group-by is an event filter.
		{"workflow compiler: the same test", wfSigma, wfSPL, equivalent, BasisFieldMap},
		{"dsquery: SPL stricter", dsqSigma, dsqSPL, stricter, BasisFieldMap},
		{"installutil: SPL stricter", iuSigma, iuSPL, stricter, BasisFieldMap},
	}
	for _, tc := range tests {
		from, to := Key(tc.from), Key(tc.to)
		_, eq := related(res.Equivalent, from, to)
		rel, st := related(res.Stricter, from, to)
		switch tc.want {
		case none:
			if eq {
				t.Errorf("%s: %s and %s called equivalent", tc.name, from, to)
			}
		case equivalent:
			rel, _ := related(res.Equivalent, from, to)
			back, ok := related(res.Equivalent, to, from)
			if !eq || !ok {
				t.Errorf("%s: %s and %s not equivalent both ways", tc.name, from, to)
			} else if rel.Basis != tc.basis || back.Basis != tc.basis {
				t.Errorf("%s: basis %q / %q, want %q", tc.name, rel.Basis, back.Basis, tc.basis)
			}
			if id := res.Forms[from].EqID; id != res.Forms[to].EqID || res.ClassInfo[id] == nil || res.ClassInfo[id].Basis != BasisFieldMap || len(res.ClassInfo[id].Languages) < 2 {
				t.Errorf("%s: no shared field-map class spanning languages: %+v", tc.name, res.ClassInfo[id])
			}
		case stricter:
			if eq || !st {
				t.Errorf("%s: %s should list %s as stricter (equivalent=%v stricter=%v)", tc.name, from, to, eq, st)
				continue
			}
			if rel.Basis != tc.basis {
				t.Errorf("%s: basis %q, want %q", tc.name, rel.Basis, tc.basis)
			}
			if tc.basis == BasisFieldMap && !strings.Contains(rel.Difference, "≈") {
				t.Errorf("%s: difference %q names no mapping", tc.name, rel.Difference)
			}
			if _, ok := related(res.Broader, to, from); !ok {
				t.Errorf("%s: %s does not list %s as broader", tc.name, to, from)
			}
		}
	}

	// Regexes keep their case in the canonical form: `\s-H\s` (curl's -H, case-sensitive
	// on purpose) must not become `\s-h\s`.
	curl := findRule(t, f.rules, rule.Sigma, "Curl Web Request With Potential Custom User-Agent", "")
	if c := res.Forms[Key(curl)].Canonical; !strings.Contains(c, `\s-H\s`) {
		t.Errorf("canonical form of %q lost the regex case: %q", curl.Title, c)
	}
}

// TestTermImplications is the implication table of issue 11 on atoms: term kinds are
// the stricter side of substring kinds, never equivalent unless the values make it so.
func TestTermImplications(t *testing.T) {
	a := func(k rule.Kind, v string) Atom { return Atom{Field: "f", Kind: k, Value: v} }
	cased := func(k rule.Kind, v string) Atom { return Atom{Field: "f", Kind: k, Value: v, Cased: true} }
	elem := func(k rule.Kind, v string) Atom { return Atom{Field: "f", Kind: k, Value: v, Elem: true} }
	tests := []struct {
		name string
		x, y Atom
		want bool
	}{
		{"term ⇒ contains", a(rule.Term, "shadowcopy"), a(rule.Match, "shadowcopy"), true},
		{"contains ⇏ term", a(rule.Match, "shadowcopy"), a(rule.Term, "shadowcopy"), false},
		{"term ⇒ contains of a piece", a(rule.Term, "shadowcopy"), a(rule.Match, "copy"), true},
		{"term ⇏ term of a piece inside a word", a(rule.Term, "shadowcopy"), a(rule.Term, "copy"), false},
		{"term ⇒ term of a bounded piece", a(rule.Term, "shadowcopy delete"), a(rule.Term, "delete"), true},
		{"term ⇒ term_prefix", a(rule.Term, "team"), a(rule.TermPrefix, "team"), true},
		{"term ⇒ term_suffix", a(rule.Term, "team"), a(rule.TermSuffix, "team"), true},
		{"term_prefix ⇏ term", a(rule.TermPrefix, "team"), a(rule.Term, "team"), false},
		{"term_prefix ⇒ term_prefix of its start", a(rule.TermPrefix, "teams"), a(rule.TermPrefix, "team"), true},
		{"term_prefix ⇏ starts_with", a(rule.TermPrefix, "team"), a(rule.StartsW, "team"), false},
		{"term_suffix ⇏ ends_with", a(rule.TermSuffix, ".exe"), a(rule.EndsW, ".exe"), false},
		{"starts_with ⇒ term_prefix", a(rule.StartsW, "cmd"), a(rule.TermPrefix, "cmd"), true},
		{"ends_with ⇒ term_suffix", a(rule.EndsW, `\cmd.exe`), a(rule.TermSuffix, "exe"), true},
		{"ends_with ⇒ term bounded inside", a(rule.EndsW, `\cmd.exe`), a(rule.Term, "cmd"), true},
		{"ends_with ⇏ term at an open start", a(rule.EndsW, `cmd.exe`), a(rule.Term, "cmd"), false},
		{"eq ⇒ term", a(rule.Eq, "wmic shadowcopy delete"), a(rule.Term, "shadowcopy"), true},
		{"eq ⇏ term inside a word", a(rule.Eq, "wmic shadowcopies delete"), a(rule.Term, "shadowcopy"), false},
		{"term ⇏ eq", a(rule.Term, "x"), a(rule.Eq, "x"), false},
		{"cased term ⇒ folded contains", cased(rule.Term, "ShadowCopy"), a(rule.Match, "shadowcopy"), true},
		{"folded term ⇏ cased term", a(rule.Term, "shadowcopy"), cased(rule.Term, "shadowcopy"), false},
		{"folded ⇒ cased without letters", a(rule.Match, `\\.\pipe\`), cased(rule.Match, `\\.\`), true},
		{"EQL : ⇏ ==", a(rule.Eq, "cmd.exe"), cased(rule.Eq, "cmd.exe"), false},
		{"EQL == ⇒ :", cased(rule.Eq, "cmd.exe"), a(rule.Eq, "cmd.exe"), true},
		{"cased term keeps no field boundary", cased(rule.Term, "abc"), a(rule.Term, "abc"), false},
		{"arg ⇒ command line contains", elem(rule.Eq, "-enc"), a(rule.Match, "-enc"), true},
		{"arg ⇏ command line term", elem(rule.Eq, "-enc"), a(rule.Term, "-enc"), false},
		{"command line ⇏ arg", a(rule.Match, "-enc"), elem(rule.Eq, "-enc"), false},
		{"arg ⇒ arg", elem(rule.Eq, "-enc"), elem(rule.StartsW, "-e"), true},
		{"quoted arg text is not verbatim", elem(rule.Eq, `a"b`), a(rule.Match, `a"b`), false},
		{"regex only itself", Atom{Field: "f", Kind: rule.Regex, Value: `\s-H\s`, Cased: true}, Atom{Field: "f", Kind: rule.Regex, Value: `\s-h\s`, Cased: true}, false},
	}
	for _, tc := range tests {
		if got := atomImplies(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: atomImplies(%+v, %+v) = %v, want %v", tc.name, tc.x, tc.y, got, tc.want)
		}
	}
}

// Hand-built rules for the tier labels: a Defender FileName test against a Sigma Image
// test is field-map; two Sigma rules are same-telemetry; ECS process.args (elem) is
// stricter than a CommandLine contains, never broader.
func TestTiers(t *testing.T) {
	fm := fieldmap.Default()
	sig := mk(rule.Sigma, "s", "process_creation", rule.And(pred("Image", rule.EndsW, `\certutil.exe`), pred("CommandLine", rule.Match, "urlcache")))
	sig2 := mk(rule.Sigma, "s2", "process_creation", rule.And(pred("Image", rule.EndsW, `\certutil.exe`), pred("CommandLine", rule.Match, "urlcache"), pred("CommandLine", rule.Match, "http")))
	kq := mk(rule.Kusto, "k", "", rule.And(pred("FileName", rule.Eq, "certutil.exe"), pred("ProcessCommandLine", rule.Term, "urlcache")))
	argsPred := &rule.Pred{Field: "process.args", Kind: rule.Eq, Values: []rule.Value{{S: "-urlcache"}}, Transforms: []string{rule.TElem}}
	ecs := &rule.Rule{ID: "e", Language: rule.Elastic, LogSource: rule.LogSource{Product: "windows", Category: "process_creation"},
		Root: rule.And(pred("process.name", rule.Eq, "certutil.exe"), rule.Leaf(argsPred))}
	res := Compute(fm, []*rule.Rule{sig, sig2, kq, ecs}, Options{})
	tests := []struct {
		broader, stricter, basis string
	}{
		{"sigma/s", "sigma/s2", BasisSame},
		{"sigma/s", "kusto/k", BasisFieldMap},
		{"sigma/s", "elastic/e", BasisFieldMap},
	}
	for _, tc := range tests {
		rel, ok := related(res.Stricter, tc.broader, tc.stricter)
		if !ok {
			t.Errorf("%s should list %s as stricter; has %v", tc.broader, tc.stricter, res.Stricter[tc.broader])
			continue
		}
		if rel.Basis != tc.basis {
			t.Errorf("%s / %s: basis %s, want %s (%s)", tc.broader, tc.stricter, rel.Basis, tc.basis, rel.Difference)
		}
	}
	if _, ok := related(res.Stricter, "elastic/e", "sigma/s"); ok {
		t.Error("a CommandLine contains called stricter than a process.args element")
	}
	if rel, _ := related(res.Stricter, "sigma/s", "elastic/e"); !strings.Contains(rel.Difference, "process.args elements appear verbatim") {
		t.Errorf("difference %q does not name the process.args assumption", rel.Difference)
	}
}
