package engine

import "sort"

// acAutomaton is an Aho-Corasick DFA over folded literals. ruledex keeps its own rather
// than using github.com/coregx/ahocorasick because the prefilter needs every
// overlapping occurrence delivered without allocating, and that library's
// FindAllOverlapping builds a new slice per call.
type acAutomaton struct {
	classes  [256]uint8
	stride   int
	trans    []uint32 // state*stride + class -> next state (during build; nil after when trans16 is used)
	trans16  []uint16 // the same table when the states fit in 15 bits: half the cache footprint
	outStart []uint32 // state -> range in out
	out      []int32  // pattern ids reported at each state (own and inherited)
}

// newAC builds an automaton; pattern i is reported as id ids[i].
func newAC(pats []string, ids []int32) *acAutomaton {
	a := &acAutomaton{}
	// Byte classes: every byte that appears in some pattern gets its own class, all others
	// share class 0, which keeps the table small.
	var used [256]bool
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	distinct := 0
	for b := 0; b < 256; b++ {
		if used[b] {
			distinct++
		}
	}
	n := 1
	for b := 0; b < 256; b++ {
		switch {
		case distinct >= 255:
			a.classes[b] = uint8(b) // too many distinct bytes to share a class: identity
			n = 256
		case used[b]:
			a.classes[b] = uint8(n)
			n++
		}
	}
	a.stride = n
	// The trie is built directly in the dense table: 0 means "no child" (the root is
	// never a child), and breadth-first order fills the gaps with failure transitions.
	stride := a.stride
	a.trans = make([]uint32, stride, stride*trieNodes(pats))
	pats2 := [][]int32{nil}
	for pi, p := range pats {
		s := 0
		for i := 0; i < len(p); i++ {
			c := int(a.classes[p[i]])
			nx := int(a.trans[s*stride+c])
			if nx == 0 {
				nx = len(pats2)
				pats2 = append(pats2, nil)
				a.trans = append(a.trans, make([]uint32, stride)...)
				a.trans[s*stride+c] = uint32(nx)
			}
			s = nx
		}
		pats2[s] = append(pats2[s], ids[pi])
	}
	nstates := len(pats2)
	fail := make([]uint32, nstates)
	queue := make([]uint32, 0, nstates)
	for c := 0; c < stride; c++ {
		if nx := a.trans[c]; nx != 0 {
			queue = append(queue, nx)
		}
	}
	for qi := 0; qi < len(queue); qi++ {
		s := int(queue[qi])
		f := int(fail[s])
		pats2[s] = append(pats2[s], pats2[f]...)
		row := a.trans[s*stride : (s+1)*stride]
		frow := a.trans[f*stride : (f+1)*stride]
		for c := 0; c < stride; c++ {
			if nx := row[c]; nx != 0 {
				fail[nx] = frow[c]
				queue = append(queue, nx)
			} else {
				row[c] = frow[c]
			}
		}
	}
	nodes := pats2
	a.outStart = make([]uint32, len(nodes)+1)
	for i := range nodes {
		a.outStart[i] = uint32(len(a.out))
		a.out = append(a.out, dedupIDs(nodes[i])...)
	}
	a.outStart[len(nodes)] = uint32(len(a.out))
	// Flag transitions into states that report patterns, so the scan loop touches the
	// output table only on hits.
	for i, nx := range a.trans {
		if a.outStart[nx] != a.outStart[nx+1] {
			a.trans[i] = nx | acMatch
		}
	}
	if len(nodes) < 1<<15 {
		a.trans16 = make([]uint16, len(a.trans))
		for i, x := range a.trans {
			a.trans16[i] = uint16(x&^acMatch) | uint16(x>>16)&acMatch16
		}
		a.trans = nil
	}
	return a
}

const acMatch16 = 1 << 15

// acMatch marks a transition whose target state reports patterns.
const acMatch = 1 << 31

func dedupIDs(ids []int32) []int32 {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[int32]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// trieNodes counts the trie's nodes (distinct prefixes, plus the root) so the table is
// allocated once: in sorted order each pattern adds its length minus the prefix it
// shares with the previous one.
func trieNodes(pats []string) int {
	sorted := append([]string(nil), pats...)
	sort.Strings(sorted)
	n, prev := 1, ""
	for _, p := range sorted {
		l := 0
		for l < len(p) && l < len(prev) && p[l] == prev[l] {
			l++
		}
		n += len(p) - l
		prev = p
	}
	return n
}

// scan reports every pattern occurring in text to hit.
func (a *acAutomaton) scan(text string, st *state) {
	if a.trans16 != nil {
		a.scan16(text, st)
		return
	}
	s := uint32(0)
	stride := uint32(a.stride)
	trans, classes := a.trans, &a.classes
	for i := 0; i < len(text); i++ {
		s = trans[s*stride+uint32(classes[text[i]])]
		if s&acMatch != 0 {
			s &^= acMatch
			for _, id := range a.out[a.outStart[s]:a.outStart[s+1]] {
				st.hitLiteral(id)
			}
		}
	}
}

func (a *acAutomaton) scan16(text string, st *state) {
	s := uint32(0)
	stride := uint32(a.stride)
	trans, classes := a.trans16, &a.classes
	for i := 0; i < len(text); i++ {
		x := trans[s*stride+uint32(classes[text[i]])]
		s = uint32(x &^ acMatch16)
		if x&acMatch16 != 0 {
			for _, id := range a.out[a.outStart[s]:a.outStart[s+1]] {
				st.hitLiteral(id)
			}
		}
	}
}
