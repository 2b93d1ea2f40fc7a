package kql

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// fuzzSeeds adds real queries from each collection (a few files each) and the
// table-test snippets to a fuzz corpus.
func fuzzSeeds(f *testing.F) {
	root := corpustest.Path(f, "kql")
	per := map[string]int{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		coll, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		if per[coll] >= 6 {
			return nil
		}
		data, err := os.ReadFile(p)
		// Small files keep the fuzzer fast; large ones add little coverage.
		if err != nil || len(data) > 3000 || !(Parser{}).Detect(rel, data) {
			return nil
		}
		per[coll]++
		f.Add(filepath.Ext(p), data)
		return nil
	})
	for _, s := range []string{
		"T | where A == 1 or B == 2 and C == 3",
		"let x = dynamic(['a']); T | where F in~ (x) | summarize count() by D | where count_ > 5",
		"DeviceEvents\n| where (A == \"x\"\n| where B == \"y\"",
		"union isfuzzy=true (A | where x has_any (\"a\",\"b\")), B* | join kind=inner (C) on $left.A == $right.B",
		"let f = (a:string) { T | where X == a }; f(\"q\")",
		"search in (T) \"ntds\" and ActionType:\"FileModified\"",
		"```\nmulti``` h@'x' @\"y\"\"z\" ['col'] 1.5h datetime(2020-01-01 10:00)",
	} {
		f.Add(".kql", []byte(s))
	}
}

// FuzzLex: the lexer terminates, ends with EOF, and its tokens tile the input in order.
func FuzzLex(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, _ string, data []byte) {
		src := string(data)
		toks, _ := Lex(src)
		if len(toks) == 0 || toks[len(toks)-1].Kind != TEOF {
			t.Fatal("no EOF token")
		}
		prev := 0
		for _, tk := range toks {
			if tk.Start < prev || tk.End < tk.Start || tk.End > len(src) {
				t.Fatalf("token %q at [%d,%d) after %d", tk.Text, tk.Start, tk.End, prev)
			}
			if tk.Kind != TEOF && tk.End == tk.Start {
				t.Fatalf("empty token at %d", tk.Start)
			}
			prev = tk.End
		}
	})
}

// FuzzParse: parsing any file never panics, every rule has a condition stage and
// verbatim body text from the input, and every error is located.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		if ext != ".md" && ext != ".yaml" && ext != ".txt" {
			ext = ".kql"
		}
		path := "fuzz" + ext
		rs, diags := Parser{}.Parse(rule.Source{Path: path}, data)
		for _, d := range diags {
			if d.Code == "kql/internal" {
				t.Fatalf("internal error: %s", d.Message)
			}
		}
		for _, r := range rs {
			if len(r.Stages) == 0 || r.Stages[0].Kind != rule.StageCondition {
				t.Fatalf("rule without condition stage: %+v", r.Stages)
			}
			if ext != ".yaml" && !strings.Contains(string(data), r.Body) {
				t.Fatalf("body %q is not verbatim", r.Body)
			}
			for _, d := range r.Diagnostics {
				if d.Pos.File != path {
					t.Fatalf("diagnostic without file: %s", d)
				}
			}
		}
	})
}
