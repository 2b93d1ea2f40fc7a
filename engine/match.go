package engine

import (
	"slices"
	"strings"

	"github.com/ruledex/ruledex/event"
)

// state is the per-goroutine scratch space of Match. Per-slot and per-variant marks
// carry the event's generation number, so nothing is cleared between events.
type state struct {
	m   *Matcher
	ev  *event.Event
	gen uint32

	slotGen []uint32 // slot present in this event when == gen
	slotIdx []int32  // first event field holding the slot
	dupGen  []uint32 // slot occurs more than once when == gen
	fslot   []int32  // event field index -> slot (-1 none)

	lowGen []uint32 // folded value of field i computed when == gen
	low    []string
	buf    []byte
	name   []byte
	name2  []byte

	b        *bucket  // the event's bucket
	litGen   []uint32 // bucket-local literal already hit when == gen
	posName  [][]byte // name last seen at each field position, and its slot (slotAt)
	posSlot  []int32
	lastB    *bucket // bucket of the previous event, for lastCh and lastKey (ch unset)
	lastCh   []byte
	lastKey  bucketKey
	candGen  []uint32 // variant already in cand when == gen
	candSeq  []uint32 // litSeq of the literal that made the variant a candidate
	candRest []int32  // the candidate's litUse.rest
	litSeq   []uint32 // order in which the event's literals were first found
	seq      uint32
	candKey  []uint64 // scratch: candidates by the order their last set was hit
	cand     []int32
	fieldIdx []int32 // scratch for matchedFields
	// matchedFields carves its results from these chunks, which are never written
	// again once carved: a Match may be kept after the next one (hunt's correlations,
	// the stream's windows), and one allocation serves a few hundred matches.
	fieldChunk []event.Field
	byteChunk  []byte
	// transient (MatchInto): matched fields are the event's own strings, their lists
	// carved from the caller's tfields.
	transient bool
	tfields   []event.Field
	ruleGen   []uint32 // rule already reported when == gen
	// predGen and predRes keep what eval found for each predicate (by cpred.id), for
	// matchedFields, which reports the positive predicates that hold.
	predGen []uint32
	predRes []bool
}

func newState(m *Matcher) any {
	return &state{
		m:        m,
		slotGen:  make([]uint32, m.nslots),
		slotIdx:  make([]int32, m.nslots),
		dupGen:   make([]uint32, m.nslots),
		candGen:  make([]uint32, len(m.variants)),
		candSeq:  make([]uint32, len(m.variants)),
		candRest: make([]int32, len(m.variants)),
		ruleGen:  make([]uint32, len(m.rules)),
		predGen:  make([]uint32, m.npreds),
		predRes:  make([]bool, m.npreds),
	}
}

func (st *state) begin(ev *event.Event) {
	st.gen++
	if st.gen == 0 { // wrapped: old marks could collide, clear them once
		clear(st.slotGen)
		clear(st.dupGen)
		clear(st.candGen)
		clear(st.ruleGen)
		clear(st.lowGen)
		clear(st.litGen)
		clear(st.predGen)
		st.gen = 1
	}
	st.ev = ev
	st.buf = st.buf[:0]
	st.cand = st.cand[:0]
	n := len(ev.Fields)
	if cap(st.fslot) < n {
		st.fslot = make([]int32, n, n*2)
		st.lowGen = make([]uint32, n, n*2)
		st.low = make([]string, n, n*2)
	}
	st.fslot = st.fslot[:n]
	st.lowGen = st.lowGen[:n]
	st.low = st.low[:n]
}

// lookup finds the slot of an event field name: as written, else case-insensitively
// and without spaces, because Windows writes some EventData names with spaces that
// Sigma rules write without (Defender's "Threat Name" is ThreatName).
func (st *state) lookup(name string) int32 {
	if s, ok := st.m.names.get(name); ok {
		return s
	}
	if !needsFold(name) && strings.IndexByte(name, ' ') < 0 {
		return -1
	}
	st.name = st.name[:0]
	for i := 0; i < len(name); i++ {
		if name[i] != ' ' {
			st.name = append(st.name, name[i])
		}
	}
	key := st.name
	if needsFold(bstr(st.name)) {
		st.name2 = foldAppend(st.name2[:0], bstr(st.name))
		key = st.name2
	}
	if s, ok := st.m.names.get(bstr(key)); ok {
		return s
	}
	return -1
}

