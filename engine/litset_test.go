package engine

import (
	"slices"
	"strings"
	"testing"
)

// litSetScanner returns a function that scans a text with ls and returns the ids of the
// literals it reported (ids 0..n-1, each waking a variant of its own).
func litSetScanner(ls *litSet, n int) func(string) []int32 {
	m := &Matcher{}
	b := &bucket{uses: make([][]litUse, n)}
	for i := range n {
		m.variants = append(m.variants, &variant{full: 1})
		b.uses[i] = []litUse{{v: int32(i), bit: 1}}
	}
	st := newState(m).(*state)
	st.b = b
	st.litGen = make([]uint32, n)
	return func(text string) []int32 {
		st.gen++
		st.cand = st.cand[:0]
		ls.scan(text, st)
		out := slices.Clone(st.cand)
		slices.Sort(out)
		return out
	}
}

func naiveHits(pats []string, text string) []int32 {
	var out []int32
	for i, p := range pats {
		if strings.Contains(text, p) {
			out = append(out, int32(i))
		}
	}
	return out
}

// TestLitSetFindsEveryLiteral compares the anchor-window filter with strings.Contains:
// on the CommandLine literals of the SigmaHQ process_creation rules against the
// regression events' command lines, and on literals placed at the edges of a text,
// overlapping, repeated and shorter than a window.
func TestLitSetFindsEveryLiteral(t *testing.T) {
	rules, cat := windowsRules(t)
	m, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
	cl := m.slots["CommandLine"]
	var real []string
	seen := map[string]bool{}
	for _, k := range m.litKeys {
		if k.slot == cl && !seen[k.s] {
			seen[k.s] = true
			real = append(real, k.s)
		}
	}
	if len(real) < 1000 {
		t.Fatalf("%d CommandLine literals, want the thousands of the SigmaHQ rules", len(real))
	}
	var texts []string
	for _, ev := range regressionEvents(t) {
		for _, f := range ev.Fields {
			texts = append(texts, fold(f.Value))
		}
	}
	cases := []struct {
		name  string
		pats  []string
		texts []string
	}{
		{"sigmahq CommandLine literals on regression events", real, texts},
		{"edges and overlaps", []string{"abcd", "bcde", "cdefg", "xyz", "ab", "a", "defgh"},
			[]string{"", "a", "abc", "abcd", "abcdefgh", "zabcdez", "xyzxyz", "cdef", "bcd"}},
		{"shared windows at different offsets", []string{"1234abcd", "abcd5678", "xxabcdxx", "abcd"},
			[]string{"1234abcd5678", "xxabcdx", "abcd", "zz1234abcdxx", "abc", "bcd5678"}},
		{"repeated and non-ASCII", []string{"–enc", "\x00a\x00b", "ab", "\\\\"},
			[]string{"–enc –enc", "\x00a\x00b\x00c", "c:\\\\x", "ababab"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ids := make([]int32, len(c.pats))
			for i := range ids {
				ids[i] = int32(i)
			}
			scan := litSetScanner(newLitSet(c.pats, ids, windowFreq(m.litKeys)), len(c.pats))
			found := 0
			for _, text := range c.texts {
				got, want := scan(text), naiveHits(c.pats, text)
				if !slices.Equal(got, want) {
					t.Errorf("%q: found %v, want %v", text, got, want)
				}
				found += len(want)
			}
			if found == 0 {
				t.Error("no literal occurs in any text: the case tests nothing")
			}
			t.Logf("%d literals, %d texts, %d occurrences", len(c.pats), len(c.texts), found)
		})
	}
}
