package neighbors

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

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
	// Telemetry names the vocabulary the rule reads ("windows-event" for Sysmon and
	// Security events, "mde" for Defender tables, "cim", "ecs", "udm", ...). Rules on
	// different telemetry relate only through the field map.
	Telemetry string
	// Assumptions are the field-map assumptions the canonical form rests on
	// ("FileName ≈ file name of Image"), sorted.
	Assumptions []string
	root        *cnode
}

// Basis says what a relation is proved from.
const (
	// BasisSame: both rules read the same telemetry with the same canonical fields;
	// the relation is proved from their logic alone.
	BasisSame = "same-telemetry"
	// BasisFieldMap: the proof maps one telemetry onto another (DeviceProcessEvents ≈
	// Sysmon 1 / Security 4688) or a field onto another through a name-only mapping
	// (Defender FileName, CIM process_name, ECS process.name ≈ file name of Image).
	BasisFieldMap = "field-map"
)

// Relation is one neighbor of a rule.
type Relation struct {
	Key        string `json:"key"`
	Basis      string `json:"basis"`
	Difference string `json:"difference"`
}

// EqClass is an equivalence class of two or more rules.
type EqClass struct {
	ID      string
	Members []string // rule keys, sorted
	// Basis is BasisFieldMap when some member is equivalent to another only through
	// the field map; Languages then may be several.
	Basis     string
	Languages []string
}