// slotAt resolves the name of event field i. Events of one kind list their fields in
// one order, and logs repeat kinds: the name last seen at position i (a copy: the
// reader reuses its strings) usually answers with one comparison.
func (st *state) slotAt(i int, name string) int32 {
	if i < len(st.posName) && bstr(st.posName[i]) == name {
		return st.posSlot[i]
	}
	s := st.lookup(name)
	for len(st.posName) <= i {
		st.posName = append(st.posName, make([]byte, 0, 32))
		st.posSlot = append(st.posSlot, -1)
	}
	st.posName[i] = append(st.posName[i][:0], name...)
	st.posSlot[i] = s
	return s
}

// lowAt returns the folded value of event field i.
func (st *state) lowAt(i int) string {
	if st.lowGen[i] == st.gen {
		return st.low[i]
	}
	v := st.ev.Fields[i].Value
	s := v
	// Many values need no folding (numbers, GUIDs, lower-case names): keep them as they
	// are; else copy the prefix that needs none and fold from the first byte that does.
	if j := firstToFold(v); j < len(v) {
		start := len(st.buf)
		st.buf = append(st.buf, v[:j]...)
		st.buf = foldAppend(st.buf, v[j:])
		s = bstr(st.buf[start:])
	}
	st.low[i] = s
	st.lowGen[i] = st.gen
	return s
}

func (st *state) hitLiteral(id int32) {
	// A literal found again (every "\\" of a path) has nothing more to tell: its uses,
	// hundreds for "\\powershell.exe", were all marked the first time.
	if st.litGen[id] == st.gen {
		return
	}
	st.litGen[id] = st.gen
	st.seq++
	st.litSeq[id] = st.seq
	for _, u := range st.b.uses[id] {
		if st.candGen[u.v] != st.gen {
			st.candGen[u.v] = st.gen
			st.candSeq[u.v] = st.seq
			st.candRest[u.v] = u.rest
			st.cand = append(st.cand, u.v)
		}
	}
}

// Match appends to out the rules that match ev and returns it. It does not keep ev.
func (m *Matcher) Match(ev *event.Event, out []Match) []Match {
	st := m.pool.Get().(*state)
	out = st.match(ev, out)
	st.ev = nil
	m.pool.Put(st)
	return out
}

// MatchInto is Match for a caller that is done with the matches before ev changes
// (hunt encodes each record at once): the matches' Fields are ev's own strings, valid
// only as long as ev's are, and their lists are carved from fields, which is returned
// for the next call (reset it to fields[:0] once the matches are used). Copying the
// fields out, as Match does for callers that keep matches, cost a hunt 7% of its CPU.
func (m *Matcher) MatchInto(ev *event.Event, out []Match, fields []event.Field) ([]Match, []event.Field) {
	st := m.pool.Get().(*state)
	st.transient, st.tfields = true, fields
	out = st.match(ev, out)
	fields = st.tfields
	st.ev, st.transient, st.tfields = nil, false, nil
	m.pool.Put(st)
	return out, fields
}

