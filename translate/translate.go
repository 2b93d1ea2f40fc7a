// Package translate writes a single-event rule of any language as a rule of another:
// Sigma YAML, a KQL query, an ESCU-style SPL detection, an Elastic EQL or ES|QL rule, or
// a YARA-L rule. It works on the IR, never on rule text: the source rule's predicates
// are first put on canonical (Sigma) field names through the field map, then written
// with the target schema's field names and the target language's operators.
//
// What cannot be said exactly in the target is never dropped silently: Translate fails
// with the reason (a glob KQL cannot express, a case-sensitive test inside an SPL
// tstats search, a field the target schema has no column for), or, with Options.Lossy,
// succeeds and lists what it left out. A translation is only emitted once it is proved:
// Verify parses it back with ruledex's own parser for the target and compares the two
// canonical forms (package neighbors), as neighbors does when it calls rules equivalent.
package translate

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/neighbors"
	"github.com/ruledex/ruledex/rule"
)

// Target is a language a rule can be written in. Elastic has two query languages, so
// the targets are finer than rule.Language.
type Target string

const (
	Sigma Target = "sigma"
	KQL   Target = "kql"
	SPL   Target = "spl"
	EQL   Target = "eql"
	ESQL  Target = "esql"
	YaraL Target = "yaral"
)

// Targets lists every target in the order pages show them.
var Targets = []Target{Sigma, KQL, SPL, EQL, ESQL, YaraL}

// ParseTarget accepts a target name as users type it.
func ParseTarget(s string) (Target, bool) {
	switch strings.ToLower(s) {
	case "sigma":
		return Sigma, true
	case "kql", "kusto", "sentinel", "defender":
		return KQL, true
	case "spl", "splunk":
		return SPL, true
	case "eql", "elastic":
		return EQL, true
	case "esql", "es|ql":
		return ESQL, true
	case "yaral", "yara-l", "chronicle", "secops":
		return YaraL, true
	}
	return "", false
}

// Language is the rule language a target's output is read back as.
func (t Target) Language() rule.Language {
	switch t {
	case KQL:
		return rule.Kusto
	case SPL:
		return rule.Splunk
	case EQL, ESQL:
		return rule.Elastic
	case YaraL:
		return rule.YaraL
	}
	return rule.Sigma
}

// Display is the target's name on pages.
func (t Target) Display() string {
	switch t {
	case KQL:
		return "KQL"
	case SPL:
		return "SPL"
	case EQL:
		return "EQL"
	case ESQL:
		return "ES|QL"
	case YaraL:
		return "YARA-L"
	}
	return "Sigma"
}

// Options tune a translation.
type Options struct {
	// Schema picks a target schema other than the default (see Schemas).
	Schema string
	// Lossy lets a translation drop what the target cannot express; Result.Dropped
	// lists it. Without it such a rule is not translated.
	Lossy bool
}

// Result is one translation.
type Result struct {
	Target Target `json:"target"`
	Schema string `json:"schema"`
	// File is a complete rule file in the target's usual format; Query just the query.
	File  string `json:"file"`
	Query string `json:"query"`
	// Ext is the file name extension the target's repositories use.
	Ext string `json:"ext"`
	// Assumptions name the field-map equivalences the translation rests on
	// ("Image = FolderPath (DeviceProcessEvents)").
	Assumptions []string `json:"assumptions,omitempty"`
	// Dropped lists what a lossy translation left out; empty when exact.
	Dropped []string `json:"dropped,omitempty"`
	// Verified is set by Verify once the output was read back and found equal.
	Verified bool `json:"verified"`
}

// Error says why a rule cannot be translated; Reason is short enough for a table.
type Error struct {
	Target Target
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cannot write as %s: %s", e.Target.Display(), e.Reason)
}

func fail(t Target, format string, args ...any) error {
	return &Error{Target: t, Reason: fmt.Sprintf(format, args...)}
}

// Translate writes r in target t.
func Translate(fm *fieldmap.Map, r *rule.Rule, t Target, opts Options) (*Result, error) {
	src, err := prepare(fm, r, t)
	if err != nil {
		return nil, err
	}
	return write(fm, r, src, t, opts)
}