// Result holds every relation found in a corpus. Every relation is stored on both
// sides: b in Equivalent[a] iff a in Equivalent[b]; a in Stricter[b] iff b in Broader[a].
type Result struct {
	Forms map[string]*Form // by rule key
	// Classes maps an equivalence-class id to its members' keys, sorted. Only classes
	// of two or more rules are listed; a rule alone keeps its own EqID.
	Classes map[string][]string
	// ClassInfo describes each of Classes.
	ClassInfo map[string]*EqClass
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
	// CIM datasets read like the Defender tables above: the same activity, another
	// vocabulary (fieldmap's Filesystem and Registry contexts).
	"endpoint.filesystem": "windows/file_event",
	"endpoint.registry":   "windows/registry_event",
	"filesystem":          "windows/file_event",
	"registry":            "windows/registry_event",
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

// Telemetry returns the vocabulary r's fields and events come from.
func Telemetry(r *rule.Rule) string {
	ls := r.LogSource
	switch r.Language {
	case rule.Elastic:
		return "ecs"
	case rule.YaraL:
		return "udm"
	case rule.Kusto:
		var ts []string
		for _, t := range ls.Tables {
			l := strings.ToLower(t)
			switch {
			case l == "securityevent" || l == "windowsevent" || l == "event":
				ts = append(ts, "windows-event")
			case strings.HasPrefix(l, "device"):
				ts = append(ts, "mde")
			case strings.HasPrefix(strings.TrimLeft(l, "_"), "im") || strings.HasPrefix(strings.TrimLeft(l, "_"), "asim"):
				ts = append(ts, "asim")
			default:
				ts = append(ts, "table:"+l)
			}
		}
		sort.Strings(ts)
		return strings.Join(uniq(ts), "+")
	case rule.Splunk:
		if len(ls.DataModels) > 0 {
			return "cim"
		}
		return "windows-event"
	}
	if p := strings.ToLower(ls.Product); p != "" && p != "windows" {
		return "sigma:" + p
	}
	return "windows-event"
}

// pipelineNeutral are pipeline operators that do not change which events a rule
// matches (they filter, reshape or present), so a rule made only of them is still a
// single-event rule whose Root is its whole logic.
var pipelineNeutral = map[string]bool{
	"source": true, "where": true, "filter": true, "search": true, "project": true,
	"project-away": true, "project-keep": true, "project-rename": true, "project-reorder": true,
	"extend": true, "sort": true, "order": true, "render": true, "table": true, "fields": true,
	"rename": true, "eval": true, "let": true, "convert": true,
	// ES|QL: from names the source, keep and drop only pick columns.
	"from": true, "keep": true, "drop": true,
	// YARA-L: a match section alone only groups alerts, outcome only computes columns;
	// a threshold in the condition is a separate aggregation stage.
	"match": true, "outcome": true,
}

// groupingOps only group the rows that reach them: with no filter after them every
// event that passed the filters before is in some group, so the rule still matches
// exactly the events its Root accepts (ESCU's `tstats count ... by ...`, KQL
// `summarize ... by` with nothing after it). A filter after them thresholds the groups.
var groupingOps = map[string]bool{
	"summarize": true, "stats": true, "tstats": true, "fillnull": true,
}

// laterFilter reports whether a stage after i can drop rows: a stage with predicates,
// an aggregation, or an operator that keeps only some rows.
// A stage whose predicates are all Root's (a filter on a group-by column, which the
// parser keeps as an event filter) drops nothing Root does not.
func laterFilter(r *rule.Rule, i int) bool {
	var root map[string]bool
	for _, s := range r.Stages[i+1:] {
		if s.Kind == rule.StageAggregation || s.Kind == rule.StageCorrelation || s.Kind == rule.StageOpaque {
			return true
		}
		if s.Node != nil {
			if root == nil {
				root = predIDs(r.Root)
			}
			for _, p := range rule.Preds(s.Node) {
				if !root[predID(p.Pred, p.Negated)] {
					return true
				}
			}
			continue
		}
		if s.Kind == rule.StagePipeline {
			op := strings.ToLower(s.Op)
			if !pipelineNeutral[op] && !groupingOps[op] {
				return true
			}
			switch op {
			case "where", "filter", "search":
				// ESCU's empty filter macro expands to `search *`: it keeps every row.
				if t := strings.Join(strings.Fields(s.Text), " "); t != "search *" {
					return true
				}
			}
		}
	}
	return false
}

// predIDs are the identities of the predicates under n (see predID).
func predIDs(n *rule.Node) map[string]bool {
	out := map[string]bool{}
	if n != nil {
		for _, p := range rule.Preds(n) {
			out[predID(p.Pred, p.Negated)] = true
		}
	}
	return out
}

// predID identifies a predicate by what it tests, not where it is written.
func predID(p *rule.Pred, negated bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x1f%s\x1f%v\x1f%v\x1f%s", strings.ToLower(p.Field), p.Kind, p.All, negated, strings.Join(p.Transforms, "|"))
	for _, v := range p.Values {
		fmt.Fprintf(&b, "\x1f%s/%s/%v", v.S, v.Type, v.Wild)
	}
	return b.String()
}

// testsComputed reports whether some predicate of r tests a column r computes (extend,
// eval, rex, summarize ...): Root then is not the rule's whole filter, or tests a
// value no event field holds, and nothing can be proved from it.
func testsComputed(r *rule.Rule) bool {
	if len(r.Computed) == 0 {
		return false
	}
	names := map[string]bool{}
	for _, c := range r.Computed {
		names[strings.ToLower(c.Name)] = true
	}
	check := func(n *rule.Node) bool {
		for _, p := range rule.Preds(n) {
			if names[strings.ToLower(p.Pred.Field)] {
				return true
			}
		}
		return false
	}
	if r.Root != nil && check(r.Root) {
		return true
	}
	for _, s := range r.Stages {
		if s.Node != nil && check(s.Node) {
			return true
		}
	}
	return false
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
	f := &Form{Key: Key(r), Class: Class(r), Shape: ShapeSingle, Provable: true, Telemetry: Telemetry(r)}
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
	for i, s := range r.Stages {
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
			op := strings.ToLower(s.Op)
			if groupingOps[op] && !laterFilter(r, i) {
				continue
			}
			if !pipelineNeutral[op] {
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
	if root := fieldmap.ScopeRoot(r); root != nil {
		f.root = c.node(root)
	}
	for a := range c.assume {
		f.Assumptions = append(f.Assumptions, a)
	}
	sort.Strings(f.Assumptions)
	if f.root == nil || !c.ok || f.Shape != ShapeSingle || r.HasErrors() || testsComputed(r) {
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
		ClassInfo:  map[string]*EqClass{},
		Stricter:   map[string][]Relation{},
		Broader:    map[string][]Relation{},
		Equivalent: map[string][]Relation{},
	}
	// Forms are independent of each other (coverage and the field map are read-only):
	// compute them on every core.
	made := make([]*Form, len(rules))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(rules) {
					return
				}
				made[i] = NewForm(fm, rules[i], opts)
			}
		}()
	}
	wg.Wait()
	var forms []*Form
	lang := map[string]string{}
	for i, r := range rules {
		f := made[i]
		if _, dup := res.Forms[f.Key]; dup {
			continue // one form per key: a duplicate would relate a rule to itself
		}
		res.Forms[f.Key] = f
		lang[f.Key] = string(r.Language)
		forms = append(forms, f)
	}
	found := search(forms)

	// Equivalence is closed under transitivity and symmetry by construction: classes
	// are the connected components of "same canonical form" and "proved equivalent"
	// (all: any basis; same: same-telemetry edges only, to label pairs).
	all, same := newUnion(), newUnion()
	byCanon := map[string]*Form{}
	for _, f := range forms {
		if strings.HasPrefix(f.Canonical, "unique:") {
			continue
		}
		if g, ok := byCanon[f.Canonical]; ok {
			all.join(g.Key, f.Key)
			if basis(g, f) == BasisSame {
				same.join(g.Key, f.Key)
			}
		} else {
			byCanon[f.Canonical] = f
		}
	}
	for _, p := range found {
		if p.equiv {
			all.join(p.a.Key, p.b.Key)
			if basis(p.a, p.b) == BasisSame {
				same.join(p.a.Key, p.b.Key)
			}
		}
	}
	comps := map[string][]*Form{}
	for _, f := range forms {
		root := all.find(f.Key)
		comps[root] = append(comps[root], f)
	}
	for _, ms := range comps {
		if len(ms) < 2 {
			continue
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].Key < ms[j].Key })
		minCanon := ms[0].Canonical
		for _, m := range ms {
			if m.Canonical < minCanon {
				minCanon = m.Canonical
			}
		}
		id := hashID(minCanon)
		cl := &EqClass{ID: id, Basis: BasisSame}
		langs := map[string]bool{}
		for _, x := range ms {
			x.EqID = id
			cl.Members = append(cl.Members, x.Key)
			langs[lang[x.Key]] = true
			for _, y := range ms {
				if x == y {
					continue
				}
				rel := Relation{Key: y.Key, Basis: BasisSame}
				switch {
				case same.find(x.Key) != same.find(y.Key):
					rel.Basis = BasisFieldMap
					cl.Basis = BasisFieldMap
					rel.Difference = "equivalent through the field map: " + mapping(x, y)
				case x.Canonical == y.Canonical:
					rel.Difference = "same canonical form"
				default:
					rel.Difference = "logically equivalent, written differently"
				}
				res.Equivalent[x.Key] = append(res.Equivalent[x.Key], rel)
			}
		}
		for l := range langs {
			cl.Languages = append(cl.Languages, l)
		}
		sort.Strings(cl.Languages)
		res.Classes[id] = cl.Members
		res.ClassInfo[id] = cl
	}
	for _, p := range found {
		a, b := p.a, p.b
		if p.equiv || all.find(a.Key) == all.find(b.Key) {
			continue // equivalent through some chain: listed as such, not as stricter
		}
		bs := basis(a, b)
		sd, bd := describe(a.root, b.root, true), describe(a.root, b.root, false)
		if bs == BasisFieldMap {
			note := "; through the field map: " + mapping(a, b)
			sd, bd = sd+note, bd+note
		}
		res.Stricter[b.Key] = append(res.Stricter[b.Key], Relation{Key: a.Key, Basis: bs, Difference: sd})
		res.Broader[a.Key] = append(res.Broader[a.Key], Relation{Key: b.Key, Basis: bs, Difference: bd})
	}
	for _, m := range []map[string][]Relation{res.Stricter, res.Broader, res.Equivalent} {
		for k, rs := range m {
			sort.Slice(rs, func(i, j int) bool { return rs[i].Key < rs[j].Key })
			m[k] = rs
		}
	}
	return res
}

