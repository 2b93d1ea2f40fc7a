package elastic

import (
	"os"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// FuzzTOML: Parse never panics; it returns rules or a diagnostic for any input, every
// rule has an id, the Elastic language and stages numbered in order, and every
// diagnostic names the file and a line.
func FuzzTOML(f *testing.F) {
	_, files := corpusFiles(f)
	for i := 0; i < len(files); i += len(files) / 40 {
		data, err := os.ReadFile(files[i])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"[rule]\nquery = 5\nlanguage = [1]\nthreat = [{tactic = 3}]\ntype = \"threshold\"\nthreshold = 2\n",
		"[hunt]\nquery = ['''a''', \"b\"]\nlanguage = [\"EQL\", \"ES|QL\"]\nuuid = \"u\"\n",
		"[rule]\ntype = \"new_terms\"\n[rule.new_terms]\nvalue = \"x\"\nhistory_window_start = 1\n",
		"[metadata]\n[rule]\nlanguage = \"eql\"\nquery = \"\"\"sequence [\"\"\"\n",
		"[rule]\nlanguage = \"kuery\"\nquery = \"a:b\"\n[[rule.filters]]\nmeta = {negate = true}\n[rule.filters.query.wildcard.\"f\"]\nvalue = \"a\\\\*?\"\n" +
			"[[rule.filters]]\nexists = {field = \"g\"}\n[[rule.filters]]\nquery = {match = 1}\nmeta = {disabled = false}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, diags := Parser{}.Parse(rule.Source{Path: "f.toml"}, data)
		if len(rs) == 0 && len(diags) == 0 {
			t.Fatal("no rule and no diagnostic")
		}
		for _, d := range diags {
			if d.Pos.File != "f.toml" || d.Pos.Line == 0 {
				t.Fatalf("file diagnostic not located: %v", d)
			}
		}
		for _, r := range rs {
			if r.ID == "" || r.Language != rule.Elastic {
				t.Fatalf("rule without id or language: %q %q", r.ID, r.Language)
			}
			for i, st := range r.Stages {
				if st.Index != i && !(len(r.Stages) == 1 && st.Index == 1) {
					t.Fatalf("stage %d has index %d", i, st.Index)
				}
			}
			for _, d := range r.Diagnostics {
				if d.Pos.File != "f.toml" || d.Pos.Line == 0 {
					t.Fatalf("diagnostic not located: %v", d)
				}
			}
		}
	})
}
