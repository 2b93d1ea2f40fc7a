package eql

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// FuzzEQL: Parse never panics, never loses the query (at least one stage), numbers
// its stages from 1 and locates every diagnostic inside the query's lines.
func FuzzEQL(f *testing.F) {
	root := corpustest.Path(f, "elastic", "detection-rules", "rules")
	n := 0
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || n >= 60 || !strings.HasSuffix(p, ".toml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(data), `language = "eql"`) {
			return nil
		}
		// The query is the '''-quoted value of `query =`; no TOML decoder needed for seeds.
		_, rest, ok := strings.Cut(string(data), "\nquery = '''\n")
		if !ok {
			return nil
		}
		q, _, ok := strings.Cut(rest, "'''")
		if ok && len(q) < 3000 {
			f.Add(q)
			n++
		}
		return nil
	})
	if n < 20 {
		f.Fatalf("only %d EQL seeds found under %s", n, root)
	}
	for _, s := range []string{
		`sequence by host.id with maxspan=1m [process where true] by a ![file where x : "y"] until [any where z] | head 3 | unique a, b`,
		`sample by host.id [process where a in~ ("b", 1, null)] [network where cidrMatch(ip, "1.2.3.4/8")]`,
		`process where descendant of [process where name : "x"] and length(a) + 1 > 2 and "lit" == f`,
		`file where f regex~ "([a" and g like ("*", "?x*") and not not (h : """raw""" or i : ?"raw2")`,
		"process where `a b`.c : \"\\u{41}\\q\" // comment\n /* block */ and d == -1.5",
		`process where ((((((((a : "b"))))))))`,
		`sequence [`, `process where (`, `"unterminated`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		at := rule.Pos{File: "f.toml", Line: 5, Col: 1}
		res := Parse(q, at)
		if len(res.Stages) == 0 && len(res.Diags) == 0 && strings.TrimSpace(q) != "" {
			t.Fatalf("query lost: no stage, no diagnostic")
		}
		lines := strings.Count(q, "\n")
		for i, st := range res.Stages {
			if st.Index != i+1 {
				t.Fatalf("stage %d has index %d", i, st.Index)
			}
		}
		for _, d := range res.Diags {
			// A runtime panic is recovered into a diagnostic so a rule is never lost;
			// the fuzzer must still see it as the bug it is.
			if strings.Contains(d.Message, "internal error") {
				t.Fatalf("recovered panic: %v", d)
			}
			if d.Pos.File != "f.toml" || d.Pos.Line < 5 || d.Pos.Line > 5+lines {
				t.Fatalf("diagnostic outside the query: %v", d)
			}
		}
		rule.Walk(res.Root, func(n *rule.Node, _ bool) bool {
			if n.Op == rule.OpPred && (n.Pred == nil || n.Pred.Field == "") {
				t.Fatalf("predicate without a field: %+v", n)
			}
			return true
		})
	})
}
