package engine

import (
	"math/bits"
	"slices"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// bucket is what one kind of event (channel and event ID) needs: the unconstrained
// variants its routes accept, and, per field, the literal set (litSet) of only the
// constrained variants they accept. Smaller sets stay in cache, and literal hits never
// wake rules of other log sources.
type bucket struct {
	always   []int32
	slotLits []*litSet
	allLits  *litSet
	// uses: bucket-local literal id -> the variants whose first required set holds it.
	// A hit makes them candidates; their other sets (rest, by local ids) are checked
	// once the event is scanned. The first set is the most selective (pickSets), so the
	// literals every event has ("\\powershell.exe" for hundreds of rules that also need
	// a command line) mostly wake no variant.
	uses [][]litUse
	rest [][][]int32 // by litUse.rest: a slice, where a map by variant cost a hash per candidate
}

type bucketKey struct {
	ch       string
	eid      int
	chKnown  bool
	eidKnown bool
	// eidExact: eid is the value of the one EventID field rules test (not the header's
	// when a data field took the name, not one of several), so eidGuard applies.
	eidExact bool
}

// maxBuckets bounds the cache against events with arbitrary channel names.
const maxBuckets = 4096

// bucket returns the bucket of an event, building it on first use. Buckets whose
// routes accept the same variants share one (every Security event ID but the few with
// native-audit alternates, for instance).
func (m *Matcher) bucket(ch string, chKnown bool, eid int, eidKnown, eidExact bool) *bucket {
	k := bucketKey{ch: ch, eid: eid, chKnown: chKnown, eidKnown: eidKnown, eidExact: eidExact && eidKnown}
	// Readers only load a pointer: a read lock's shared counter would bounce between
	// cores on every event.
	if cur := m.buckets.Load(); cur != nil {
		if b, ok := (*cur)[k]; ok {
			return b
		}
	}
	var accepted []int32
	var sig []byte
	for vi, v := range m.variants {
		// The reference path (bruteForce) ignores guards, so the differential tests check them.
		guarded := k.eidExact && v.guard != nil && !m.bruteForce
		if v.accepts(ch, chKnown, eid, eidKnown) && (!guarded || slices.Contains(v.guard, eid)) {
			accepted = append(accepted, int32(vi))
			sig = appendInt(sig, vi)
			sig = append(sig, ',')
		}
	}
	b := m.bucketBySignature(string(sig), accepted)
	m.bucketMu.Lock()
	defer m.bucketMu.Unlock()
	cur := m.buckets.Load()
	if cur != nil {
		if b, ok := (*cur)[k]; ok {
			return b
		}
	}
	if cur == nil || len(*cur) < maxBuckets {
		// Copy on write: the map a reader holds never changes.
		next := make(map[bucketKey]*bucket, 1+lenMap(cur))
		if cur != nil {
			for kk, vv := range *cur {
				next[kk] = vv
			}
		}
		k.ch = strings.Clone(ch)
		next[k] = b
		m.buckets.Store(&next)
	}
	return b
}

// pendingBucket is a bucket being built; done is closed once b is set.
type pendingBucket struct {
	done chan struct{}
	b    *bucket
}

// bucketBySignature returns the bucket of the accepted variants, building it once.
// It is built outside bucketMu: building process_creation's bucket takes tens of
// milliseconds, during which the other workers' first events of other kinds would
// otherwise wait (a hunt's cores sat half idle for a tenth of a second after start).
// Only the workers that need the same bucket wait for it.
func (m *Matcher) bucketBySignature(sig string, accepted []int32) *bucket {
	m.bucketMu.Lock()
	if b, ok := m.bySignature[sig]; ok {
		m.bucketMu.Unlock()
		return b
	}
	if p, ok := m.building[sig]; ok {
		m.bucketMu.Unlock()
		<-p.done
		return p.b
	}
	p := &pendingBucket{done: make(chan struct{})}
	m.building[sig] = p
	m.bucketMu.Unlock()

	p.b = m.buildBucket(accepted)
	m.bucketMu.Lock()
	delete(m.building, sig)
	if len(m.bySignature) < maxBuckets {
		m.bySignature[sig] = p.b
	}
	m.bucketMu.Unlock()
	close(p.done)
	return p.b
}

func lenMap(p *map[bucketKey]*bucket) int {
	if p == nil {
		return 0
	}
	return len(*p)
}

func (m *Matcher) buildBucket(accepted []int32) *bucket {
	b := &bucket{always: []int32{}}
	local := map[int32]int32{}
	bySlot := map[int32][]int32{}
	restOf := map[int32]int32{} // variant -> its index in b.rest
	for _, vi := range accepted {
		lits := m.varLits[vi]
		if len(lits) == 0 {
			b.always = append(b.always, vi)
			continue
		}
		for _, vl := range lits {
			id, ok := local[vl.lit]
			if !ok {
				id = int32(len(b.uses))
				local[vl.lit] = id
				b.uses = append(b.uses, nil)
				slot := m.litKeys[vl.lit].slot
				bySlot[slot] = append(bySlot[slot], vl.lit)
			}
			if vl.bit == 1 {
				b.uses[id] = append(b.uses[id], litUse{v: vi})
				continue
			}
			r, ok := restOf[vi]
			if !ok {
				r = int32(len(b.rest))
				restOf[vi] = r
				b.rest = append(b.rest, nil)
			}
			sets := b.rest[r]
			k := bits.TrailingZeros8(vl.bit) - 1 // index among the other sets
			for len(sets) <= k {
				sets = append(sets, nil)
			}
			sets[k] = append(sets[k], id)
			b.rest[r] = sets
		}
	}
	for _, us := range b.uses {
		for i := range us {
			us[i].rest = -1
			if r, ok := restOf[us[i].v]; ok {
				us[i].rest = r
			}
		}
	}
	b.slotLits = make([]*litSet, m.nslots)
	kw := bySlot[slotAll]
	for slot, lits := range bySlot {
		if slot != slotAll {
			// A field with literals of its own is scanned once, for the keywords' too.
			lits = append(lits[:len(lits):len(lits)], kw...)
		}
		pats := make([]string, len(lits))
		ids := make([]int32, len(lits))
		for i, l := range lits {
			pats[i] = m.litKeys[l].s
			ids[i] = local[l]
		}
		// Computed on first use: only buckets with large literal sets need it.
		m.winFreqOnce.Do(func() { m.winFreq = windowFreq(m.litKeys) })
		a := newLitSet(pats, ids, m.winFreq)
		if slot == slotAll {
			b.allLits = a
		} else {
			b.slotLits[slot] = a
		}
	}
	return b
}

// eidGuard returns the event IDs a variant can match when its condition requires a
// positive EventID equality (`EventID: 4728` or a list, as most Security rules write it):
// such rules have no literal for the prefilter and would otherwise run on every event
// of the channel. Only a test that an event ID alone decides qualifies: numbers written
// unquoted (then "04728" and " 4728" equal 4728 as they do for the test), no modifier,
// on the EventID field itself. nil when there is none.
func eidGuard(n *cnode, eidSlot int32) []int {
	switch n.op {
	case opAnd:
		for _, k := range n.kids {
			if g := eidGuard(k, eidSlot); g != nil {
				return g
			}
		}
	case opPred:
		p := n.p
		if p.field != eidSlot || p.alt >= 0 || p.nameOnly || p.neg || p.all || p.exists ||
			p.ref >= 0 || p.elem || p.argsFrom != nil || p.hasNull ||
			(p.kind != rule.Eq && p.kind != rule.In) || len(p.src.Transforms) > 0 {
			return nil
		}
		var ids []int
		for _, g := range p.groups {
			num := -1
			for i := range g {
				if g[i].kind == tNumEq && g[i].num >= 0 && g[i].num == float64(int(g[i].num)) {
					num = int(g[i].num)
				}
			}
			if num < 0 {
				return nil
			}
			for i := range g {
				switch g[i].kind {
				case tNumEq:
				case tEq:
					// The string form must say the same number, else it could match an ID
					// the number does not.
					if n, ok := atoi(g[i].s); !ok || n != num {
						return nil
					}
				default:
					return nil
				}
			}
			ids = append(ids, num)
		}
		return ids
	}
	return nil
}
