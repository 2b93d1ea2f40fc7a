package engine

// acAutomaton is an Aho-Corasick DFA over folded literals. ruledex keeps its own rather
// than using github.com/coregx/ahocorasick because the prefilter needs every
// overlapping occurrence delivered without allocating, and that library's
// FindAllOverlapping builds a new slice per call.
type acAutomaton struct {
	classes  [256]uint8
	stride   int
	trans    []uint32 // state*stride + class -> next state
	outStart []uint32 // state -> range in out
	out      []int32  // pattern ids reported at each state (own and inherited)
}

type acBuildNode struct {
	next map[byte]int32
	fail int32
	pats []int32
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
	nodes := []acBuildNode{{next: map[byte]int32{}}}
	for pi, p := range pats {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := a.classes[p[i]]
			nx, ok := nodes[s].next[c]
			if !ok {
				nx = int32(len(nodes))
				nodes = append(nodes, acBuildNode{next: map[byte]int32{}})
				nodes[s].next[c] = nx
			}
			s = nx
		}
		nodes[s].pats = append(nodes[s].pats, ids[pi])
	}
	a.trans = make([]uint32, len(nodes)*a.stride)
	// Breadth-first: a node's failure target is complete before the node itself.
	queue := make([]int32, 0, len(nodes))
	for c := 0; c < a.stride; c++ {
		if nx, ok := nodes[0].next[byte(c)]; ok {
			nodes[nx].fail = 0
			a.trans[c] = uint32(nx)
			queue = append(queue, nx)
		}
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		f := nodes[s].fail
		nodes[s].pats = append(nodes[s].pats, nodes[f].pats...)
		for c := 0; c < a.stride; c++ {
			if nx, ok := nodes[s].next[byte(c)]; ok {
				nodes[nx].fail = int32(a.trans[int(f)*a.stride+c])
				a.trans[int(s)*a.stride+c] = uint32(nx)
				queue = append(queue, nx)
			} else {
				a.trans[int(s)*a.stride+c] = a.trans[int(f)*a.stride+c]
			}
		}
	}
	a.outStart = make([]uint32, len(nodes)+1)
	for i := range nodes {
		a.outStart[i] = uint32(len(a.out))
		a.out = append(a.out, dedupIDs(nodes[i].pats)...)
	}
	a.outStart[len(nodes)] = uint32(len(a.out))
	return a
}

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

// scan reports every pattern occurring in text to hit.
func (a *acAutomaton) scan(text string, st *state) {
	s := uint32(0)
	stride := uint32(a.stride)
	for i := 0; i < len(text); i++ {
		s = a.trans[s*stride+uint32(a.classes[text[i]])]
		if lo, hi := a.outStart[s], a.outStart[s+1]; lo != hi {
			for _, id := range a.out[lo:hi] {
				st.hitLiteral(id)
			}
		}
	}
}
