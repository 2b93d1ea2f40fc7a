package yaral

import (
	"regexp"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// TestIndicatorCountIsIndependent checks indicator counts against a plain text scan
// of the files that uses none of the parser. The Sigma→YARA-L conversions in the
// corpus wrote `Image|endswith: '\bitsadmin.exe'` as the unanchored re.regex
// `.*\\bitsadmin\.exe`, which is a substring test: those rules count under
// `Image match \bitsadmin.exe` (case-sensitive), and none under ends_with.
func TestIndicatorCountIsIndependent(t *testing.T) {
	fm := fieldmap.Default()
	cases := []struct {
		name       string
		scan       *regexp.Regexp
		field      string
		kind       rule.Kind
		transforms []string
		value      string
	}{
		{"unanchored bitsadmin regex", regexp.MustCompile("target\\.process\\.file\\.full_path, `(\\.\\*)?\\\\\\\\bitsadmin\\\\\\.exe`\\)"),
			"Image", rule.Match, []string{rule.TCased}, `\bitsadmin.exe`},
		// No conversion anchored bitsadmin; the community rules anchor certutil with $ and nocase.
		{"anchored bitsadmin regex", regexp.MustCompile("target\\.process\\.file\\.full_path, `(\\.\\*)?\\\\\\\\bitsadmin\\\\\\.exe\\$`"),
			"Image", rule.EndsW, nil, `\bitsadmin.exe`},
		{"anchored certutil regex nocase", regexp.MustCompile("target\\.process\\.file\\.full_path, `\\\\\\\\certutil\\\\\\.exe\\$`\\) nocase"),
			"Image", rule.EndsW, nil, `\certutil.exe`},
		{"command line equals /transfer", regexp.MustCompile(`target\.process\.command_line = "/transfer"`),
			"CommandLine", rule.Eq, []string{rule.TCased}, "/transfer"},
	}
	files := corpusFiles(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, key := fm.IndicatorKey(nil, c.field, c.kind, c.transforms, c.value)
			want, got := 0, 0
			for _, f := range files {
				if c.scan.Match(f.data) {
					want++
				}
				rs, _ := Parser{}.Parse(rule.Source{Path: f.rel}, f.data)
				for _, r := range rs {
					for _, ind := range fm.Indicators(r) {
						if ind.Key == key && !ind.Negated {
							got++
							break
						}
					}
				}
			}
			t.Logf("%s %s %q: %d rules, scan %d files", c.field, c.kind, c.value, got, want)
			if got != want {
				t.Errorf("indicators count %d rules, the scan finds %d files", got, want)
			}
		})
	}
}