func (st *state) match(ev *event.Event, out []Match) []Match {
	m := st.m
	st.begin(ev)
	for i := range ev.Fields {
		s := st.slotAt(i, ev.Fields[i].Name)
		st.fslot[i] = s
		if s < 0 {
			continue
		}
		if st.slotGen[s] != st.gen {
			st.slotGen[s] = st.gen
			st.slotIdx[s] = int32(i)
		} else {
			st.dupGen[s] = st.gen
		}
	}
	var ch string
	var eid int
	chSlot, eidSlot := m.chanSlot, m.eidSlot
	if st.slotGen[m.sysChanSlot] == st.gen {
		chSlot = m.sysChanSlot
	}
	if st.slotGen[m.sysEidSlot] == st.gen {
		eidSlot = m.sysEidSlot
	}
	chKnown := st.slotGen[chSlot] == st.gen
	if chKnown {
		ch = ev.Fields[st.slotIdx[chSlot]].Value
	}
	eidKnown := false
	if st.slotGen[eidSlot] == st.gen {
		eid, eidKnown = atoi(ev.Fields[st.slotIdx[eidSlot]].Value)
	}
	// The guard of a variant (eidGuard) is its own EventID test decided in advance; that
	// holds when routing read the field the test reads, and that field occurs once.
	eidExact := eidSlot == m.eidSlot && st.dupGen[eidSlot] != st.gen
	var b *bucket
	// Consecutive events are mostly of one kind: the last bucket, by its key, saves
	// hashing the channel name into the bucket map.
	if st.lastB != nil && bstr(st.lastCh) == ch && st.lastKey == (bucketKey{eid: eid, chKnown: chKnown, eidKnown: eidKnown, eidExact: eidExact && eidKnown}) {
		b = st.lastB
	} else {
		b = m.bucket(ch, chKnown, eid, eidKnown, eidExact)
		st.lastB, st.lastCh = b, append(st.lastCh[:0], ch...)
		st.lastKey = bucketKey{eid: eid, chKnown: chKnown, eidKnown: eidKnown, eidExact: eidExact && eidKnown}
	}
	st.b = b
	if len(st.litGen) < len(b.uses) {
		st.litGen = make([]uint32, len(b.uses))
		st.litSeq = make([]uint32, len(b.uses))
	}
	st.seq = 0
	// Prefilter: scan each field once, with its slot's literals and the keywords'.
	for i := range ev.Fields {
		ls := b.allLits
		if s := st.fslot[i]; s >= 0 && int(s) < len(b.slotLits) && b.slotLits[s] != nil {
			ls = b.slotLits[s]
		}
		if ls != nil {
			ls.scanField(st, i)
		}
	}
	for _, vi := range b.always {
		out = st.try(vi, out)
	}
	// Candidates are tried in the order their last required set was hit, then by
	// variant: the order in which a literal completing several variants found them.
	keys := st.candKey[:0]
	for _, vi := range st.cand {
		done := st.candSeq[vi]
		if r := st.candRest[vi]; r >= 0 {
			var ok bool
			if done, ok = st.completed(b.rest[r], done); !ok {
				continue
			}
		}
		keys = append(keys, uint64(done)<<32|uint64(uint32(vi)))
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = st.try(int32(uint32(k)), out)
	}
	st.candKey = keys
	return out
}

// completed reports whether some literal of each set (bucket-local ids) was found, and
// when the last of the sets was first hit (at the latest done, the first set's hit).
func (st *state) completed(sets [][]int32, done uint32) (uint32, bool) {
	for _, set := range sets {
		first := ^uint32(0)
		for _, id := range set {
			if st.litGen[id] == st.gen && st.litSeq[id] < first {
				first = st.litSeq[id]
			}
		}
		if first == ^uint32(0) {
			return 0, false
		}
		done = max(done, first)
	}
	return done, true
}

func (st *state) try(vi int32, out []Match) []Match {
	v := st.m.variants[vi]
	if st.ruleGen[v.rule] == st.gen || !st.eval(v.root) {
		return out
	}
	st.ruleGen[v.rule] = st.gen
	return append(out, Match{Rule: st.m.rules[v.rule], RuleIndex: int(v.rule), Fields: st.matchedFields(v), Via: v.via})
}

