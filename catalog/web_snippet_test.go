package catalog

import (
	"strings"
	"testing"
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
