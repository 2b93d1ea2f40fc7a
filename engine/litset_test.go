package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/event"
)

// litSetScanner returns a function that scans a text with ls and returns the ids of the
// literals it reported (ids 0..n-1, each waking a variant of its own).
func litSetScanner(ls *litSet, n int) func(string) []int32 {
	m := &Matcher{}
	b := &bucket{uses: make([][]litUse, n)}
	for i := range n {
		m.variants = append(m.variants, &variant{})
		b.uses[i] = []litUse{{v: int32(i)}}
	}
	st := newState(m).(*state)
	st.b = b
	st.litGen = make([]uint32, n)
	st.litSeq = make([]uint32, n)
	return func(text string) []int32 {
		st.gen++
		st.cand = st.cand[:0]
		ls.scan(text, st)
		out := slices.Clone(st.cand)
		slices.Sort(out)
		return out
	}
}

// litSetFieldScanner is litSetScanner through scanField: the text is an event's value as
// logged, which scanField folds only where it needs to.
func litSetFieldScanner(ls *litSet, n int) func(string) []int32 {
	m := &Matcher{}
	b := &bucket{uses: make([][]litUse, n)}
	for i := range n {
		m.variants = append(m.variants, &variant{})
		b.uses[i] = []litUse{{v: int32(i)}}
	}
	st := newState(m).(*state)
	return func(text string) []int32 {
		ev := &event.Event{Fields: []event.Field{{Name: "f", Value: text}}}
		st.begin(ev)
		st.b = b
		st.litGen = make([]uint32, n)
		st.litSeq = make([]uint32, n)
		ls.scanField(st, 0)
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
			texts = append(texts, f.Value)
		}
	}
	var kw []string
	for _, k := range m.litKeys {
		if k.slot == slotAll && !seen["\x00"+k.s] {
			seen["\x00"+k.s] = true
			kw = append(kw, k.s)
		}
	}
	// Literals of nine bytes or more (stride 6) at every offset of texts of every length,
	// in both cases and after a character whose folded form is longer.
	long9 := []string{"sekurlsa::", "lsadump::", "\\mimilib.dll", "aaaaaaaaaaaaa"}
	var placed []string
	for off := 0; off < 14; off++ {
		for _, l := range long9 {
			for _, tail := range []string{"", "x", "xyz", "xyzxyzxy"} {
				pre := strings.Repeat("-", off)
				placed = append(placed, pre+l+tail, pre+strings.ToUpper(l)+tail, "Ⱥ"+pre+l+tail, pre+l[:len(l)-1]+tail)
			}
		}
	}
	cases := []struct {
		name   string
		pats   []string
		texts  []string
		stride int // the stride newLitSet must choose (0: any)
	}{
		{"sigmahq CommandLine literals on regression events", real, texts, 0},
		{"sigmahq keyword literals on regression events", kw, append(texts, placed...), 0},
		{"long literals at every offset (stride)", long9, placed, 6},
		{"edges and overlaps", []string{"abcd", "bcde", "cdefg", "xyz", "ab", "a", "defgh"},
			[]string{"", "a", "abc", "abcd", "abcdefgh", "zabcdez", "xyzxyz", "cdef", "bcd"}, 1},
		{"shared windows at different offsets", []string{"1234abcd", "abcd5678", "xxabcdxx", "abcd"},
			[]string{"1234abcd5678", "xxabcdx", "abcd", "zz1234abcdxx", "abc", "bcd5678"}, 1},
		{"repeated and non-ASCII", []string{"–enc", "\x00a\x00b", "ab", "\\\\"},
			[]string{"–enc –enc", "\x00a\x00b\x00c", "c:\\\\x", "ababab"}, 1},
		// Folding changes lengths: Ⱥ (2 bytes) folds to ⱥ (3), the Kelvin sign (3) to k (1),
		// so positions after them differ between the value and its folded form.
		{"case and folding that moves positions", []string{"powershell", "-enc", "kelvin", "ⱥbcd", "cmd.exe", "x", "é"},
			[]string{"POWERSHELL -ENC", "ȺBCD PowerShell", "\u212aelvin", "ȺȺȺȺ CMD.EXE", "É", "ÉX", "Ⱥ-Enc", "\u212a\u212aX", "\xffPOWERSHELL\xff"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ids := make([]int32, len(c.pats))
			for i := range ids {
				ids[i] = int32(i)
			}
			ls := newLitSet(c.pats, ids, windowFreq(m.litKeys))
			if c.stride != 0 && ls.stride != c.stride {
				t.Fatalf("stride %d, want %d", ls.stride, c.stride)
			}
			scan, scanField := litSetScanner(ls, len(c.pats)), litSetFieldScanner(ls, len(c.pats))
			found := 0
			for _, text := range c.texts {
				want := naiveHits(c.pats, fold(text))
				if got := scan(fold(text)); !slices.Equal(got, want) {
					t.Errorf("scan %q: found %v, want %v", fold(text), got, want)
				}
				if got := scanField(text); !slices.Equal(got, want) {
					t.Errorf("scanField %q: found %v, want %v", text, got, want)
				}
				found += len(want)
			}
			if found == 0 {
				t.Error("no literal occurs in any text: the case tests nothing")
			}
			t.Logf("%d literals (stride %d), %d texts, %d occurrences", len(c.pats), ls.stride, len(c.texts), found)
		})
	}
}
