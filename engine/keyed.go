package engine

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/rule"
)

// Keyed runs a Correlator's correlations and aggregations with their state split by
// key, for streams spread over processes: a matched base event becomes one Input per
// correlation it feeds (Keyed.Inputs), keyed by the correlation and its group-by
// values, so that every input of a key can be sent to one place; there a Shard keeps
// the state of its keys, which encodes to bytes and restores (a changelog).
//
// Event time drives the windows. Inputs may arrive out of order: a Shard holds each
// key's inputs until the stream time (the largest event time it has seen) is grace
// past them, then applies them in time order, so any arrival order within grace gives
// what the Correlator gives on time-sorted input. An input older than that is late:
// counted and returned as Late, never applied.
type Keyed struct {
	c     *Correlator
	ids   map[*aggregate]string
	byID  map[string]*aggregate
	order map[*aggregate]int
	grace time.Duration
}

// Keyed prepares keyed evaluation of c's correlations, holding inputs up to grace
// behind the stream time. The Correlator itself is not changed or used for state.
func (c *Correlator) Keyed(grace time.Duration) *Keyed {
	k := &Keyed{c: c, ids: map[*aggregate]string{}, byID: map[string]*aggregate{}, order: map[*aggregate]int{}, grace: max(grace, 0)}
	for i, a := range c.aggs {
		// The id travels between processes that loaded the same rules: the rule's
		// own id, never a pointer or a load-order number unless two rules share it.
		kind := "c:"
		if a.rule.Correlation == nil {
			kind = "a:"
		}
		id := kind + ruleRef(a.rule)
		if _, dup := k.byID[id]; dup {
			for n := 2; ; n++ {
				if _, dup := k.byID[id+"#"+strconv.Itoa(n)]; !dup {
					id += "#" + strconv.Itoa(n)
					break
				}
			}
		}
		k.ids[a], k.byID[id], k.order[a] = id, a, i
	}
	return k
}

func ruleRef(r *rule.Rule) string {
	switch {
	case r.ID != "":
		return r.ID
	case r.Name != "":
		return r.Name
	}
	return r.Source.Path + "#" + r.Title
}

// Rule returns the rule of a correlation id (Input.Agg, KeyedAlert.Agg), or nil.
func (k *Keyed) Rule(id string) *rule.Rule {
	if a := k.byID[id]; a != nil {
		return a.rule
	}
	return nil
}

// Grace is how far behind the stream time an input may arrive and still be placed.
func (k *Keyed) Grace() time.Duration { return k.grace }

// Input is one base event's contribution to one correlation key: what the state needs
// of the event (time, rule position, value), not the event.
type Input struct {
	V      int      `json:"v"`
	Agg    string   `json:"a"`           // correlation id (Keyed's, from the rule id)
	Group  []string `json:"g,omitempty"` // group-by values, in the rule's group-by order
	Index  int      `json:"i,omitempty"` // position of the base rule in the correlation's rules
	Time   int64    `json:"t,omitempty"` // event time, Unix nanoseconds
	NoTime bool     `json:"n,omitempty"` // the event has no time: it takes the stream time where it is applied
	Value  string   `json:"x,omitempty"` // the value field (value_count, value_sum...)
	// Src and Off say where the event was read (a topic partition and an offset), Sub
	// which of its inputs this is: a Shard drops an input it has already taken (a
	// producer that retried, a partition read again after a crash). A key's inputs of
	// one Src must come in offset order, as a partition's records do: an input behind
	// the last one taken from its Src counts as taken.
	Src string `json:"s,omitempty"`
	Off int64  `json:"o,omitempty"`
	Sub int    `json:"u,omitempty"`
}

const inputVersion = 1

// Key is the state key: the correlation id and the group-by values.
func (in *Input) Key() string {
	var b strings.Builder
	b.WriteString(in.Agg)
	for _, g := range in.Group {
		b.WriteByte(0)
		b.WriteString(g)
	}
	return b.String()
}

// id names the event in alert keys; empty when the input does not say where it was read.
func (in *Input) id() string {
	if in.Src == "" {
		return ""
	}
	return in.Src + "@" + strconv.FormatInt(in.Off, 10) + "." + strconv.Itoa(in.Sub)
}

// Encode returns the input as versioned JSON.
func (in *Input) Encode() []byte {
	in.V = inputVersion
	b, _ := json.Marshal(in) // strings and numbers only: cannot fail
	return b
}