// matchedFields copies the fields of the variant's positive predicates that hold (the
// reader reuses the event's strings), into memory carved from the state's chunks.
func (st *state) matchedFields(v *variant) []event.Field {
	idx := st.fieldIdx[:0]
	has := func(i int32) bool {
		for _, x := range idx {
			if x == i {
				return true
			}
		}
		return false
	}
	for _, p := range v.preds {
		if p.field == slotAll {
			for i := range st.ev.Fields {
				if !has(int32(i)) && p.evalValue(st.ev.Fields[i].Value, st.lowAt(i)) {
					idx = append(idx, int32(i))
				}
			}
			continue
		}
		slot := p.field
		if st.slotGen[slot] != st.gen && p.alt >= 0 {
			slot = p.alt
		}
		if st.slotGen[slot] != st.gen {
			continue
		}
		i := st.slotIdx[slot]
		if has(i) {
			continue
		}
		holds := st.predRes[p.id]
		if st.predGen[p.id] != st.gen {
			// eval stopped before this predicate (an OR that held earlier).
			holds = st.evalPred(p)
		}
		if holds {
			idx = append(idx, i)
		}
	}
	st.fieldIdx = idx
	if len(idx) == 0 {
		return nil
	}
	if st.transient {
		from := len(st.tfields)
		for _, i := range idx {
			st.tfields = append(st.tfields, st.ev.Fields[i])
		}
		return st.tfields[from:len(st.tfields):len(st.tfields)]
	}
	n := 0
	for _, i := range idx {
		f := &st.ev.Fields[i]
		n += len(f.Name) + len(f.Value)
	}
	if cap(st.byteChunk)-len(st.byteChunk) < n {
		st.byteChunk = make([]byte, 0, max(n, matchChunkBytes))
	}
	arena := st.byteChunk[len(st.byteChunk) : len(st.byteChunk) : len(st.byteChunk)+n]
	st.byteChunk = st.byteChunk[:len(st.byteChunk)+n]
	if cap(st.fieldChunk)-len(st.fieldChunk) < len(idx) {
		st.fieldChunk = make([]event.Field, 0, max(len(idx), matchChunkFields))
	}
	out := st.fieldChunk[len(st.fieldChunk) : len(st.fieldChunk)+len(idx) : len(st.fieldChunk)+len(idx)]
	st.fieldChunk = st.fieldChunk[:len(st.fieldChunk)+len(idx)]
	for k, i := range idx {
		f := &st.ev.Fields[i]
		start := len(arena)
		arena = append(arena, f.Name...)
		mid := len(arena)
		arena = append(arena, f.Value...)
		out[k] = event.Field{Name: bstr(arena[start:mid]), Value: bstr(arena[mid:])}
	}
	return out
}

// Chunk sizes for matchedFields: a SigmaHQ match copies two or three fields of about
// a hundred bytes.
const (
	matchChunkBytes  = 16 << 10
	matchChunkFields = 256
)

