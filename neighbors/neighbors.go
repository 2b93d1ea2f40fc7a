package neighbors

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// Shape of a rule's logic, as the equivalence-class page shows it.
const (
	ShapeSingle      = "single event"
	ShapeAggregation = "aggregation"
	ShapeCorrelation = "correlation"
)

// Key identifies a rule across languages: "<language>/<id>".
func Key(r *rule.Rule) string { return string(r.Language) + "/" + r.ID }

// Form is a rule's canonical form.
type Form struct {
	Key   string
	Class string // log source class, e.g. "windows/process_creation"
	Shape string
	// Canonical is the whole form as a string: equal strings mean equivalent rules.
	Canonical string
	// EqID is the stable id of the equivalence class (a hash of Canonical).
	EqID string
	// Events is the set of concrete events the rule can match ("provider:id"), from
	// Options.Coverage; empty when unknown, and then Class stands in for it.
	Events map[string]bool
	// Provable is false when the rule has logic ruledex cannot reason about (opaque
	// parts, pipelines that aggregate): it gets an equivalence class but no stricter or
	// broader relations.
	Provable bool
	root     *cnode
}

// Relation is one neighbor of a rule.
type Relation struct {
	Key        string `json:"key"`
	Difference string `json:"difference"`
}

// Result holds every relation found in a corpus.
type Result struct {
	Forms map[string]*Form // by rule key
	// Classes maps an equivalence-class id to its members' keys, sorted.
	Classes map[string][]string
	// Stricter[k] lists rules that match a subset of k's events; Broader[k] a superset.
	Stricter map[string][]Relation
	Broader  map[string][]Relation
	// Equivalent[k] lists rules with the same canonical form as k, or proved equivalent.
	Equivalent map[string][]Relation
}

// kqlTableClass maps well-known telemetry tables to the Sigma class they hold, so
// equivalent logic in KQL and Sigma lands in one class.
var tableClass = map[string]string{
	"deviceprocessevents":   "windows/process_creation",
	"deviceimageloadevents": "windows/image_load",
	"devicefileevents":      "windows/file_event",
	"devicenetworkevents":   "windows/network_connection",
	"deviceregistryevents":  "windows/registry_event",
	"improcesscreate":       "windows/process_creation",
	"endpoint.processes":    "windows/process_creation",
	"processes":             "windows/process_creation",
}

// Class returns the log source class of r ("" when unknown).
func Class(r *rule.Rule) string {
	ls := r.LogSource
	if ls.Category != "" || ls.Service != "" || ls.Product != "" {
		c := strings.ToLower(ls.Product)
		if ls.Category != "" {
			c += "/" + strings.ToLower(ls.Category)
		}
		if ls.Service != "" {
			c += "/svc:" + strings.ToLower(ls.Service)
		}
		return c
	}
	var cs []string
	for _, t := range append(append([]string{}, ls.Tables...), ls.DataModels...) {
		if c, ok := tableClass[strings.ToLower(t)]; ok {
			cs = append(cs, c)
		} else {
			cs = append(cs, "table:"+strings.ToLower(t))
		}
	}
	sort.Strings(cs)
	return strings.Join(uniq(cs), "+")
}

// pipelineNeutral are pipeline operators that do not change which events a rule
// matches (they filter, reshape or present), so a rule made only of them is still a
// single-event rule whose Root is its whole logic.
var pipelineNeutral = map[string]bool{
	"source": true, "where": true, "filter": true, "search": true, "project": true,
	"project-away": true, "project-keep": true, "project-rename": true, "project-reorder": true,
	"extend": true, "sort": true, "order": true, "render": true, "table": true, "fields": true,
	"rename": true, "eval": true, "from": true, "keep": true, "drop": true, "let": true, "tstats": false,
	// YARA-L: a match section alone only groups alerts, outcome only computes columns;
	// a threshold in the condition is a separate aggregation stage.
	"match": true, "outcome": true,
}

