package elastic

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

var (
	scanLang  = regexp.MustCompile(`(?m)^language = "(eql|kuery)"`)
	scanQuery = regexp.MustCompile(`(?s)\nquery = '''\n(.*?)'''`)
	scanValue = regexp.MustCompile(`(?i)"(bitsadmin\.exe|\*\\\\bitsadmin\.exe)"`)
	// The field and operator written right before a value or before the list holding it.
	scanField = regexp.MustCompile(`(?i)(process\.name|process\.executable)\s*(not\s+in~?|in~?|:|==|like~?)\s*$`)
	scanNot   = regexp.MustCompile(`(?i)\bnot\s*$`)
)

// scanBitsadmin reports, without ruledex's parsers, whether an EQL or Kibana query tests
// process.name for "bitsadmin.exe" (or process.executable for "*\bitsadmin.exe") outside
// any negation: it finds each such literal, the field written before it or before the
// parenthesized list holding it, and counts the `not`s in front of that field and of every
// parenthesis enclosing it.
func scanBitsadmin(q string) bool {
	// opens[i] is the offset of the innermost unclosed parenthesis at offset i, computed
	// outside string literals.
	type frame struct{ at int }
	var stack []frame
	enclosing := make([][]int, len(q)+1)
	inStr := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		} else {
			switch c {
			case '"':
				inStr = true
			case '(':
				stack = append(stack, frame{i})
			case ')':
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			}
		}
		if i+1 < len(enclosing) {
			ats := make([]int, len(stack))
			for j, f := range stack {
				ats[j] = f.at
			}
			enclosing[i+1] = ats
		}
	}
	for _, m := range scanValue.FindAllStringSubmatchIndex(q, -1) {
		isName := !strings.HasPrefix(q[m[2]:m[3]], "*")
		before := q[:m[0]]
		fieldEnd := -1
		if fm := scanField.FindStringSubmatchIndex(before); fm != nil {
			fieldEnd = fm[0]
			if strings.EqualFold(q[fm[2]:fm[3]], "process.name") != isName {
				continue
			}
			if strings.HasPrefix(strings.ToLower(q[fm[4]:fm[5]]), "not") {
				continue
			}
		} else if enc := enclosing[m[0]]; len(enc) > 0 {
			open := enc[len(enc)-1]
			fm := scanField.FindStringSubmatchIndex(q[:open])
			if fm == nil || strings.EqualFold(q[fm[2]:fm[3]], "process.name") != isName ||
				strings.HasPrefix(strings.ToLower(q[fm[4]:fm[5]]), "not") {
				continue
			}
			fieldEnd = fm[0]
		} else {
			continue
		}
		neg := scanNot.MatchString(q[:fieldEnd])
		for _, open := range enclosing[fieldEnd] {
			if scanNot.MatchString(q[:open]) {
				neg = !neg
			}
		}
		if !neg {
			return true
		}
	}
	return false
}

// TestBitsadminCountIsIndependent: the EQL and Kibana-query rules that count under
// Image ends_with \bitsadmin.exe (what `ruledex indicator` shows) are exactly the ones the
// independent scan finds.
func TestBitsadminCountIsIndependent(t *testing.T) {
	root, files := corpusFiles(t)
	fm := fieldmap.Default()
	_, key := fm.IndicatorKey(nil, "Image", rule.EndsW, nil, `\bitsadmin.exe`)
	scanned, parsed := map[string]bool{}, map[string]bool{}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		text := string(data)
		if !scanLang.MatchString(text) {
			continue
		}
		if m := scanQuery.FindStringSubmatch(text); m != nil && scanBitsadmin(m[1]) {
			scanned[rel] = true
		}
		rs, _ := Parser{}.Parse(rule.Source{Path: rel}, data)
		for _, r := range rs {
			if r.BodyLang != "eql" && r.BodyLang != "kuery" {
				continue
			}
			for _, in := range fm.Indicators(r) {
				if in.Key == key && !in.Negated {
					parsed[rel] = true
				}
			}
		}
	}
	diff := func(a, b map[string]bool) []string {
		var out []string
		for f := range a {
			if !b[f] {
				out = append(out, f)
			}
		}
		sort.Strings(out)
		return out
	}
	if d := diff(parsed, scanned); len(d) > 0 {
		t.Errorf("counted by ruledex, not by the scan: %v", d)
	}
	if d := diff(scanned, parsed); len(d) > 0 {
		t.Errorf("found by the scan, not counted by ruledex: %v", d)
	}
	if len(scanned) < 5 {
		t.Errorf("the scan found %d rules; it cannot check the count", len(scanned))
	}
	t.Logf("Image ends_with \\bitsadmin.exe: %d EQL/Kibana-query rules (scan %d)", len(parsed), len(scanned))
}

// The scanner itself, on hand-written queries.
func TestScanBitsadmin(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{`process where process.name : "bitsadmin.exe"`, true},
		{`process where process.name : ("a.exe", "BITSADMIN.exe")`, true},
		{`process where not process.name : ("a.exe", "bitsadmin.exe")`, false},
		{`process where a : "b" and not (x : "y" or process.name in ("bitsadmin.exe"))`, false},
		{`process where not (not process.name : "bitsadmin.exe")`, true},
		{`process where process.name not in ("bitsadmin.exe")`, false},
		{`process where process.executable : "*\\bitsadmin.exe"`, true},
		{`process where process.parent.name : "bitsadmin.exe"`, false},
		{`process.name:("a" or "bitsadmin.exe")`, true},
		{`process where process.pe.original_file_name : "bitsadmin.exe"`, false},
	} {
		if got := scanBitsadmin(tc.q); got != tc.want {
			t.Errorf("scanBitsadmin(%s) = %v, want %v", tc.q, got, tc.want)
		}
	}
}