func (v *variant) accepts(ch string, chKnown bool, eid int, eidKnown bool) bool {
	if chKnown && len(v.chans) > 0 {
		ok := false
		for _, c := range v.chans {
			if strings.EqualFold(c, ch) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if eidKnown && len(v.eids) > 0 {
		for _, e := range v.eids {
			if e == eid {
				return true
			}
		}
		return false
	}
	return true
}

func atoi(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func (st *state) eval(n *cnode) bool {
	switch n.op {
	case opPred:
		r := st.evalPred(n.p)
		st.predGen[n.p.id], st.predRes[n.p.id] = st.gen, r
		return r
	case opAnd:
		for _, k := range n.kids {
			if !st.eval(k) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if st.eval(k) {
				return true
			}
		}
		return false
	case opNot:
		return !st.eval(n.kids[0])
	case opTrue:
		return true
	}
	return false
}

// value returns the first value of a slot and its event field index.
func (st *state) value(slot int32) (string, int, bool) {
	if slot < 0 || st.slotGen[slot] != st.gen {
		return "", -1, false
	}
	i := int(st.slotIdx[slot])
	return st.ev.Fields[i].Value, i, true
}

func (st *state) evalPred(p *cpred) bool {
	if p.field == slotAll {
		return st.evalKeyword(p)
	}
	slot, nameOnly := p.field, p.nameOnly
	present := st.slotGen[slot] == st.gen
	if !present && p.alt >= 0 && st.slotGen[p.alt] == st.gen {
		// The event names the field as the rule does (Defender-style JSON).
		slot, nameOnly, present = p.alt, false, true
	}
	switch {
	case p.exists:
		if p.null {
			if !present {
				return true
			}
			v, _, _ := st.value(slot)
			return v == ""
		}
		return present
	case p.ref >= 0:
		a, _, ok1 := st.value(slot)
		b, _, ok2 := st.value(p.ref)
		if !ok1 || !ok2 {
			return false
		}
		if !p.refCase {
			// Fold both into the scratch buffer; field values are short.
			start := len(st.buf)
			st.buf = foldAppend(st.buf, a)
			mid := len(st.buf)
			st.buf = foldAppend(st.buf, b)
			a, b = bstr(st.buf[start:mid]), bstr(st.buf[mid:])
		}
		switch p.refPos {
		case tContains:
			return strings.Contains(a, b)
		case tPrefix:
			return strings.HasPrefix(a, b)
		case tSuffix:
			return strings.HasSuffix(a, b)
		}
		return a == b
	}
	test := func(i int) bool {
		orig, low := st.ev.Fields[i].Value, st.lowAt(i)
		if nameOnly {
			orig, low = baseName(orig), baseName(low)
		}
		return p.evalValue(orig, low)
	}
	var r bool
	switch {
	case !present && p.argsFrom != nil:
		r = st.evalArgs(p)
	case p.elem && p.all:
		// Every element must pass; an absent array has none to pass.
		r = present
		for i := range st.ev.Fields {
			if st.fslot[i] == slot && !test(i) {
				r = false
				break
			}
		}
	case !present:
		r = p.matchAbsent()
	case st.dupGen[slot] != st.gen:
		r = test(int(st.slotIdx[slot]))
	default:
		for i := range st.ev.Fields {
			if st.fslot[i] == slot && test(i) {
				r = true
				break
			}
		}
	}
	if p.neg {
		return !r
	}
	return r
}

// evalArgs tests process.args on an event without it: the arguments of the first
// command line the event has. Splitting allocates; such predicates are rare and run
// only on prefiltered candidates.
func (st *state) evalArgs(p *cpred) bool {
	for _, slot := range p.argsFrom {
		v, _, ok := st.value(slot)
		if !ok {
			continue
		}
		args := splitArgs(v)
		if len(args) == 0 {
			return p.all
		}
		for _, a := range args {
			ok := p.evalValue(a, fold(a))
			if ok && !p.all {
				return true
			}
			if !ok && p.all {
				return false
			}
		}
		return p.all
	}
	return p.matchAbsent()
}

// matchAbsent: only null values accept a missing field.
func (p *cpred) matchAbsent() bool {
	if !p.hasNull {
		return false
	}
	for _, g := range p.groups {
		has := false
		for i := range g {
			if g[i].kind == tNull {
				has = true
				break
			}
		}
		if has && !p.all {
			return true
		}
		if !has && p.all {
			return false
		}
	}
	return p.all
}

// evalValue tests one field value against the values (OR, or AND with all).
func (p *cpred) evalValue(orig, low string) bool {
	if !p.all {
		for i := range p.flat {
			if p.flat[i].test(orig, low) {
				return true
			}
		}
		return false
	}
	for gi := range p.groups {
		g := p.groups[gi]
		ok := false
		for i := range g {
			if g[i].test(orig, low) {
				ok = true
				break
			}
		}
		if ok && !p.all {
			return true
		}
		if !ok && p.all {
			return false
		}
	}
	return p.all
}

// evalKeyword: each value (all of them with |all) must occur in some field value.
func (st *state) evalKeyword(p *cpred) bool {
	for gi := range p.groups {
		g := p.groups[gi]
		found := false
		for fi := range st.ev.Fields {
			orig, low := st.ev.Fields[fi].Value, st.lowAt(fi)
			for i := range g {
				if g[i].test(orig, low) {
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if found && !p.all {
			return true
		}
		if !found && p.all {
			return false
		}
	}
	return p.all
}