// DecodeInput reads what Encode wrote.
func DecodeInput(b []byte) (Input, error) {
	var in Input
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("correlation input: %w", err)
	}
	if in.V != inputVersion {
		return in, fmt.Errorf("correlation input: version %d, this ruledex reads %d", in.V, inputVersion)
	}
	if in.Agg == "" {
		return in, errors.New("correlation input: no correlation id")
	}
	return in, nil
}

// Inputs appends the inputs of one event and its matches (the matches of rules that
// feed no correlation give none). src and off say where the event was read (empty
// src: nowhere in particular, no duplicate detection).
func (k *Keyed) Inputs(ev *event.Event, ms []Match, src string, off int64, out []Input) []Input {
	t, hasTime := EventTime(ev)
	sub := 0
	for _, m := range ms {
		for _, f := range k.c.byRule[m.Rule] {
			a := f.agg
			in := Input{V: inputVersion, Agg: k.ids[a], Index: f.index, Src: src, Off: off, Sub: sub}
			sub++
			if hasTime {
				in.Time = nanos(t)
			} else {
				in.NoTime = true
			}
			for _, g := range a.groupBy {
				field := g
				if am, ok := a.aliases[g]; ok {
					if fa, ok := am[m.Rule]; ok {
						field = fa
					}
				}
				v, _ := getFold(ev, field)
				in.Group = append(in.Group, strings.Clone(v))
			}
			if a.field != "" {
				v, _ := getFold(ev, a.field)
				in.Value = strings.Clone(v)
			}
			out = append(out, in)
		}
	}
	return out
}

// Outcome says what Shard.Add did with an input.
type Outcome int

const (
	// Held: the input waits for the stream time to pass it by grace (Release).
	Held Outcome = iota
	// Late: older than the stream time minus grace, or than an input of its key
	// already applied: counted in Shard.Late, not applied.
	Late
	// Duplicate: the key already took this input (same Src, Off and Sub or earlier).
	Duplicate
)

// KeyedAlert is an alert with the state key that raised it.
type KeyedAlert struct {
	Alert
	// Agg is the correlation id, StateKey the key whose state raised the alert.
	Agg, StateKey string
}

// Shard holds the state of the keys sent to one place (a partition of a repartition
// topic). Not safe for concurrent use.
type Shard struct {
	k       *Keyed
	states  map[string]*KeyState
	waiting map[string]bool
	// due orders the waiting keys by their earliest held input (entries go stale
	// when that changes; a fresh one is pushed then): Release touches only the keys
	// it applies something to.
	due   dueHeap
	dirty map[string]bool
	// Stream is the largest event time the shard has seen.
	Stream time.Time
	// Late counts inputs that came too late to be applied.
	Late int64
}

// KeyState is the state of one key: the open window, the inputs waiting for the
// stream time, and what detects duplicates.
type KeyState struct {
	agg      *aggregate
	aggID    string
	group    []string
	w        *window
	pending  []pend
	released time.Time // time of the last input applied to the window
	applied  bool
	seq      uint64
	seen     map[string]seenAt
	// Pos is the caller's position of the last input added (the repartition offset).
	Pos int64
	// Extra is the caller's own data, kept and encoded with the state.
	Extra json.RawMessage
}

type pend struct {
	t         time.Time
	idx       int
	value, id string
	seq       uint64
}

type seenAt struct {
	Off int64
	Sub int
}

// NewShard returns an empty shard.
func (k *Keyed) NewShard() *Shard {
	return &Shard{k: k, states: map[string]*KeyState{}, waiting: map[string]bool{}, dirty: map[string]bool{}}
}

// State returns the state of key, or nil.
func (s *Shard) State(key string) *KeyState { return s.states[key] }

// Keys returns the keys with state, sorted.
func (s *Shard) Keys() []string { return s.sortedKeys() }

// Len is the number of keys with state.
func (s *Shard) Len() int { return len(s.states) }

func (s *Shard) watermark() time.Time { return s.Stream.Add(-s.k.grace) }