// Options tune Compute.
type Options struct {
	// Coverage returns the concrete events a rule can match (e.g. "Microsoft-Windows-Sysmon:1"),
	// from the event catalog. Rules written on native 4688 fields match only 4688 while
	// Sysmon-named rules match Sysmon 1 and 4688: with Coverage, ruledex never calls the
	// first broader than the second. Nil means the log source class alone decides.
	Coverage func(*rule.Rule) []string
}

// NewForm computes r's canonical form.
func NewForm(fm *fieldmap.Map, r *rule.Rule, opts Options) *Form {
	f := &Form{Key: Key(r), Class: Class(r), Shape: ShapeSingle, Provable: true}
	scope := f.Class
	if opts.Coverage != nil {
		if evs := opts.Coverage(r); len(evs) > 0 {
			f.Events = map[string]bool{}
			for _, e := range evs {
				f.Events[e] = true
			}
			evs = append([]string{}, evs...)
			sort.Strings(evs)
			scope = strings.Join(uniq(evs), "+")
		}
	}
	c := &canonicalizer{fm: fm, ctx: fieldmap.Contexts(r), ok: true}
	var extra []string
	for _, s := range r.Stages {
		switch s.Kind {
		case rule.StageAggregation:
			f.Shape = ShapeAggregation
			if a := s.Aggregation; a != nil {
				gb := append([]string{}, a.GroupBy...)
				sort.Strings(gb)
				extra = append(extra, fmt.Sprintf("agg:%s(%s) by %s %s %s within %s", a.Func, strings.ToLower(a.Field),
					strings.ToLower(strings.Join(gb, ",")), a.Op, a.Value, a.Timespan))
			} else {
				extra = append(extra, "agg:"+s.Text)
			}
		case rule.StagePipeline:
			if !pipelineNeutral[strings.ToLower(s.Op)] {
				f.Shape = ShapeAggregation
				extra = append(extra, "op:"+strings.Join(strings.Fields(s.Text), " "))
			}
		case rule.StageOpaque:
			c.ok = false
		}
	}
	if r.Correlation != nil {
		f.Shape = ShapeCorrelation
	}
	if root := ScopeRoot(r); root != nil {
		f.root = c.node(root)
	}
	if f.root == nil || !c.ok || f.Shape != ShapeSingle || r.HasErrors() {
		f.Provable = false
	}
	switch {
	case f.Shape == ShapeCorrelation || f.root == nil || !c.ok:
		// Nothing to compare: the rule is alone in its class.
		f.Canonical = "unique:" + f.Key
	default:
		f.Canonical = scope + "\x1e" + f.root.str + "\x1e" + strings.Join(extra, "\x1e")
	}
	f.EqID = hashID(f.Canonical)
	return f
}