// Outcome is one target's translation of a rule, or why there is none.
type Outcome struct {
	Target Target
	Result *Result // nil when Err is set
	Err    error
}

// All translates r into every target with its default schema and verifies each with
// read, as a rule page shows them. The rule is put on canonical fields once.
func All(fm *fieldmap.Map, r *rule.Rule, read Reader) []Outcome {
	out := make([]Outcome, len(Targets))
	src, perr := prepare(fm, r, Sigma)
	for i, t := range Targets {
		out[i].Target = t
		if perr != nil {
			var te *Error
			if errors.As(perr, &te) {
				perr = &Error{Target: t, Reason: te.Reason}
			}
			out[i].Err = perr
			continue
		}
		res, err := write(fm, r, src, t, Options{})
		if err == nil {
			err = Verify(fm, r, res, read)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Result = res
	}
	return out
}

func write(fm *fieldmap.Map, r *rule.Rule, src *prepared, t Target, opts Options) (*Result, error) {
	sc, err := schemaFor(t, opts.Schema)
	if err != nil {
		return nil, err
	}
	info, ok := categories[src.category]
	if !ok {
		return nil, fail(t, "log source %s has no %s equivalent in ruledex's schemas", src.category, t.Display())
	}
	w := &writer{fm: fm, t: t, sc: sc, cat: info, lossy: opts.Lossy, assumed: map[string]bool{}}
	w.readCtx = fieldmap.Contexts(&rule.Rule{Language: t.Language(), LogSource: sc.logSource(info, src.category)})
	q, err := sc.write(w, src)
	if err != nil {
		return nil, err
	}
	res := &Result{Target: t, Schema: sc.name, Query: q, Ext: sc.ext, Dropped: w.dropped}
	res.File = sc.file(w, r, src, q)
	for a := range w.assumed {
		res.Assumptions = append(res.Assumptions, a)
	}
	sort.Strings(res.Assumptions)
	return res, nil
}

// prepared is a rule prepared for writing: its logic on canonical field names.
type prepared struct {
	category string // Sigma category: process_creation, file_event, ...
	root     *node
}

// node is the logic in canonical terms: And/Or/Not over preds.
type node struct {
	op   rule.Op // OpAnd, OpOr, OpNot, OpPred
	kids []*node
	p    *rule.Pred // Field is the canonical (Sigma) name; Kind In is folded into Eq
}

// prepare checks that r is a single-event rule and puts its logic on canonical fields.
func prepare(fm *fieldmap.Map, r *rule.Rule, t Target) (*prepared, error) {
	if r.HasErrors() {
		return nil, fail(t, "the rule has parse errors")
	}
	if r.Correlation != nil {
		return nil, fail(t, "a correlation over other rules (translation covers single-event rules)")
	}
	form := neighbors.NewForm(fm, r, neighbors.Options{})
	if form.Shape != neighbors.ShapeSingle {
		return nil, fail(t, "its shape is %s (translation covers single-event rules)", form.Shape)
	}
	if r.Root == nil {
		return nil, fail(t, "the rule has no event filter")
	}
	if len(r.Computed) > 0 {
		for _, c := range r.Computed {
			if usesField(r.Root, c.Name) {
				return nil, fail(t, "it tests the computed column %s = %s", c.Name, c.Definition)
			}
		}
	}
	cls := neighbors.Class(r)
	cat := ""
	if i := strings.LastIndexByte(cls, '/'); i >= 0 && strings.HasPrefix(cls, "windows/") && !strings.Contains(cls, "+") {
		cat = cls[i+1:]
	}
	if cat == "" || strings.HasPrefix(cat, "svc:") {
		return nil, fail(t, "its log source (%s) is not one ruledex can place in another language", orNone(cls))
	}
	c := &canon{fm: fm, ctx: fieldmap.Contexts(r), t: t, sigma: r.Language == rule.Sigma}
	root, err := c.node(fieldmap.ScopeRoot(r))
	if err != nil {
		return nil, err
	}
	return &prepared{category: cat, root: root}, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func usesField(n *rule.Node, f string) bool {
	for _, pp := range rule.Preds(n) {
		if strings.EqualFold(pp.Pred.Field, f) {
			return true
		}
	}
	return false
}

// canon puts IR logic on canonical fields.
type canon struct {
	fm    *fieldmap.Map
	ctx   []string
	t     Target
	sigma bool
}

func (c *canon) node(n *rule.Node) (*node, error) {
	switch n.Op {
	case rule.OpPred:
		return c.pred(n.Pred)
	case rule.OpRef:
		if len(n.Children) != 1 {
			return nil, fail(c.t, "selection %s has no body", n.Name)
		}
		return c.node(n.Children[0])
	case rule.OpAnd, rule.OpOr, rule.OpQuant:
		op := n.Op
		if op == rule.OpQuant {
			op = rule.OpOr
			if n.Quant == "all" {
				op = rule.OpAnd
			}
		}
		out := &node{op: op}
		for _, k := range n.Children {
			if k.Op == rule.OpTrue && op == rule.OpAnd {
				continue
			}
			m, err := c.node(k)
			if err != nil {
				return nil, err
			}
			out.kids = append(out.kids, m)
		}
		if len(out.kids) == 0 {
			return nil, fail(c.t, "an empty %s group", op)
		}
		if len(out.kids) == 1 {
			return out.kids[0], nil
		}
		return out, nil
	case rule.OpNot:
		if len(n.Children) != 1 {
			return nil, fail(c.t, "a malformed negation")
		}
		k, err := c.node(n.Children[0])
		if err != nil {
			return nil, err
		}
		return &node{op: rule.OpNot, kids: []*node{k}}, nil
	case rule.OpTrue:
		return nil, fail(c.t, "a test that always holds (an empty selection)")
	}
	return nil, fail(c.t, "a part ruledex could not read: %s", clip(n.Text))
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// pred resolves the field and normalizes the test. A name-only column (FileName,
// process.name) becomes a test on the path field only where the two are exactly
// equivalent: name == x is path ends_with \x.
func (c *canon) pred(p *rule.Pred) (*node, error) {
	q := *p
	q.Values = append([]rule.Value(nil), p.Values...)
	if q.Kind == rule.In {
		q.Kind = rule.Eq
	}
	if q.Kind == rule.Keyword || q.Field == "" {
		return &node{op: rule.OpPred, p: &q}, nil
	}
	e, known := c.fm.Exact(c.ctx, q.Field)
	switch {
	case known:
		q.Field = e.Canonical
	case !c.sigma:
		return nil, fail(c.t, "field %s has no entry in the field map, so its meaning in other schemas is unknown", p.Field)
	}
	if known && e.NameOnly {
		for i, v := range q.Values {
			switch {
			case v.Wild || strings.Contains(v.S, `\`):
				return nil, fail(c.t, "%s %s %q: a file-name column tested in a way no path test equals", p.Field, p.Kind, v.S)
			case q.Kind == rule.Eq:
				q.Values[i].S = `\` + v.S
			case q.Kind == rule.EndsW:
			default:
				return nil, fail(c.t, "%s %s %q: a file-name column tested in a way no path test equals", p.Field, p.Kind, v.S)
			}
		}
		if q.Kind == rule.Eq {
			q.Kind = rule.EndsW
		}
	}
	return &node{op: rule.OpPred, p: &q}, nil
}

// ReasonClass groups a translation failure by its reason's shape, without the field or
// value it names, for summaries ("KQL has no wildcard match for").
func ReasonClass(err error) string {
	s := err.Error()
	var te *Error
	if errors.As(err, &te) {
		s = te.Reason
	}
	if i := strings.Index(s, ": "); i > 0 && i < 40 {
		s = s[i+2:]
	}
	if i := strings.IndexAny(s, "\"(%\n"); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// FileName is the name a translation is written under by `convert --all`: the title
// as an identifier plus the start of the rule id, so two rules never share a file.
func FileName(r *rule.Rule, res *Result) string {
	id := r.ID
	if len(id) > 8 {
		id = id[:8]
	}
	return slug(r.Title) + "_" + slug(id) + res.Ext
}
