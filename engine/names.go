package engine

// nameTab maps event field names to slots: every name the rules use, as written and
// folded. It replaces a Go map on the path every field of every event takes (30 or
// more per Windows event): the hash reads at most two 8-byte words, the table is
// immutable after Compile and sparse, so a name no rule uses (most of an event's
// fields) ends on an empty entry after one or two probes.
type nameTab struct {
	ents []nameEnt
	mask uint64
}

type nameEnt struct {
	name string
	slot int32 // -1: empty
}

func newNameTab(slots map[string]int32) *nameTab {
	size := 16
	for size < 4*len(slots) {
		size *= 2
	}
	t := &nameTab{ents: make([]nameEnt, size), mask: uint64(size - 1)}
	for i := range t.ents {
		t.ents[i].slot = -1
	}
	for name, s := range slots {
		i := nameHash(name) & t.mask
		for t.ents[i].slot >= 0 {
			i = (i + 1) & t.mask
		}
		t.ents[i] = nameEnt{name: name, slot: s}
	}
	return t
}

func (t *nameTab) get(name string) (int32, bool) {
	i := nameHash(name) & t.mask
	for {
		e := &t.ents[i]
		if e.slot < 0 {
			return -1, false
		}
		if e.name == name {
			return e.slot, true
		}
		i = (i + 1) & t.mask
	}
}

// nameHash mixes the length with the first and last (up to) 8 bytes: field names that
// share both ends and length are rare, and a collision only costs a comparison.
func nameHash(s string) uint64 {
	n := len(s)
	var a, b uint64
	switch {
	case n >= 8:
		a, b = load64(s, 0), load64(s, n-8)
	case n >= 4:
		a, b = uint64(load32(s, 0)), uint64(load32(s, n-4))
	case n > 0:
		a = uint64(s[0]) | uint64(s[n>>1])<<8 | uint64(s[n-1])<<16
	}
	h := a*0x9E3779B97F4A7C15 ^ b*0xC2B2AE3D27D4EB4F ^ uint64(n)
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	return h ^ h>>32
}

func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func load32(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