// basis labels a relation between a and b: same-telemetry when both read the same
// telemetry and rest on the same field-map assumptions (two Defender rules testing
// FileName compare FileName with FileName), field-map otherwise.
func basis(a, b *Form) string {
	if a.Telemetry != b.Telemetry || strings.Join(a.Assumptions, "\x00") != strings.Join(b.Assumptions, "\x00") {
		return BasisFieldMap
	}
	return BasisSame
}

// telemetryNames are the telemetry vocabularies as a difference text names them.
var telemetryNames = map[string]string{
	"windows-event": "Windows events (Sysmon, Security)",
	"mde":           "Defender XDR tables",
	"asim":          "ASIM tables",
	"cim":           "Splunk CIM data models",
	"ecs":           "ECS fields",
	"udm":           "UDM fields",
}

func telemetryName(t string) string {
	if n, ok := telemetryNames[t]; ok {
		return n
	}
	return t
}

// mapping names the field-map assumptions a relation between a and b uses.
func mapping(a, b *Form) string {
	var parts []string
	if a.Telemetry != b.Telemetry {
		parts = append(parts, telemetryName(a.Telemetry)+" ≈ "+telemetryName(b.Telemetry))
	}
	seen := map[string]bool{}
	for _, s := range append(append([]string{}, a.Assumptions...), b.Assumptions...) {
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "same fields"
	}
	return strings.Join(parts, "; ")
}

