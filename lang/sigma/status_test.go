package sigma

import (
	"os"
	"strings"
	"testing"
	"unicode"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// TestStatusRealFiles: a rule's status is one lower-case word, whatever the file holds.
// The mdecrevoisier IIS rule repeats its keys and ends with "status: experimental|",
// which the catalog once showed as a status facet value of its own.
func TestStatusRealFiles(t *testing.T) {
	tests := []struct {
		path   string // under corpus/sigma
		want   string
		warned string // part of the sigma/meta/status warning, "" for none
	}{
		{"mdecrevoisier/windows-iis/win-iis-web module loaded - gacutil (command).yaml", "experimental", `"experimental|" read as "experimental"`},
		{"mdecrevoisier/windows-services/win-os-service MSDTC running service change.yaml", "production", "not a Sigma status"},
		{"sigmahq/rules/windows/process_creation/proc_creation_win_bitsadmin_download.yml", "test", ""},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(corpustest.Path(t, "sigma", tt.path))
		if err != nil {
			t.Fatal(err)
		}
		rules, _ := Parser{}.Parse(rule.Source{Repo: "test", Path: tt.path}, data)
		if len(rules) != 1 {
			t.Fatalf("%s: %d rules", tt.path, len(rules))
		}
		r := rules[0]
		if r.Status != tt.want {
			t.Errorf("%s: status %q, want %q", tt.path, r.Status, tt.want)
		}
		var warning *rule.Diagnostic
		for i, d := range r.Diagnostics {
			if d.Code == "sigma/meta/status" {
				warning = &r.Diagnostics[i]
			}
		}
		switch {
		case tt.warned == "" && warning != nil:
			t.Errorf("%s: unexpected warning %q", tt.path, warning.Message)
		case tt.warned != "" && warning == nil:
			t.Errorf("%s: no sigma/meta/status warning", tt.path)
		case tt.warned != "" && !strings.Contains(warning.Message, tt.warned):
			t.Errorf("%s: warning %q, want it to say %q", tt.path, warning.Message, tt.warned)
		case warning != nil && warning.Pos.Line == 0:
			t.Errorf("%s: warning %q has no line", tt.path, warning.Message)
		}
	}
}

// TestStatusOneWordInCorpus: no Sigma rule of the corpus has a status that is not one
// lower-case word (comments after the value are YAML's, not the status's).
func TestStatusOneWordInCorpus(t *testing.T) {
	seen := map[string]int{}
	for _, f := range loadCorpus(t) {
		rules, _ := Parser{}.Parse(rule.Source{Repo: "test", Path: f.rel}, f.data)
		for _, r := range rules {
			seen[r.Status]++
			if strings.ContainsFunc(r.Status, func(c rune) bool { return !unicode.IsLower(c) }) {
				t.Errorf("%s: status %q", f.rel, r.Status)
			}
		}
	}
	if seen["experimental"] < 600 || seen["test"] < 3000 {
		t.Errorf("statuses %v: the corpus has hundreds of experimental and thousands of test rules", seen)
	}
}
