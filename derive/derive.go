// Package derive computes what is derived over the whole catalog — each rule's event
// coverage (package winevent) and the neighbors relations (package neighbors) — and
// hands it to the catalog to store. It is the one adapter between those packages, used
// by the CLI after each ingest and by the server at start.
package derive

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/neighbors"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// neighborsLogic names the version of the neighbors computation; bump it when the
// canonical form or the implication rules change so stored results are recomputed.
const neighborsLogic = "neighbors-v3"

// coverMemo hands the coverage the event-coverage step computed to the neighbors step
// of the same run, which needs the same rows for every rule (a third of the derived
// time). The first step reads rules with their upstream ids, the second with the
// catalog's deduplicated ids: an id seen twice in the first step is dropped from the
// memo, so a rule is only ever given its own rows; anything missing is computed.
type coverMemo struct {
	wc   *winevent.Catalog
	mu   sync.Mutex
	rows map[string][]winevent.CoverageRow
	dup  map[string]bool
}

func newCoverMemo(wc *winevent.Catalog) *coverMemo {
	return &coverMemo{wc: wc, rows: map[string][]winevent.CoverageRow{}, dup: map[string]bool{}}
}

func memoKey(r *rule.Rule) string { return string(r.Language) + "/" + r.ID }

// put computes r's coverage and remembers it.
func (m *coverMemo) put(r *rule.Rule) []winevent.CoverageRow {
	rows := m.wc.Coverage(r)
	k := memoKey(r)
	m.mu.Lock()
	if _, seen := m.rows[k]; seen || m.dup[k] {
		delete(m.rows, k)
		m.dup[k] = true
	} else {
		m.rows[k] = rows
	}
	m.mu.Unlock()
	return rows
}

// get returns r's remembered coverage, else computes it.
func (m *coverMemo) get(r *rule.Rule) []winevent.CoverageRow {
	m.mu.Lock()
	rows, ok := m.rows[memoKey(r)]
	m.mu.Unlock()
	if ok {
		return rows
	}
	return m.wc.Coverage(r)
}

// EventCover adapts winevent coverage to what the catalog stores.
func EventCover(wc *winevent.Catalog) catalog.CoverFunc { return newCoverMemo(wc).cover }

func (m *coverMemo) cover(r *rule.Rule) []catalog.RuleEvent {
	rows := m.put(r)
	out := make([]catalog.RuleEvent, 0, len(rows))
	for _, row := range rows {
		ev := catalog.RuleEvent{Provider: row.Provider, EventID: row.EventID, Via: row.Via, Fields: map[string]string{}}
		for _, u := range row.Fields {
			ev.Fields[u.RuleField] = u.EventField
		}
		out = append(out, ev)
	}
	return out
}

// Events stores the event coverage of rules added or changed since the last call (of
// every rule when the event data changed). It reports how many rules it computed.
func Events(ctx context.Context, cat *catalog.Catalog, wc *winevent.Catalog) (int, error) {
	return events(ctx, cat, newCoverMemo(wc))
}

func events(ctx context.Context, cat *catalog.Catalog, m *coverMemo) (int, error) {
	n, err := cat.SyncRuleEvents(ctx, m.wc.Fingerprint(), m.cover)
	if err != nil {
		return n, fmt.Errorf("event coverage: %w", err)
	}
	return n, nil
}

// Neighbors recomputes equivalence classes and stricter/broader relations when the
// catalog's rules changed since the last run. With an event catalog (wc non-nil) rules
// are scoped by the concrete events they can match, so a rule on native 4688 fields is
// never called broader than a Sysmon-named one that also covers Sysmon 1.
func Neighbors(ctx context.Context, cat *catalog.Catalog, wc *winevent.Catalog) (bool, error) {
	var m *coverMemo
	if wc != nil {
		m = newCoverMemo(wc)
	}
	return neighborsWith(ctx, cat, m)
}

func neighborsWith(ctx context.Context, cat *catalog.Catalog, m *coverMemo) (bool, error) {
	var opts neighbors.Options
	fp := neighborsLogic
	if m != nil {
		opts.Coverage = m.keys
		fp += " " + m.wc.Fingerprint()
	}
	changed, err := cat.SyncNeighbors(ctx, fp, func(stored []catalog.StoredRule) catalog.NeighborInput {
		rules := make([]*rule.Rule, len(stored))
		pks := make(map[string]int64, len(stored))
		for i, s := range stored {
			rules[i] = s.Rule
			pks[neighbors.Key(s.Rule)] = s.PK
		}
		res := neighbors.Compute(fieldmap.Default(), rules, opts)
		in := catalog.NeighborInput{Classes: map[int64]catalog.ClassOf{}}
		for k, f := range res.Forms {
			cl := catalog.ClassOf{ID: f.EqID, Shape: f.Shape, Provable: f.Provable}
			if ci, ok := res.ClassInfo[f.EqID]; ok {
				cl.Basis = ci.Basis
			}
			in.Classes[pks[k]] = cl
		}
		for _, rel := range []struct {
			name string
			m    map[string][]neighbors.Relation
		}{{"equivalent", res.Equivalent}, {"stricter", res.Stricter}, {"broader", res.Broader}} {
			for k, rs := range rel.m {
				for _, r := range rs {
					in.Relations = append(in.Relations, catalog.Relation{Rule: pks[k], Other: pks[r.Key], Relation: rel.name, Difference: r.Difference, Basis: r.Basis})
				}
			}
		}
		return in
	})
	if err != nil {
		return false, fmt.Errorf("neighbors: %w", err)
	}
	return changed, nil
}

// CoverageKeys is neighbors.Options.Coverage from the event catalog: "provider:id" per event.
func CoverageKeys(wc *winevent.Catalog) func(*rule.Rule) []string { return newCoverMemo(wc).keys }

func (m *coverMemo) keys(r *rule.Rule) []string {
	rows := m.get(r)
	out := make([]string, 0, len(rows))
	for _, row := range rows {
		out = append(out, row.Provider+":"+strconv.Itoa(row.EventID))
	}
	return out
}

// All brings everything derived up to date: event coverage (when wc is non-nil), then
// neighbors. Each runs in its own transaction after the ingest committed and is keyed
// by a signature of the rules, so it costs a scan when nothing changed, and an
// interrupted run is finished by the next call.
func All(ctx context.Context, cat *catalog.Catalog, wc *winevent.Catalog) error {
	_, err := Timed(ctx, cat, wc, nil)
	return err
}

// Timing is how long one derived step took.
type Timing struct {
	Name     string
	Duration time.Duration
}

// Step names, as progress output shows them.
const (
	StepEvents    = "event coverage"
	StepNeighbors = "neighbors"
)

// Timed is All, calling start (when non-nil) as each step begins and reporting how
// long each took, so a caller can show and count the seconds after the rules are saved.
func Timed(ctx context.Context, cat *catalog.Catalog, wc *winevent.Catalog, start func(step string)) ([]Timing, error) {
	var out []Timing
	run := func(name string, fn func() error) error {
		if start != nil {
			start(name)
		}
		t0 := time.Now()
		err := fn()
		out = append(out, Timing{name, time.Since(t0)})
		return err
	}
	var m *coverMemo
	if wc != nil {
		m = newCoverMemo(wc)
		if err := run(StepEvents, func() error { _, err := events(ctx, cat, m); return err }); err != nil {
			return out, err
		}
	}
	err := run(StepNeighbors, func() error { _, err := neighborsWith(ctx, cat, m); return err })
	return out, err
}
