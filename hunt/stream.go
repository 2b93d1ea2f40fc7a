package hunt

import (
	"strings"
	"time"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
)

// Fed is a matched event that feeds correlation rules: its matches for those rules
// and a copy of the fields the correlator reads (the reader's event is reused).
type Fed struct {
	Event   event.Event
	Matches []engine.Match
	// Time is the event time (zero when the event has none).
	Time time.Time
}

// MatchEvent matches one decoded event the way Run matches the events of a part, for
// callers that own their input loop (the Kafka consumer in package stream): it
// appends to recs the records Run would write for the event (named name when the
// event has no file of its own) and returns, when some matches feed correlations,
// what the correlator needs of the event. ms is scratch space, returned for reuse.
// Safe for concurrent use with distinct ms and recs.
func (h *Hunter) MatchEvent(ev *event.Event, name string, ms []engine.Match, recs []Record) ([]engine.Match, []Record, *Fed) {
	ms = h.m.Match(ev, ms[:0])
	if len(ms) == 0 {
		return ms, recs, nil
	}
	t, _ := engine.EventTime(ev)
	file := ev.File
	if file == "" {
		file = name
	}
	var fed *Fed
	hd := headerOf(ev)
	for _, x := range ms {
		if h.feedsCorr[x.Rule] {
			if fed == nil {
				fed = &Fed{Time: t}
			}
			fed.Matches = append(fed.Matches, x)
		}
		if !h.co.Suppressed(x.Rule) {
			recs = append(recs, detached(eventRecord(x, &hd, file, t)))
		}
	}
	if fed != nil {
		for _, f := range ev.Fields {
			if h.reads(f.Name) {
				fed.Event.Add(strings.Clone(f.Name), strings.Clone(f.Value))
			}
		}
	}
	return ms, recs, fed
}

// AlertRecord is the record Run writes for a correlation or aggregation alert, for
// correlators that run outside Run (keyed across Kafka workers).
func AlertRecord(a engine.Alert) Record { return alertRecord(a) }

// Correlator is the hunter's correlator, built from the same rules as its matcher:
// Suppressed and Reads answer for the streaming path as they do for Run.
func (h *Hunter) Correlator() *engine.Correlator { return h.co }

// Correlates tells whether some rule feeds a correlation or aggregation: a streaming
// caller needs correlation state (and its topics) only then.
func (h *Hunter) Correlates() bool { return len(h.feedsCorr) > 0 }

// detached copies the strings a record shares with its event: Run encodes a record
// before the reader's next event, MatchEvent's callers keep records longer.
func detached(r Record) Record {
	r.TimeText, r.Computer = strings.Clone(r.TimeText), strings.Clone(r.Computer)
	r.Channel, r.EventID, r.File = strings.Clone(r.Channel), strings.Clone(r.EventID), strings.Clone(r.File)
	fs := make([]event.Field, len(r.Fields))
	for i, f := range r.Fields {
		fs[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
	}
	r.Fields = fs
	return r
}
