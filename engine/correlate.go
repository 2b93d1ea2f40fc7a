package engine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/rule"
)

// Alert is a correlation or aggregation that fired.
type Alert struct {
	// Rule is the correlation rule, or the rule with the `| count() ...` aggregation.
	Rule *rule.Rule
	// Time is the time of the event that completed the alert (for windows closed at the
	// end of the stream, the last event's time).
	Time time.Time
	// Group holds the group-by fields and their values.
	Group []event.Field
	// Value is the aggregate that met the condition (event count, distinct values, sum,
	// ...); for temporal correlations, the number of distinct rules seen.
	Value float64
	// Events counts the base events in the window.
	Events int
	// First is the time of the window's first event.
	First time.Time
	// IDs name the window's events where they were read (keyed correlation: the
	// origin of each Input), in window order; nil for a Correlator.
	IDs []string
}

// Correlator evaluates Sigma correlation rules and legacy `| count() by` aggregations
// over a time-ordered stream: feed it every event with the matches Matcher.Match
// returned for it. Not safe for concurrent use; events must arrive in time order (per
// group, an event older than the window's start opens no new window).
type Correlator struct {
	aggs   []*aggregate
	byRule map[*rule.Rule][]feed
	// suppress holds base rules whose own matches are not alerts: rules with an
	// aggregation, and rules referenced by a correlation without generate: true.
	suppress map[*rule.Rule]bool
	last     time.Time
}

type feed struct {
	agg   *aggregate
	index int // position of the rule in the correlation's rule list (temporal_ordered)
}

// aggregate is one correlation or aggregation with its per-group windows.
type aggregate struct {
	rule     *rule.Rule
	typ      string // event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_min, value_max
	groupBy  []string
	aliases  map[string]map[*rule.Rule]string // group-by alias -> base rule -> field
	field    string
	span     time.Duration // 0: the whole stream
	conds    []rule.Threshold
	nrules   int
	eager    bool // conditions only grow true as events arrive: fire as soon as they hold
	groups   map[string]*window
	keyBuf   []byte
	groupBuf []event.Field
}

type window struct {
	group  []event.Field
	first  time.Time
	times  []time.Time
	values []string // value_* and value_count: the field's value per event
	rules  []int    // temporal: rule index per event
	ids    []string // keyed state: where each event was read (empty in a Correlator)
}

// NewCorrelator prepares the correlations and aggregations of the rules m compiled.
// Correlations whose rules are not in m, chained correlations and unsupported types are
// returned as skipped with the reason.
func NewCorrelator(m *Matcher) (*Correlator, []Skipped) {
	c := &Correlator{byRule: map[*rule.Rule][]feed{}, suppress: map[*rule.Rule]bool{}}
	var skipped []Skipped
	byRef := map[string]*rule.Rule{}
	for _, r := range m.rules {
		if r.ID != "" {
			byRef[r.ID] = r
		}
		if r.Name != "" {
			byRef[r.Name] = r
		}
	}
	corrRefs := map[string]bool{}
	for _, r := range m.correlations {
		if r.ID != "" {
			corrRefs[r.ID] = true
		}
		if r.Name != "" {
			corrRefs[r.Name] = true
		}
	}
	// Legacy aggregations on base rules.
	for _, r := range m.rules {
		var aggs []*rule.Aggregation
		for _, s := range r.Stages {
			if s.Kind == rule.StageAggregation && s.Aggregation != nil {
				aggs = append(aggs, s.Aggregation)
			}
		}
		if len(aggs) == 0 {
			continue
		}
		c.suppress[r] = true
		a, err := legacyAggregate(r, aggs)
		if err != nil {
			skipped = append(skipped, Skipped{r, err.Error()})
			continue
		}
		c.aggs = append(c.aggs, a)
		c.byRule[r] = append(c.byRule[r], feed{agg: a})
	}
	for _, r := range m.correlations {
		if d, bad := firstError(r); bad {
			skipped = append(skipped, Skipped{r, "rule has errors: " + d})
			continue
		}
		a, refs, err := correlationAggregate(r, byRef, corrRefs)
		if err != nil {
			skipped = append(skipped, Skipped{r, err.Error()})
			continue
		}
		c.aggs = append(c.aggs, a)
		for i, b := range refs {
			c.byRule[b] = append(c.byRule[b], feed{agg: a, index: i})
			if !r.Correlation.Generate {
				c.suppress[b] = true
			}
		}
	}
	return c, skipped
}

