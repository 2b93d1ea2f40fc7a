package engine

import (
	"math/bits"
	"sort"
	"strings"
)

// litSet reports which of a set of folded literals occur in a folded text: the
// prefilter of one field in one bucket.
//
// An Aho-Corasick DFA over all of them was the first design; its scan is one dependent
// table load per byte, and the tables outgrow the caches: the CommandLine literals of
// process_creation made 70,000 states times a 153-byte alphabet (windash's dashes and
// UTF-16's bytes), 40 MB, a cache miss per byte. Literals of four bytes or more now go
// through an anchor-window filter: each literal is represented by one of its 4-byte
// windows, chosen to be rare (see windowFreq); the scan hashes every 4-byte window of the
// text into a bitmap of a few KB and, only on a set bit, looks the window up and compares
// the literals anchored there. Positions are independent, so the loop pipelines instead
// of waiting on memory; on the regression events it halved the time per event, and it
// beat the DFA on the small sets as well. The few shorter literals (".js", "-e") keep a
// DFA, which stays tiny.
type litSet struct {
	ac *acAutomaton // literals shorter than winLen

	// Anchor-window filter, nil bits when every literal is in ac.
	bits    []uint64 // bit (w*winMul)>>bitShift set when some anchor hashes there
	bitMask uint32
	bitSh   uint32
	tab     []winSlot // open addressing on (w*winMul)>>tabSh
	tabSh   uint32
	tabMask uint32
	ents    []winEnt
}

const (
	winLen = 4
	winMul = 0x9E3779B1 // Fibonacci hashing: the high bits of w*winMul mix every byte of w
)

// winSlot is one anchor window: the literals anchored there are ents[lo:hi].
type winSlot struct {
	w      uint32
	lo, hi uint32
}

// winEnt is one literal anchored at a window: it starts off bytes before the window.
type winEnt struct {
	lit string
	off int32
	id  int32
}

// win4 reads the 4-byte window of s at i, first byte lowest.
func win4(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

// windowFreq counts, for every 4-byte window, how many distinct literals contain it.
// Rule literals are drawn from the same paths, command lines and registry keys that
// logs carry, so a window shared by many literals (".exe", "\win") is common in logs
// too, and one no other literal has is a good anchor.
func windowFreq(lits []litKey) map[uint32]int32 {
	freq := map[uint32]int32{}
	seen := map[string]bool{}
	var mine []uint32
	for _, k := range lits {
		if len(k.s) < winLen || seen[k.s] {
			continue
		}
		seen[k.s] = true
		mine = mine[:0]
		for i := 0; i+winLen <= len(k.s); i++ {
			mine = append(mine, win4(k.s, i))
		}
		sort.Slice(mine, func(a, b int) bool { return mine[a] < mine[b] })
		for i, w := range mine {
			if i == 0 || mine[i-1] != w {
				freq[w]++
			}
		}
	}
	return freq
}

// newLitSet builds the set; literal i is reported as ids[i].
func newLitSet(pats []string, ids []int32, freq map[uint32]int32) *litSet {
	ls := &litSet{}
	var short []string
	var shortIDs []int32
	byWin := map[uint32][]winEnt{}
	for i, p := range pats {
		if len(p) < winLen {
			short = append(short, p)
			shortIDs = append(shortIDs, ids[i])
			continue
		}
		best, bestF := 0, int32(1<<30)
		for j := 0; j+winLen <= len(p); j++ {
			// Later windows win ties: prefixes such as "c:\" and "\win" are shared more.
			if f := freq[win4(p, j)]; f <= bestF {
				best, bestF = j, f
			}
		}
		w := win4(p, best)
		byWin[w] = append(byWin[w], winEnt{lit: p, off: int32(best), id: ids[i]})
	}
	if len(short) > 0 {
		ls.ac = newAC(short, shortIDs)
	}
	if len(byWin) == 0 {
		return ls
	}
	// About 32 bits per anchor keeps a random window's false-positive rate near 3%.
	bl := bits.Len(uint(len(byWin)*32 - 1))
	bl = max(12, min(bl, 22))
	ls.bits = make([]uint64, 1<<(bl-6))
	ls.bitSh = uint32(32 - bl)
	ls.bitMask = uint32(len(ls.bits) - 1)
	tl := bits.Len(uint(len(byWin)*2 - 1))
	ls.tab = make([]winSlot, 1<<tl)
	ls.tabSh = uint32(32 - tl)
	ls.tabMask = uint32(len(ls.tab) - 1)
	wins := make([]uint32, 0, len(byWin))
	for w := range byWin {
		wins = append(wins, w)
	}
	sort.Slice(wins, func(a, b int) bool { return wins[a] < wins[b] }) // deterministic layout
	for _, w := range wins {
		h := w * winMul
		b := h >> ls.bitSh
		ls.bits[b>>6] |= 1 << (b & 63)
		lo := uint32(len(ls.ents))
		ls.ents = append(ls.ents, byWin[w]...)
		t := h >> ls.tabSh
		for ls.tab[t].hi != 0 {
			t = (t + 1) & ls.tabMask
		}
		ls.tab[t] = winSlot{w: w, lo: lo, hi: uint32(len(ls.ents))}
	}
	return ls
}

// scan reports every literal occurring in text to st.hitLiteral.
func (ls *litSet) scan(text string, st *state) {
	if ls.ac != nil {
		ls.ac.scan(text, st)
	}
	if ls.bits == nil || len(text) < winLen {
		return
	}
	bm, sh, mask := ls.bits, ls.bitSh, ls.bitMask
	w := uint32(text[0])<<8 | uint32(text[1])<<16 | uint32(text[2])<<24
	for i := winLen - 1; i < len(text); i++ {
		w = w>>8 | uint32(text[i])<<24
		b := (w * winMul) >> sh
		if bm[(b>>6)&mask]&(1<<(b&63)) != 0 {
			ls.verify(text, i-(winLen-1), w, st)
		}
	}
}

// verify reports the literals anchored at window w found at position pos of text.
func (ls *litSet) verify(text string, pos int, w uint32, st *state) {
	t := (w * winMul) >> ls.tabSh
	for {
		s := &ls.tab[t]
		if s.hi == 0 {
			return
		}
		if s.w == w {
			for _, e := range ls.ents[s.lo:s.hi] {
				start := pos - int(e.off)
				if start >= 0 && start+len(e.lit) <= len(text) && strings.HasPrefix(text[start:], e.lit) {
					st.hitLiteral(e.id)
				}
			}
			return
		}
		t = (t + 1) & ls.tabMask
	}
}