// Add takes one input at the caller's position pos. An input of a correlation this
// process did not load is an error (the workers of a stream run different rules).
func (s *Shard) Add(in Input, pos int64) (Outcome, error) {
	a := s.k.byID[in.Agg]
	if a == nil {
		return 0, fmt.Errorf("correlation %q is not loaded here (do all workers run the same rules?)", in.Agg)
	}
	if len(in.Group) != len(a.groupBy) {
		return 0, fmt.Errorf("correlation %q: input has %d group-by values, the rule %d", in.Agg, len(in.Group), len(a.groupBy))
	}
	key := in.Key()
	st := s.states[key]
	if st == nil {
		st = &KeyState{agg: a, aggID: in.Agg, group: in.Group, Pos: -1}
		s.states[key] = st
	}
	s.dirty[key] = true
	st.Pos = pos
	if in.Src != "" {
		if last, ok := st.seen[in.Src]; ok && (in.Off < last.Off || in.Off == last.Off && in.Sub <= last.Sub) {
			return Duplicate, nil
		}
		if st.seen == nil {
			st.seen = map[string]seenAt{}
		}
		st.seen[in.Src] = seenAt{in.Off, in.Sub}
	}
	t := s.Stream
	if !in.NoTime {
		t = fromNanos(in.Time)
	}
	if t.After(s.Stream) {
		s.Stream = t
	}
	if t.Before(s.watermark()) || st.applied && t.Before(st.released) {
		s.Late++
		return Late, nil
	}
	st.seq++
	p := pend{t: t, idx: in.Index, value: in.Value, id: in.id(), seq: st.seq}
	// Mostly in order: insert from the end.
	i := len(st.pending)
	for i > 0 && p.t.Before(st.pending[i-1].t) {
		i--
	}
	st.pending = append(st.pending, pend{})
	copy(st.pending[i+1:], st.pending[i:])
	st.pending[i] = p
	s.waiting[key] = true
	if i == 0 {
		heap.Push(&s.due, dueAt{p.t, key})
	}
	return Held, nil
}

// Release applies, in time order, the held inputs the stream time has passed by
// grace, and returns the alerts they raise (ordered by key, then time).
func (s *Shard) Release(out []KeyedAlert) []KeyedAlert {
	return s.release(s.watermark(), false, out)
}

// ReleaseAll applies every held input, whatever the stream time: for a stream gone
// quiet, where waiting for grace would hold them until the next input. An input that
// comes afterwards older than one applied to its key is late.
func (s *Shard) ReleaseAll(out []KeyedAlert) []KeyedAlert {
	return s.release(time.Time{}, true, out)
}

func (s *Shard) release(wm time.Time, all bool, out []KeyedAlert) []KeyedAlert {
	var keys []string
	if all {
		keys = make([]string, 0, len(s.waiting))
		for k := range s.waiting {
			keys = append(keys, k)
		}
		s.due = s.due[:0]
	} else {
		seen := map[string]bool{}
		for len(s.due) > 0 && !s.due[0].t.After(wm) {
			d := heap.Pop(&s.due).(dueAt)
			st := s.states[d.key]
			if st == nil || len(st.pending) == 0 || !st.pending[0].t.Equal(d.t) || seen[d.key] {
				continue // stale
			}
			seen[d.key] = true
			keys = append(keys, d.key)
		}
	}
	sort.Strings(keys)
	var buf []Alert
	for _, key := range keys {
		st := s.states[key]
		n := 0
		for n < len(st.pending) && (all || !st.pending[n].t.After(wm)) {
			p := st.pending[n]
			buf = buf[:0]
			st.w, buf = st.agg.step(st.window(), st.groupFields(), p.idx, p.t, p.value, p.id, buf)
			for _, a := range buf {
				out = append(out, KeyedAlert{Alert: a, Agg: st.aggID, StateKey: key})
			}
			st.released, st.applied = p.t, true
			n++
		}
		if n > 0 {
			st.pending = append(st.pending[:0], st.pending[n:]...)
			s.dirty[key] = true
		}
		if len(st.pending) == 0 {
			delete(s.waiting, key)
		} else {
			heap.Push(&s.due, dueAt{st.pending[0].t, key})
		}
	}
	return out
}

type dueAt struct {
	t   time.Time
	key string
}

type dueHeap []dueAt

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].t.Before(h[j].t) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueAt)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// window returns the open window for step, which may replace it.
func (st *KeyState) window() *window {
	w := st.w
	st.w = nil
	return w
}

func (st *KeyState) groupFields() []event.Field {
	g := make([]event.Field, len(st.group))
	for i, v := range st.group {
		g[i] = event.Field{Name: st.agg.groupBy[i], Value: v}
	}
	return g
}

