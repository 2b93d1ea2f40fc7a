package catalog

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

func TestBuildSnippet(t *testing.T) {
	m := func(s string) string { return SnippetMark + s + SnippetEnd }
	tests := []struct {
		name, query string
		cols        []string
		want        string
	}{
		{"title match", "bitsadmin", []string{"New BITS Job Created Via Bitsadmin", "Detects the creation of a new bits job by Bitsadmin", "", "", ""},
			"New BITS Job Created Via " + m("Bitsadmin")},
		{"the column with most matches wins", "bitsadmin transfer", []string{"File Download Via Bitsadmin", "",
			"", "Image CommandLine", `\bitsadmin.exe bitsadmin.exe /transfer /create /addfile http`},
			`\` + m("bitsadmin") + ".exe " + m("bitsadmin") + ".exe /" + m("transfer") + " /create /addfile http"},
		{"window around a late match", "lsass", []string{"", "one two three four five six seven eight nine ten eleven twelve thirteen LSASS dump and more words follow here", "", "", ""},
			"…nine ten eleven twelve thirteen " + m("LSASS") + " dump and more words follow here"}, // the window fills backwards at the end
		{"words before a match at the end, all of them", "lsass", []string{"", "a b c d e LSASS z", "", "", ""},
			"a b c d e " + m("LSASS") + " z"},
		{"words before a match at the end, one too many", "lsass", []string{"", "a b c d e f g h i j k LSASS z", "", "", ""},
			"…b c d e f g h i j k " + m("LSASS") + " z"},
		{"prefix", "credential*", []string{"Credentials dumped", "", "", "", ""}, m("Credentials") + " dumped"},
		{"phrase words and exclusions", `"scheduled task" -schtasks`, []string{"Scheduled Task Created by schtasks", "", "", "", ""},
			m("Scheduled") + " " + m("Task") + " Created by schtasks"},
		{"no match", "zzz", []string{"abc", "", "", "", ""}, ""},
		{"white space runs are one space", "lsass", []string{"", "dump\n\n   LSASS\tmemory  \n", "", "", ""},
			"dump " + m("LSASS") + " memory"},
		{"non-ASCII words fold too", "überwachung", []string{"Prozess-Überwachung aktiv", "", "", "", ""},
			"Prozess-" + m("Überwachung") + " aktiv"},
		{"a prefix longer than the word", "powershell*", []string{"power shell", "", "", "", ""}, ""},
		{"a word is not its prefix", "cmd", []string{"cmdline", "", "", "", ""}, ""},
		{"a word matching two terms counts once", "power* powershell", []string{"PowerShell", "power shell power", "", "", ""},
			m("power") + " shell " + m("power")},
		{"nor the end of a longer word", "lsass", []string{"notlsass dump", "", "", "", ""}, ""},
		{"the first match opens the window", "dump", []string{"", "", "", "", "a b c d e f g h i j k l m n o p DUMP q r s t u v w x y z dump"},
			"…o p " + m("DUMP") + " q r s t u v w x y…"},
	}
	for _, tt := range tests {
		got := buildSnippet(tt.cols, snippetTerms(tt.query))
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, strings.NewReplacer(SnippetMark, "[", SnippetEnd, "]").Replace(got),
				strings.NewReplacer(SnippetMark, "[", SnippetEnd, "]").Replace(tt.want))
		}
	}
}

func TestKthLargest(t *testing.T) {
	vals := func(cs ...int) []FacetValue {
		var out []FacetValue
		for _, c := range cs {
			out = append(out, FacetValue{Count: c})
		}
		return out
	}
	tests := []struct {
		counts []int
		k      int
		want   int
	}{
		{[]int{5, 1, 9, 3, 7}, 1, 9},
		{[]int{5, 1, 9, 3, 7}, 2, 7},
		{[]int{5, 1, 9, 3, 7}, 5, 1},
		{[]int{1, 1, 1, 2, 1, 1}, 2, 1},
		{[]int{4, 4, 4, 4}, 3, 4},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 3, 8},
		{[]int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 4, 7},
	}
	for _, tt := range tests {
		if got := kthLargest(vals(tt.counts...), tt.k); got != tt.want {
			t.Errorf("kthLargest(%v, %d) = %d, want %d", tt.counts, tt.k, got, tt.want)
		}
	}
}

// TestSeparableHitsMatchScan: a search whose terms are separable builds its snippets
// from each term's hits (kept across searches), added up; they must be the snippets a
// scan for all the terms at once gives. Documents are real rule files of the corpus cut
// into five columns (some with non-ASCII text), term sets mix common and rare words,
// cases, a word twice, prefixes and non-ASCII words (those must not be separable).
func TestSeparableHitsMatchScan(t *testing.T) {
	var docs []*ftsDoc
	for _, lang := range []string{"kql", "spl", "sigma"} {
		root, n := corpustest.Path(t, lang), 0
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || n >= 500 {
				return err
			}
			n++
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			text := string(b)
			var cols [5]string
			for k := range cols {
				cols[k] = text[k*len(text)/5 : (k+1)*len(text)/5]
			}
			cols[1] += " Überprüfung straße " // non-ASCII in some column of every document
			docs = append(docs, newFTSDoc(cols))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(docs) < 1000 {
		t.Fatalf("only %d documents from the corpus", len(docs))
	}
	queries := []struct {
		q         string
		separable bool
	}{
		{"powershell", true}, {"process user", true}, {"CommandLine Image", true}, {"cmd exe", true},
		{"admin password logon", true}, {"T1059 execution", true}, {"powershell PowerShell", false},
		{"process proc*", false}, {"straße process", false}, {"encoded base64 -whoami", true},
	}
	compared := 0
	for _, tt := range queries {
		terms := snippetTerms(tt.q)
		if got := separable(terms); got != tt.separable {
			t.Errorf("%q: separable %v, want %v", tt.q, got, tt.separable)
		}
		if !tt.separable {
			continue
		}
		all := newTermScanner(terms)
		for _, d := range docs {
			var h colHits
			for i := range terms {
				h.add(newTermScanner(terms[i : i+1]).colHits(d))
			}
			want := buildDocSnippet(d, all)
			if got := snippetFrom(d, terms, h); got != want {
				t.Fatalf("%q: snippet from each term's hits %q, from one scan %q", tt.q, got, want)
			}
			if want != "" {
				compared++
			}
		}
	}
	if compared < 1000 {
		t.Errorf("only %d snippets compared", compared)
	}
}