// groupKeys are the candidate groups a form is searched in: its log source class, and,
// when its concrete events are known, one group of all such forms, so that a KQL
// SecurityEvent rule pinned to 4688 or an SPL EventCode=4104 search meets the Sigma
// rules of other classes that read the same events (withinEvents decides).
func groupKeys(f *Form) []string {
	if f.Events != nil {
		return []string{f.Class, "\x00events"}
	}
	return []string{f.Class}
}

// union is a union-find over rule keys.
type union struct{ parent map[string]string }

func newUnion() *union { return &union{parent: map[string]string{}} }

func (u *union) find(k string) string {
	p, ok := u.parent[k]
	if !ok || p == k {
		return k
	}
	r := u.find(p)
	u.parent[k] = r
	return r
}

func (u *union) join(a, b string) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	if ra > rb { // the smaller key roots, so results do not depend on order
		ra, rb = rb, ra
	}
	u.parent[rb] = ra
}

// pair is one proved implication: a (stricter) implies b; equiv when b implies a too.
type pair struct {
	a, b  *Form
	equiv bool
}

// search finds every proved implication between provable forms.
func search(forms []*Form) []pair {
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
		fs := positiveFields(f.root)
		fieldsOf[f] = fs
		for _, k := range groupKeys(f) {
			g := groups[k]
			if g == nil {
				g = &group{byField: map[string][]*Form{}}
				groups[k] = g
			}
			for fld := range fs {
				g.byField[fld] = append(g.byField[fld], f)
			}
		}
	}
	// Each broader candidate b is independent: spread them over the cores and merge.
	work := make(chan *Form)
	results := make(chan []pair)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []pair
			seen := map[*Form]bool{}
			for b := range work {
				need, anchor := requiredFields(b.root)
				var either []string
				if len(need) == 0 {
					// A rule that is one OR over several fields (Image ends with x or
					// OriginalFileName is x) needs none of them: a stricter rule tests at
					// least one.
					if either = orFields(b.root); either == nil {
						continue // only negations: too weak to relate usefully
					}
				}
				keys := groupKeys(b)
				if len(keys) > 1 || either != nil {
					clear(seen)
				}
				for _, k := range keys {
					g := groups[k]
					var cands [][]*Form
					best := ""
					if either != nil {
						for _, fld := range either {
							cands = append(cands, g.byField[fld])
						}
					} else {
						for fld := range need {
							if best == "" || len(g.byField[fld]) < len(g.byField[best]) || len(g.byField[fld]) == len(g.byField[best]) && fld < best {
								best = fld
							}
						}
						cands = [][]*Form{g.byField[best]}
					}
					for _, list := range cands {
						for _, a := range list { // a is the candidate stricter rule
							if a == b || a.Canonical == b.Canonical || !subset(need, fieldsOf[a]) || !withinEvents(a, b) {
								continue
							}
							if len(keys) > 1 || either != nil {
								if seen[a] {
									continue
								}
								seen[a] = true
							}
							// The anchor conjunct on the rarest field rejects most candidates cheaply.
							if best != "" && !implies(a.root, anchor[best]) || !implies(a.root, b.root) {
								continue
							}
							out = append(out, pair{a: a, b: b, equiv: withinEvents(b, a) && implies(b.root, a.root)})
						}
					}
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
	var all []pair
	for out := range results {
		all = append(all, out...)
	}
	return all
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

// orFields are the fields of n when n is an OR whose alternatives each test one field
// positively; nil otherwise.
func orFields(n *cnode) []string {
	if n.op != cOr {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range n.kids {
		f, ok := singleField(k)
		if !ok {
			return nil
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
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
// Across telemetry concrete events do not compare (a Defender process event is no
// Sysmon 1 event): the field-map tier assumes the telemetries record the same
// activity, so sharing a known log source class (the search groups by it) is enough.
func withinEvents(a, b *Form) bool {
	if a.Telemetry != b.Telemetry {
		return a.Class != "" && a.Class == b.Class
	}
	if a.Events == nil || b.Events == nil {
		return a.Events == nil && b.Events == nil
	}
	return subset(a.Events, b.Events)
}