// Expire closes the windows of conditions decided at the window's end (lt, eq,
// value_avg...) once the stream time is grace past that end, with the end as the
// alert time. A stream has no end for Flush to close them at; the Correlator instead
// closes such a window when its key's next event comes, or at the end of the input.
func (s *Shard) Expire(out []KeyedAlert) []KeyedAlert {
	wm := s.watermark()
	for _, key := range s.sortedKeys() {
		st := s.states[key]
		a := st.agg
		if st.w == nil || a.eager || a.span == 0 || len(st.pending) > 0 {
			continue
		}
		end := st.w.first.Add(a.span)
		if !end.Before(wm) {
			continue
		}
		var buf []Alert
		for _, al := range a.close(st.w, end, buf) {
			out = append(out, KeyedAlert{Alert: al, Agg: st.aggID, StateKey: key})
		}
		st.w = nil
		s.dirty[key] = true
	}
	return out
}

// Flush ends the input: it applies every held input, then closes every open window
// as Correlator.Flush does, with last as the time of the alerts of windows decided at
// their end. The alerts come in the Correlator's order.
func (s *Shard) Flush(last time.Time, out []KeyedAlert) []KeyedAlert {
	out = s.release(time.Time{}, true, out)
	keys := s.sortedKeys()
	sort.SliceStable(keys, func(i, j int) bool {
		return s.k.order[s.states[keys[i]].agg] < s.k.order[s.states[keys[j]].agg]
	})
	for _, key := range keys {
		st := s.states[key]
		if st.w == nil {
			continue
		}
		if !st.agg.eager {
			for _, al := range st.agg.close(st.w, last, nil) {
				out = append(out, KeyedAlert{Alert: al, Agg: st.aggID, StateKey: key})
			}
		}
		st.w = nil
		s.dirty[key] = true
	}
	return out
}

// Sweep forgets the keys that can no longer raise anything: no window or only events
// the stream time has left a span behind, nothing held, and their last applied input
// behind the watermark (a duplicate of it would be late anyway), and no Extra (the
// caller still needs it). Their encoding is then a tombstone.
func (s *Shard) Sweep() {
	wm := s.watermark()
	for key, st := range s.states {
		if len(st.pending) > 0 || st.applied && !st.released.Before(wm) || len(st.Extra) > 0 {
			continue
		}
		if !st.w.empty() {
			// The next input (at the watermark or later) slides a dead eager window out
			// entirely: dropping it now changes nothing.
			last := st.w.times[len(st.w.times)-1]
			if !st.agg.eager || st.agg.span == 0 || wm.Sub(last) <= st.agg.span {
				continue
			}
		}
		delete(s.states, key)
		s.dirty[key] = true
	}
}

func (w *window) empty() bool { return w == nil || len(w.times) == 0 }

