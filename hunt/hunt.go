// Package hunt runs detection rules over event logs: inputs → decode → route and
// match → correlate → outputs.
//
// Inputs (files, standard input, later a Kafka consumer group) split into Parts that
// decode on their own: an EVTX chunk, a batch of JSON lines. Workers decode and match
// parts in parallel and encode their records (the output format's work runs on every
// core too); one goroutine puts the parts back in input order and writes them, so
// output streams as matches are found, in the same order whatever the scheduling, and
// memory stays bounded by the parts in flight. Within a part records are ordered by
// event time (EVTX chunks and log exports are written in time order, so a file's
// matches come out in time order). Correlations and `| count() by` aggregations see
// the matched events of the rules they read, sorted by time, after the scan.
//
// Nothing fails silently: unreadable records and chunks are reported with their
// location (Options.Report), inputs that yield no event are listed in the Summary,
// and rules that cannot run are listed with the reason.
//
// Cost, where it goes (bench/huntcli, 200,000 evtx_dump JSON lines, 2,400 SigmaHQ
// Windows rules): JSON-lines batches are read straight into pooled 1 MiB buffers and
// decoded in place (logread.NewJSONBytesReader, a single-pass decoder); a
// match is encoded at once, over the event's own strings, into the part's pooled
// output buffer (append-style JSON, no reflection), and the part's records are put in
// time order by moving bytes, so a match costs no string copies beyond the fields the
// engine copies. One buffered writer, no flush per match.
//
// Start-up: Load reads, hashes and parses rule files on every core, and with a cache
// folder (LoadOptions.CacheDir, the CLI's user cache folder) keeps the parsed rules
// keyed by each file's content and the parsers' build (see cache.go), so that a hunt
// over unchanged rules decodes them instead of parsing YAML: about half the CPU time
// of loading the SigmaHQ Windows rules; compiling them (engine.Compile) is the rest.
// Meanwhile the inputs are already being read and their first parts decoded, within a
// memory budget (StartFeed, RunFeed): start-up leaves a core idle.
package hunt

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
)

// Options configure a Hunter.
type Options struct {
	// Workers decode and match parts in parallel (at least 1).
	Workers int
	// From and To keep events whose time is in [From, To); zero means unbounded. With
	// either set, events without a time are left out (and counted).
	From, To time.Time
	// MinLevel drops correlation alerts below this level (the rules' own filter is
	// Filter.MinLevel when loading).
	MinLevel string
	// Report receives located read errors and warnings as they happen, from one
	// goroutine. Nil discards them (they are still counted).
	Report func(error)
	// Progress, when set, is called after each part with the events read so far.
	Progress func(events int64)
}

// Hunter holds compiled rules; Run may be called several times.
type Hunter struct {
	m         *engine.Matcher
	co        *engine.Correlator
	feedsCorr map[*rule.Rule]bool
	// flags has ruleFeedsCorr and ruleSuppressed per rule, by Match.RuleIndex: two map
	// lookups per match cost more than a slice.
	flags     []uint8
	skipped   []engine.Skipped
	readsMu   sync.Mutex
	readsMemo map[string]bool
}

// reads memoizes Correlator.Reads per field name (names are few, events many).
func (h *Hunter) reads(name string) bool {
	h.readsMu.Lock()
	defer h.readsMu.Unlock()
	v, ok := h.readsMemo[name]
	if !ok {
		v = h.co.Reads(name)
		if len(h.readsMemo) < 1<<14 {
			h.readsMemo[strings.Clone(name)] = v
		}
	}
	return v
}

// New compiles rules for hunting. Rules that cannot run are returned by Skipped.
func New(rules []*rule.Rule, opts engine.Options) *Hunter {
	m, skipped := engine.Compile(rules, opts)
	co, cskipped := engine.NewCorrelator(m)
	h := &Hunter{m: m, co: co, feedsCorr: map[*rule.Rule]bool{}, skipped: append(skipped, cskipped...), readsMemo: map[string]bool{}}
	for _, r := range m.Rules() {
		if co.Suppressed(r) {
			h.feedsCorr[r] = true
		}
	}
	// Rules read by generating correlations are not suppressed but still feed them.
	for _, c := range m.Correlations() {
		for _, ref := range c.Correlation.Rules {
			for _, b := range m.Rules() {
				if b.ID == ref || (b.Name != "" && b.Name == ref) {
					h.feedsCorr[b] = true
				}
			}
		}
	}
	h.flags = make([]uint8, len(m.Rules()))
	for i, r := range m.Rules() {
		if h.feedsCorr[r] {
			h.flags[i] |= ruleFeedsCorr
		}
		if co.Suppressed(r) {
			h.flags[i] |= ruleSuppressed
		}
	}
	return h
}