// Suppressed reports whether matches of r are only input to an aggregation or a
// correlation, not alerts of their own.
func (c *Correlator) Suppressed(r *rule.Rule) bool { return c.suppress[r] }

func legacyAggregate(r *rule.Rule, aggs []*rule.Aggregation) (*aggregate, error) {
	if len(aggs) > 1 {
		return nil, fmt.Errorf("%d aggregations in one rule are not supported", len(aggs))
	}
	ag := aggs[0]
	a := &aggregate{rule: r, groupBy: ag.GroupBy, field: ag.Field, nrules: 1, groups: map[string]*window{}}
	switch ag.Func {
	case "count":
		a.typ = "event_count"
		if ag.Field != "" {
			a.typ = "value_count"
		}
	case "sum", "avg", "min", "max":
		if ag.Field == "" {
			return nil, fmt.Errorf("aggregation %s() needs a field", ag.Func)
		}
		a.typ = "value_" + ag.Func
	case "near":
		return nil, fmt.Errorf("the near aggregation is not supported (no current Sigma tool implements it)")
	default:
		return nil, fmt.Errorf("aggregation function %q is not supported", ag.Func)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(ag.Value), 64)
	if err != nil {
		return nil, fmt.Errorf("aggregation threshold %q is not a number", ag.Value)
	}
	op := map[string]string{">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "eq", "=": "eq", "!=": "neq"}[ag.Op]
	if op == "" {
		return nil, fmt.Errorf("aggregation comparison %q is not supported", ag.Op)
	}
	a.conds = []rule.Threshold{{Op: op, Value: v}}
	ts := ag.Timespan
	if ts == "" {
		ts = r.Timeframe
	}
	if ts != "" {
		if a.span, err = ParseTimespan(ts); err != nil {
			return nil, err
		}
	}
	a.eager = eager(a.typ, a.conds)
	return a, nil
}

func correlationAggregate(r *rule.Rule, byRef map[string]*rule.Rule, corrRefs map[string]bool) (*aggregate, []*rule.Rule, error) {
	co := r.Correlation
	a := &aggregate{rule: r, typ: co.Type, groupBy: co.GroupBy, field: co.Field, conds: co.Conditions,
		nrules: len(co.Rules), groups: map[string]*window{}}
	switch co.Type {
	case "event_count", "temporal", "temporal_ordered", "value_sum", "value_avg":
	case "value_count":
		if co.Field == "" {
			return nil, nil, fmt.Errorf("value_count correlation without a field")
		}
	default:
		return nil, nil, fmt.Errorf("correlation type %q is not supported", co.Type)
	}
	if strings.HasPrefix(co.Type, "value_") && co.Field == "" {
		return nil, nil, fmt.Errorf("%s correlation without a field", co.Type)
	}
	var refs []*rule.Rule
	for _, ref := range co.Rules {
		b, ok := byRef[ref]
		if !ok {
			if corrRefs[ref] {
				return nil, nil, fmt.Errorf("correlation of correlation %q is not supported", ref)
			}
			return nil, nil, fmt.Errorf("referenced rule %q is not loaded", ref)
		}
		refs = append(refs, b)
	}
	if len(refs) == 0 {
		return nil, nil, fmt.Errorf("correlation names no rules")
	}
	if co.Timespan == "" {
		return nil, nil, fmt.Errorf("correlation without timespan")
	}
	var err error
	if a.span, err = ParseTimespan(co.Timespan); err != nil {
		return nil, nil, err
	}
	if len(co.Aliases) > 0 {
		a.aliases = map[string]map[*rule.Rule]string{}
		for alias, m := range co.Aliases {
			a.aliases[alias] = map[*rule.Rule]string{}
			for ref, field := range m {
				if b, ok := byRef[ref]; ok {
					a.aliases[alias][b] = field
				}
			}
		}
	}
	if len(a.conds) == 0 {
		switch co.Type {
		case "temporal", "temporal_ordered":
			a.conds = []rule.Threshold{{Op: "gte", Value: float64(len(refs))}}
		default:
			return nil, nil, fmt.Errorf("%s correlation without a condition", co.Type)
		}
	}
	a.eager = eager(a.typ, a.conds)
	return a, refs, nil
}

// eager: counts and distinct counts only grow inside a window, so gt/gte conditions
// can fire at once; anything else is decided when the window closes.
func eager(typ string, conds []rule.Threshold) bool {
	switch typ {
	case "event_count", "value_count", "temporal", "temporal_ordered", "value_sum":
	default:
		return false
	}
	for _, t := range conds {
		if t.Op != "gt" && t.Op != "gte" {
			return false
		}
	}
	return true
}

// ParseTimespan reads a Sigma timespan: a number and a unit s, m, h, d (also w, M, y).
func ParseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("timespan %q: want a number and a unit (s, m, h, d)", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("timespan %q: want a number and a unit (s, m, h, d)", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour,
		'w': 7 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("timespan %q: unknown unit %q", s, s[len(s)-1:])
	}
	return time.Duration(n) * unit, nil
}

// timeFields are the event fields tried, in order, for an event's time.
// System_TimeCreated: the header time when a data field is also named TimeCreated (logread).
var timeFields = timeFieldsArr[:]

// EventTime returns the event's time, if it carries one: the first of timeFields the
// event has (by getFold: the first field of that name, else the first with it in
// another case) whose value parses.
//
// One pass finds the names as written, by length; only a name the event lacks as
// written is looked for in other cases, among the fields whose length allows it. A
// getFold per name scanned the event twice for each name it lacks (most events lack
// System_TimeCreated, the first), and hunt asks the time of every matched event.
// eventTimeSlow is the reference (TestEventTimeSameAsSlow).
func EventTime(ev *event.Event) (time.Time, bool) {
	const none = -1
	var exact [len(timeFieldsArr)]int32
	for k := range exact {
		exact[k] = none
	}
	for i := range ev.Fields {
		name := ev.Fields[i].Name
		if len(name) >= len(timeFieldsByLen) {
			continue
		}
		for _, k := range timeFieldsByLen[len(name)] {
			if exact[k] == none && name == timeFieldsArr[k] {
				exact[k] = int32(i)
			}
		}
	}
	for k, tn := range timeFieldsArr {
		i := int(exact[k])
		if i == none {
			i = foldIndex(ev, tn)
		}
		if i == none {
			continue
		}
		if v := ev.Fields[i].Value; v != "" {
			if t, ok := parseTime(v); ok {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// foldIndex is the index of the first field whose name equals name (ASCII) under
// Unicode case folding, -1 when none does. A name of another length can fold to it
// only through non-ASCII letters (U+017F folds to s, U+212A to k), longer in UTF-8.
func foldIndex(ev *event.Event, name string) int {
	for i := range ev.Fields {
		f := ev.Fields[i].Name
		if len(f) != len(name) && (len(f) < len(name) || len(f) > 3*len(name) || isASCII(f)) {
			continue
		}
		if strings.EqualFold(f, name) {
			return i
		}
	}
	return -1
}

// timeFieldsArr is timeFields with a length EventTime can size its arrays by.
var timeFieldsArr = [...]string{"System_TimeCreated", "TimeCreated", "SystemTime", "@timestamp", "timestamp", "UtcTime", "EventTime", "time"}

// timeFieldsByLen lists, by byte length, the indexes of the time fields of that length.
var timeFieldsByLen = func() [][]int8 {
	var t [][]int8
	for k, n := range timeFieldsArr {
		for len(t) <= len(n) {
			t = append(t, nil)
		}
		t[len(n)] = append(t[len(n)], int8(k))
	}
	return t
}()

// eventTimeSlow is EventTime as first written, the reference its tests compare with.
func eventTimeSlow(ev *event.Event) (time.Time, bool) {
	for _, name := range timeFields {
		if v, ok := getFold(ev, name); ok && v != "" {
			if t, ok := parseTime(v); ok {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05.999 MST"}

func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 1e9 {
		if n > 1e12 { // milliseconds
			return time.UnixMilli(n).UTC(), true
		}
		return time.Unix(n, 0).UTC(), true
	}
	return time.Time{}, false
}

func getFold(ev *event.Event, name string) (string, bool) {
	if v, ok := ev.Get(name); ok {
		return v, true
	}
	for i := range ev.Fields {
		if strings.EqualFold(ev.Fields[i].Name, name) {
			return ev.Fields[i].Value, true
		}
	}
	return "", false
}

// Reads tells whether Observe may read the event field name (case-insensitively, as it
// looks fields up): group-by fields and their aliases, value fields and time fields. A
// caller that keeps matched events until correlation can keep only these fields.
func (c *Correlator) Reads(name string) bool {
	for _, t := range timeFields {
		if strings.EqualFold(t, name) {
			return true
		}
	}
	for _, a := range c.aggs {
		if a.field != "" && strings.EqualFold(a.field, name) {
			return true
		}
		for _, g := range a.groupBy {
			if strings.EqualFold(g, name) {
				return true
			}
			for _, f := range a.aliases[g] {
				if strings.EqualFold(f, name) {
					return true
				}
			}
		}
	}
	return false
}

// Observe feeds one event and its matches; it returns the alerts the event completes.
// Events without a time are taken to happen at the last time seen.
func (c *Correlator) Observe(ev *event.Event, ms []Match, out []Alert) []Alert {
	if len(ms) == 0 {
		return out
	}
	t, ok := EventTime(ev)
	if !ok {
		t = c.last
	}
	if t.After(c.last) {
		c.last = t
	}
	for _, m := range ms {
		for _, f := range c.byRule[m.Rule] {
			out = f.agg.observe(ev, m.Rule, f.index, t, out)
		}
	}
	return out
}

// Flush closes every open window (end of stream) and returns the alerts they make.
func (c *Correlator) Flush(out []Alert) []Alert {
	for _, a := range c.aggs {
		keys := make([]string, 0, len(a.groups))
		for k := range a.groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w := a.groups[k]
			if !a.eager {
				out = a.close(w, c.last, out)
			}
			delete(a.groups, k)
		}
	}
	return out
}

func (a *aggregate) groupKey(ev *event.Event, base *rule.Rule) (string, []event.Field) {
	a.keyBuf = a.keyBuf[:0]
	a.groupBuf = a.groupBuf[:0]
	for _, g := range a.groupBy {
		field := g
		if m, ok := a.aliases[g]; ok {
			if f, ok := m[base]; ok {
				field = f
			}
		}
		v, _ := getFold(ev, field)
		a.keyBuf = append(a.keyBuf, v...)
		a.keyBuf = append(a.keyBuf, 0)
		a.groupBuf = append(a.groupBuf, event.Field{Name: g, Value: v})
	}
	return string(a.keyBuf), a.groupBuf
}

func (a *aggregate) observe(ev *event.Event, base *rule.Rule, idx int, t time.Time, out []Alert) []Alert {
	key, group := a.groupKey(ev, base)
	var v string
	if a.field != "" {
		v, _ = getFold(ev, a.field)
	}
	w, out := a.step(a.groups[key], group, idx, t, v, "", out)
	if w == nil {
		delete(a.groups, key)
	} else {
		a.groups[key] = w
	}
	return out
}

// step adds one base event to a group's window (nil: none open) and returns the
// window afterwards (nil once an eager alert consumed it). The Correlator and the
// keyed state (Shard) share it, so both place events the same way.
func (a *aggregate) step(w *window, group []event.Field, idx int, t time.Time, value, id string, out []Alert) (*window, []Alert) {
	if w != nil && a.span > 0 && t.Sub(w.first) > a.span {
		if a.eager {
			a.slide(w, t)
		} else {
			out = a.close(w, t, out)
			w = nil
		}
	}
	if w == nil {
		g := make([]event.Field, len(group))
		for i, f := range group {
			g[i] = event.Field{Name: f.Name, Value: strings.Clone(f.Value)}
		}
		w = &window{group: g, first: t}
	}
	if len(w.times) == 0 {
		w.first = t
	}
	w.times = append(w.times, t)
	w.rules = append(w.rules, idx)
	if a.field != "" {
		w.values = append(w.values, strings.Clone(value))
	}
	if id != "" && len(w.ids) == 0 {
		w.ids = make([]string, len(w.times)-1)
	}
	if len(w.ids) > 0 {
		w.ids = append(w.ids, id)
	}
	if a.eager {
		if v, ok := a.holds(w); ok {
			out = append(out, Alert{Rule: a.rule, Time: t, Group: w.group, Value: v, Events: len(w.times), First: w.first, IDs: w.ids})
			return nil, out
		}
	}
	return w, out
}

// slide drops the events that fell out of the window ending at t.
func (a *aggregate) slide(w *window, t time.Time) {
	cut := 0
	for cut < len(w.times) && t.Sub(w.times[cut]) > a.span {
		cut++
	}
	w.times = w.times[cut:]
	w.rules = w.rules[cut:]
	if len(w.values) >= cut {
		w.values = w.values[cut:]
	}
	if len(w.ids) >= cut {
		w.ids = w.ids[cut:]
	}
	if len(w.times) > 0 {
		w.first = w.times[0]
	}
}

func (a *aggregate) close(w *window, t time.Time, out []Alert) []Alert {
	if v, ok := a.holds(w); ok {
		out = append(out, Alert{Rule: a.rule, Time: t, Group: w.group, Value: v, Events: len(w.times), First: w.first, IDs: w.ids})
	}
	return out
}

// holds computes the window's aggregate and tests the conditions.
func (a *aggregate) holds(w *window) (float64, bool) {
	var v float64
	switch a.typ {
	case "event_count":
		v = float64(len(w.times))
	case "value_count":
		seen := map[string]bool{}
		for _, x := range w.values {
			if x != "" {
				seen[strings.ToLower(x)] = true
			}
		}
		v = float64(len(seen))
	case "temporal":
		seen := map[int]bool{}
		for _, r := range w.rules {
			seen[r] = true
		}
		v = float64(len(seen))
	case "temporal_ordered":
		// Longest prefix of the rule list seen in order.
		next := 0
		for _, r := range w.rules {
			if r == next {
				next++
				if next == a.nrules {
					break
				}
			}
		}
		v = float64(next)
	case "value_sum", "value_avg", "value_min", "value_max":
		n := 0
		for _, x := range w.values {
			f, ok := parseNum(x)
			if !ok {
				continue
			}
			switch {
			case n == 0:
				v = f
			case a.typ == "value_min":
				v = min(v, f)
			case a.typ == "value_max":
				v = max(v, f)
			default:
				v += f
			}
			n++
		}
		if n == 0 {
			return 0, false
		}
		if a.typ == "value_avg" {
			v /= float64(n)
		}
	}
	for _, c := range a.conds {
		ok := false
		switch c.Op {
		case "gt":
			ok = v > c.Value
		case "gte":
			ok = v >= c.Value
		case "lt":
			ok = v < c.Value
		case "lte":
			ok = v <= c.Value
		case "eq":
			ok = v == c.Value
		case "neq":
			ok = v != c.Value
		}
		if !ok {
			return v, false
		}
	}
	return v, true
}