func (s *Shard) sortedKeys() []string {
	keys := make([]string, 0, len(s.states))
	for k := range s.states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Dirty returns, sorted, the keys whose state changed since the last call (their
// encoding is to be written again), and forgets them.
func (s *Shard) Dirty() []string {
	keys := make([]string, 0, len(s.dirty))
	for k := range s.dirty {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	clear(s.dirty)
	return keys
}

// MarkDirty asks for key to be written again (its Extra changed).
func (s *Shard) MarkDirty(key string) { s.dirty[key] = true }

// Empty says whether the key holds nothing but duplicate detection: no window and no
// held input.
func (st *KeyState) Empty() bool { return st.w.empty() && len(st.pending) == 0 }

const stateVersion = 1

type stateJSON struct {
	V   int                 `json:"v"`
	A   string              `json:"a"`
	G   []string            `json:"g,omitempty"`
	W   *windowJSON         `json:"w,omitempty"`
	P   []pendJSON          `json:"p,omitempty"`
	R   *int64              `json:"r,omitempty"`
	Q   uint64              `json:"q,omitempty"`
	S   map[string][2]int64 `json:"s,omitempty"`
	Pos int64               `json:"pos"`
	X   json.RawMessage     `json:"x,omitempty"`
}

// windowJSON keeps times as offsets from the first, rule positions only when some
// is not 0 (temporal).
type windowJSON struct {
	F int64    `json:"f"`
	T []int64  `json:"t"`
	X []string `json:"x,omitempty"`
	R []int    `json:"r,omitempty"`
	I []string `json:"i,omitempty"`
}

type pendJSON struct {
	T int64  `json:"t"`
	I int    `json:"i,omitempty"`
	X string `json:"x,omitempty"`
	D string `json:"d,omitempty"`
	Q uint64 `json:"q"`
}

// Encode returns the key's state as versioned JSON, or nil when the shard holds no
// state for it (a tombstone).
func (s *Shard) Encode(key string) []byte {
	st := s.states[key]
	if st == nil {
		return nil
	}
	j := stateJSON{V: stateVersion, A: st.aggID, G: st.group, Q: st.seq, Pos: st.Pos, X: st.Extra}
	if st.applied {
		r := nanos(st.released)
		j.R = &r
	}
	if w := st.w; !w.empty() {
		wj := &windowJSON{F: nanos(w.first), T: make([]int64, len(w.times)), X: w.values, I: w.ids}
		for i, t := range w.times {
			wj.T[i] = t.Sub(w.first).Nanoseconds()
		}
		for _, r := range w.rules {
			if r != 0 {
				wj.R = w.rules
				break
			}
		}
		j.W = wj
	}
	for _, p := range st.pending {
		j.P = append(j.P, pendJSON{T: nanos(p.t), I: p.idx, X: p.value, D: p.id, Q: p.seq})
	}
	if len(st.seen) > 0 {
		j.S = map[string][2]int64{}
		for src, at := range st.seen {
			j.S[src] = [2]int64{at.Off, int64(at.Sub)}
		}
	}
	b, _ := json.Marshal(&j) // no floats, no maps with non-string keys: cannot fail
	return b
}

// Restore sets key's state from what Encode wrote; nil value (a tombstone) removes it.
func (s *Shard) Restore(key string, value []byte) error {
	if value == nil {
		delete(s.states, key)
		delete(s.waiting, key)
		return nil
	}
	var j stateJSON
	if err := json.Unmarshal(value, &j); err != nil {
		return fmt.Errorf("state of key %q: %w", key, err)
	}
	if j.V != stateVersion {
		return fmt.Errorf("state of key %q: version %d, this ruledex reads %d", key, j.V, stateVersion)
	}
	a := s.k.byID[j.A]
	if a == nil {
		return fmt.Errorf("state of key %q: correlation %q is not loaded here", key, j.A)
	}
	if len(j.G) != len(a.groupBy) {
		return fmt.Errorf("state of key %q: %d group-by values, the rule has %d", key, len(j.G), len(a.groupBy))
	}
	st := &KeyState{agg: a, aggID: j.A, group: j.G, seq: j.Q, Pos: j.Pos, Extra: j.X}
	if j.R != nil {
		st.released, st.applied = fromNanos(*j.R), true
	}
	if wj := j.W; wj != nil {
		n := len(wj.T)
		if n == 0 || (a.field != "" && len(wj.X) != n) || (len(wj.R) != 0 && len(wj.R) != n) || (len(wj.I) != 0 && len(wj.I) != n) {
			return fmt.Errorf("state of key %q: window lists of different lengths", key)
		}
		first := fromNanos(wj.F)
		w := &window{group: st.groupFields(), first: first, values: wj.X, ids: wj.I, rules: wj.R}
		for _, d := range wj.T {
			w.times = append(w.times, first.Add(time.Duration(d)))
		}
		if w.rules == nil {
			w.rules = make([]int, n)
		}
		st.w = w
	}
	for _, p := range j.P {
		st.pending = append(st.pending, pend{t: fromNanos(p.T), idx: p.I, value: p.X, id: p.D, seq: p.Q})
	}
	for src, at := range j.S {
		if st.seen == nil {
			st.seen = map[string]seenAt{}
		}
		st.seen[src] = seenAt{at[0], int(at[1])}
	}
	s.states[key] = st
	if len(st.pending) > 0 {
		s.waiting[key] = true
		heap.Push(&s.due, dueAt{st.pending[0].t, key})
	} else {
		delete(s.waiting, key)
	}
	return nil
}

type metaJSON struct {
	V      int   `json:"v"`
	Stream int64 `json:"st"`
	Late   int64 `json:"late,omitempty"`
}

// EncodeMeta returns the shard's own state (stream time, late count) as versioned JSON.
func (s *Shard) EncodeMeta() []byte {
	b, _ := json.Marshal(metaJSON{V: stateVersion, Stream: nanos(s.Stream), Late: s.Late})
	return b
}

// RestoreMeta sets the shard's own state from what EncodeMeta wrote.
func (s *Shard) RestoreMeta(value []byte) error {
	var j metaJSON
	if err := json.Unmarshal(value, &j); err != nil {
		return fmt.Errorf("shard state: %w", err)
	}
	if j.V != stateVersion {
		return fmt.Errorf("shard state: version %d, this ruledex reads %d", j.V, stateVersion)
	}
	if t := fromNanos(j.Stream); t.After(s.Stream) {
		s.Stream = t
	}
	s.Late = max(s.Late, j.Late)
	return nil
}

// nanos encodes a time as Unix nanoseconds, the zero time (no time seen yet) as the
// smallest int64, which no event time encodes to.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