const (
	ruleFeedsCorr  = 1 << iota // its matches feed a correlation
	ruleSuppressed             // its matches are not output (only correlations read them)
)

// Skipped lists the rules the engine cannot run, with the reason.
func (h *Hunter) Skipped() []engine.Skipped { return h.skipped }

// Loaded is the number of rules and correlations that run.
func (h *Hunter) Loaded() int {
	n := len(h.m.Rules())
	for _, c := range h.m.Correlations() {
		ok := true
		for _, s := range h.skipped {
			if s.Rule == c {
				ok = false
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// unit is one part in flight.
type unit struct {
	seq   int
	input int
	part  Part
	err   error // the input failed here (no part)
}

// result is a matched part.
type result struct {
	seq, input int
	out        []byte
	events     int64
	outOfRange int64
	errs       []error
	failed     bool
	corr       []corrEvent
}

// corrEvent is a copied event whose matches feed the correlator after the scan.
type corrEvent struct {
	ev      event.Event
	matches []engine.Match
	time    time.Time
}

// maxConsecutiveErrors stops reading a part that yields nothing but errors.
const maxConsecutiveErrors = 1000

// Run hunts over inputs, writing records to out, and returns the summary. It returns
// an error only when out cannot be written; read problems are in the summary.
func (h *Hunter) Run(inputs []Input, out Output, o Options) (*Summary, error) {
	return h.RunFeed(StartFeed(inputs, FeedOptions{}), out, o)
}

// RunFeed is Run over a feed started earlier (StartFeed), typically before the rules
// were loaded. A feed runs once.
func (h *Hunter) RunFeed(f *Feed, out Output, o Options) (*Summary, error) {
	if f.used {
		return nil, errFeedUsed
	}
	f.used = true
	close(f.ready)
	inputs := f.inputs
	start := time.Now()
	workers := max(1, o.Workers)
	sum := &Summary{Files: len(inputs), ByLevel: map[string]int{}}
	results := make(chan result, workers*2)

	var wg sync.WaitGroup
	// Each worker counts matches per rule in its own slice, summed once all are done.
	scs := make([]*scratch, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		sc := &scratch{counts: make([]int, len(h.flags))}
		scs[w] = sc
		go func() {
			defer wg.Done()
			// Parts decoded ahead come first; parts have sequence numbers, and the
			// results are put back in order below whoever took them.
			for u := range f.ahead {
				results <- h.part(u, inputs[u.input].Name(), out, o, sc)
			}
			for u := range f.units {
				results <- h.part(u, inputs[u.input].Name(), out, o, sc)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	perInput := make([]int64, len(inputs))
	failed := make([]bool, len(inputs))
	counts := map[*rule.Rule]int{}
	var corr []corrEvent
	pending := map[int]result{}
	next := 0
	var werr error
	for res := range results {
		pending[res.seq] = res
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			for _, e := range r.errs {
				if o.Report != nil {
					o.Report(e)
				}
			}
			if r.failed {
				failed[r.input] = true
			} else {
				sum.ReadErrors += len(r.errs)
			}
			perInput[r.input] += r.events
			sum.Events += r.events
			sum.OutOfRange += r.outOfRange
			if werr == nil && len(r.out) > 0 {
				werr = out.Write(r.out)
			}
			putOut(r.out)
			corr = append(corr, r.corr...)
			if o.Progress != nil {
				o.Progress(sum.Events)
			}
		}
	}
	if werr != nil {
		return sum, werr
	}
	// The workers are done (results is closed after them).
	rules := h.m.Rules()
	for _, sc := range scs {
		for i, n := range sc.counts {
			if n > 0 {
				counts[rules[i]] += n
			}
		}
	}
	for i, in := range inputs {
		if failed[i] {
			sum.OpenFailures++
		}
		if perInput[i] == 0 {
			sum.Empty = append(sum.Empty, in.Name())
		}
	}

	// Correlations run over the matched events in time order (ties: input order).
	sort.SliceStable(corr, func(i, j int) bool {
		if !corr[i].time.Equal(corr[j].time) {
			return corr[i].time.Before(corr[j].time)
		}
		return false
	})
	var alerts []engine.Alert
	for i := range corr {
		alerts = h.co.Observe(&corr[i].ev, corr[i].matches, alerts)
	}
	alerts = h.co.Flush(alerts)
	var buf []byte
	for _, a := range alerts {
		if o.MinLevel != "" && LevelRank(a.Rule.Severity) < LevelRank(o.MinLevel) {
			continue
		}
		rec := alertRecord(a)
		buf = out.Encode(buf[:0], &rec)
		if err := out.Write(buf); err != nil {
			return sum, err
		}
		sum.Alerts++
		counts[a.Rule]++
	}
	for r, n := range counts {
		sum.ByRule = append(sum.ByRule, RuleCount{ID: r.ID, Title: r.Title, Level: r.Severity, Matches: n})
		sum.ByLevel[strings.ToLower(r.Severity)] += n
		if r.Correlation == nil && !h.co.Suppressed(r) {
			sum.Matches += n
		}
	}
	sort.Slice(sum.ByRule, func(i, j int) bool {
		a, b := sum.ByRule[i], sum.ByRule[j]
		if a.Matches != b.Matches {
			return a.Matches > b.Matches
		}
		return a.ID < b.ID
	})
	sum.RulesLoaded = h.Loaded()
	for _, s := range h.skipped {
		sum.RulesSkipped = append(sum.RulesSkipped, fmt.Sprintf("%s (%s): %s", s.Rule.Source.Path, s.Rule.Title, s.Reason))
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

// scratch is a worker's memory, reused from part to part.
type scratch struct {
	ev     event.Event
	ms     []engine.Match
	fields []event.Field // the matches' field lists (engine.MatchInto)
	spans  []span
	counts []int // matches per rule, by Match.RuleIndex
	rec    Record
}

// span is where a part's output holds one record, and the time of its event: seconds
// and nanoseconds (comparing them is what time.Time.Compare does, without its
// wall/monotonic decoding, which showed in profiles of the sort below).
type span struct {
	sec        int64
	nsec       int32
	timed      bool // the event has a time (not time.Time's zero)
	start, end int
}

func (a *span) compare(b *span) int {
	if c := cmp.Compare(a.sec, b.sec); c != 0 {
		return c
	}
	if c := cmp.Compare(a.nsec, b.nsec); c != 0 {
		return c
	}
	return cmp.Compare(a.start, b.start)
}

// part decodes and matches one part.
func (h *Hunter) part(u unit, name string, out Output, o Options, sc *scratch) result {
	ev, ms := &sc.ev, &sc.ms
	res := result{seq: u.seq, input: u.input, out: getOut()}
	if u.err != nil {
		res.errs = []error{u.err}
		res.failed = true
		return res
	}
	r, err := u.part.Open()
	if err != nil {
		res.errs = []error{fmt.Errorf("%s: %w", name, err)}
		res.failed = true
		return res
	}
	defer r.Close()
	// Records are encoded as they are found, while the event's strings are valid (no
	// copies); spans remember where each one is, to put them in time order at the end.
	spans := sc.spans[:0]
	ranged := !o.From.IsZero() || !o.To.IsZero()
	consecutive := 0
	for {
		err := r.Next(ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *logread.Error
			if errors.As(err, &le) && le.Line > 0 {
				le.Line += u.part.Line
			}
			res.errs = append(res.errs, err)
			if consecutive++; consecutive >= maxConsecutiveErrors {
				res.errs = append(res.errs, fmt.Errorf("%s: giving up after %d errors in a row", name, consecutive))
				break
			}
			continue
		}
		consecutive = 0
		res.events++
		var t time.Time
		if ranged {
			var hasTime bool
			t, hasTime = engine.EventTime(ev)
			if !hasTime || (!o.From.IsZero() && t.Before(o.From)) || (!o.To.IsZero() && !t.Before(o.To)) {
				res.outOfRange++
				continue
			}
		}
		// Records are encoded before the next event: the matched fields need no copies.
		*ms, sc.fields = h.m.MatchInto(ev, (*ms)[:0], sc.fields[:0])
		if len(*ms) == 0 {
			continue
		}
		if !ranged {
			t, _ = engine.EventTime(ev)
		}
		file := ev.File
		if file == "" {
			file = name
		}
		tsec, tnsec, timed := t.Unix(), int32(t.Nanosecond()), !t.IsZero()
		var forCorr []engine.Match
		var hd eventHeader
		hdDone := false
		for _, x := range *ms {
			fl := h.flags[x.RuleIndex]
			if fl&ruleFeedsCorr != 0 {
				// Kept past this event: without its fields, which are the event's
				// (MatchInto); the correlator reads the event's copy.
				kept := x
				kept.Fields = nil
				forCorr = append(forCorr, kept)
			}
			sc.counts[x.RuleIndex]++
			if fl&ruleSuppressed == 0 {
				if !hdDone {
					hd, hdDone = headerOf(ev), true
				}
				// The record lives in the worker's scratch: a local escapes through the
				// Output interface, one allocation per match.
				sc.rec = eventRecord(x, &hd, file, t)
				start := len(res.out)
				res.out = out.Encode(res.out, &sc.rec)
				spans = append(spans, span{sec: tsec, nsec: tnsec, timed: timed, start: start, end: len(res.out)})
			}
		}
		if len(forCorr) > 0 {
			// Only the fields the correlator reads are kept: the copies live until the
			// end of the scan.
			ce := corrEvent{matches: forCorr, time: t}
			for _, f := range ev.Fields {
				if h.reads(f.Name) {
					ce.ev.Add(strings.Clone(f.Name), strings.Clone(f.Value))
				}
			}
			res.corr = append(res.corr, ce)
		}
	}
	// Within a part, records follow event time (stable: record order on ties). A part
	// with events without a time keeps record order: there is nothing to sort them by.
	timed, sorted := true, true
	for i := range spans {
		if !spans[i].timed {
			timed = false
			break
		}
		if i > 0 && (spans[i].sec < spans[i-1].sec || spans[i].sec == spans[i-1].sec && spans[i].nsec < spans[i-1].nsec) {
			sorted = false
		}
	}
	if timed && !sorted {
		// Stable by construction: ties keep record order through start, which grows
		// with it (sort.SliceStable's in-place merging cost more than matching a
		// part's events took to encode).
		slices.SortFunc(spans, func(a, b span) int { return a.compare(&b) })
		ordered := slices.Grow(getOut(), len(res.out))
		for _, sp := range spans {
			ordered = append(ordered, res.out[sp.start:sp.end]...)
		}
		putOut(res.out)
		res.out = ordered
	}
	sc.spans = spans[:0]
	sc.rec = Record{} // holds the last event's strings
	return res
}

// outs recycles the parts' output buffers (a part of 1 MiB of SigmaHQ regression
// events encodes to about 300 KB of JSON matches: growing a fresh buffer to that size
// per part showed in profiles).
var outs = sync.Pool{New: func() any { return make([]byte, 0, 64<<10) }}

func getOut() []byte { return outs.Get().([]byte)[:0] }

func putOut(b []byte) {
	if cap(b) > 0 && cap(b) <= 8<<20 {
		outs.Put(b[:0])
	}
}

// eventHeader is the header of an event as records show it.
type eventHeader struct {
	time, computer, channel, eventID string
}

// headerOf reads the header fields in one pass (Event.Get per field and per match
// scanned the event eight times), keeping the first of each name as Get does. The
// strings are the event's: valid until the reader's next record.
func headerOf(ev *event.Event) eventHeader {
	var v [8]string
	var seen uint8
	for i := range ev.Fields {
		f := &ev.Fields[i]
		// The header fields records show, then the names logread gives the header
		// copies when a data field takes the name (System_<name>); the copies win.
		var k int
		switch f.Name {
		case "TimeCreated":
			k = 0
		case "Computer":
			k = 1
		case "Channel":
			k = 2
		case "EventID":
			k = 3
		case "System_TimeCreated":
			k = 4
		case "System_Computer":
			k = 5
		case "System_Channel":
			k = 6
		case "System_EventID":
			k = 7
		default:
			continue
		}
		if seen&(1<<k) == 0 {
			seen |= 1 << k
			v[k] = f.Value
		}
	}
	pick := func(k int) string {
		if seen&(1<<(k+4)) != 0 {
			return v[k+4]
		}
		return v[k]
	}
	return eventHeader{pick(0), pick(1), pick(2), pick(3)}
}

// eventRecord is a record over the event's strings, to encode before the next record.
func eventRecord(m engine.Match, hd *eventHeader, file string, t time.Time) Record {
	return Record{Rule: m.Rule, Time: t, TimeText: hd.time, Computer: hd.computer, Channel: hd.channel,
		EventID: hd.eventID, File: file, Fields: m.Fields, Via: m.Via}
}

func alertRecord(a engine.Alert) Record {
	rec := Record{Rule: a.Rule, Time: a.Time, Alert: true}
	for _, g := range a.Group {
		rec.Fields = append(rec.Fields, g)
		if strings.EqualFold(g.Name, "Computer") {
			rec.Computer = g.Value
		}
	}
	kind := "count"
	if a.Rule.Correlation != nil {
		kind = a.Rule.Correlation.Type
	}
	rec.Fields = append(rec.Fields, event.Field{Name: kind, Value: strconv.FormatFloat(a.Value, 'g', -1, 64)},
		event.Field{Name: "events", Value: strconv.Itoa(a.Events)},
		event.Field{Name: "first", Value: a.First.Format(time.RFC3339Nano)})
	return rec
}