// Compute finds equivalence classes and stricter/broader relations among rules.
func Compute(fm *fieldmap.Map, rules []*rule.Rule, opts Options) *Result {
	res := &Result{
		Forms:      map[string]*Form{},
		Classes:    map[string][]string{},
		Stricter:   map[string][]Relation{},
		Broader:    map[string][]Relation{},
		Equivalent: map[string][]Relation{},
	}
	var forms []*Form
	for _, r := range rules {
		f := NewForm(fm, r, opts)
		res.Forms[f.Key] = f
		res.Classes[f.EqID] = append(res.Classes[f.EqID], f.Key)
		forms = append(forms, f)
	}
	for id, m := range res.Classes {
		sort.Strings(m)
		if len(m) < 2 {
			continue
		}
		for _, a := range m {
			for _, b := range m {
				if a != b {
					res.Equivalent[a] = append(res.Equivalent[a], Relation{Key: b, Difference: "same canonical form (class " + id + ")"})
				}
			}
		}
	}
	// Index provable forms by (class, field of a positive conjunct) so that a rule is
	// only compared with rules that test every field its own positive conjuncts need.
	type group struct {
		byField map[string][]*Form
	}
	groups := map[string]*group{}
	fieldsOf := map[*Form]map[string]bool{}
	for _, f := range forms {
		if !f.Provable {
			continue
		}
		g := groups[f.Class]
		if g == nil {
			g = &group{byField: map[string][]*Form{}}
			groups[f.Class] = g
		}
		fs := positiveFields(f.root)
		fieldsOf[f] = fs
		for fld := range fs {
			g.byField[fld] = append(g.byField[fld], f)
		}
	}
	// Each broader candidate b is independent: spread them over the cores and merge.
	type found struct {
		a, b  *Form
		equiv bool
	}
	work := make(chan *Form)
	results := make(chan []found)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []found
			for b := range work {
				need, anchor := requiredFields(b.root)
				if len(need) == 0 {
					continue // only negations: too weak to relate usefully
				}
				g := groups[b.Class]
				best := ""
				for fld := range need {
					if best == "" || len(g.byField[fld]) < len(g.byField[best]) || len(g.byField[fld]) == len(g.byField[best]) && fld < best {
						best = fld
					}
				}
				for _, a := range g.byField[best] { // a is the candidate stricter rule
					if a == b || a.Canonical == b.Canonical || !subset(need, fieldsOf[a]) || !withinEvents(a, b) {
						continue
					}
					// The anchor conjunct on the rarest field rejects most candidates cheaply.
					if !implies(a.root, anchor[best]) || !implies(a.root, b.root) {
						continue
					}
					out = append(out, found{a: a, b: b, equiv: implies(b.root, a.root)})
				}
			}
			results <- out
		}()
	}
	go func() {
		for _, b := range forms {
			if b.Provable {
				work <- b
			}
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	for out := range results {
		for _, f := range out {
			a, b := f.a, f.b
			if f.equiv {
				res.Equivalent[a.Key] = append(res.Equivalent[a.Key], Relation{Key: b.Key, Difference: "logically equivalent, written differently"})
				continue
			}
			res.Stricter[b.Key] = append(res.Stricter[b.Key], Relation{Key: a.Key, Difference: describe(a.root, b.root, true)})
			res.Broader[a.Key] = append(res.Broader[a.Key], Relation{Key: b.Key, Difference: describe(a.root, b.root, false)})
		}
	}
	for _, m := range []map[string][]Relation{res.Stricter, res.Broader, res.Equivalent} {
		for k, rs := range m {
			sort.Slice(rs, func(i, j int) bool { return rs[i].Key < rs[j].Key })
			m[k] = rs
		}
	}
	return res
}

// positiveFields are the fields tested by atoms outside any negation.
func positiveFields(n *cnode) map[string]bool {
	out := map[string]bool{}
	var walk func(*cnode)
	walk = func(n *cnode) {
		switch n.op {
		case cAtom:
			out[n.atom.Field] = true
		case cNot:
			return
		default:
			for _, k := range n.kids {
				walk(k)
			}
		}
	}
	walk(n)
	return out
}

// requiredFields are fields that any rule implying n must test positively: for each
// top-level positive conjunct that is a single-field atom disjunction, that field, with
// (one of) the conjuncts on it.
func requiredFields(n *cnode) (map[string]bool, map[string]*cnode) {
	out := map[string]bool{}
	anchor := map[string]*cnode{}
	for _, c := range n.conjuncts() {
		if f, ok := singleField(c); ok {
			out[f] = true
			anchor[f] = c
		}
	}
	return out, anchor
}

// singleField reports the field when c is an atom or an OR/AND of atoms on one field.
func singleField(c *cnode) (string, bool) {
	switch c.op {
	case cAtom:
		return c.atom.Field, true
	case cOr, cAnd:
		f := ""
		for _, k := range c.kids {
			if k.op != cAtom || (f != "" && k.atom.Field != f) {
				return "", false
			}
			f = k.atom.Field
		}
		return f, f != ""
	}
	return "", false
}

func subset(a, b map[string]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func uniq(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// withinEvents reports whether every event a can match is one b can match too: a's
// coverage is a subset of b's, or neither is known and both share a log source class.
func withinEvents(a, b *Form) bool {
	if a.Events == nil || b.Events == nil {
		return a.Events == nil && b.Events == nil
	}
	return subset(a.Events, b.Events)
}
