package hunt

import (
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"

	"github.com/ruledex/ruledex/rule"
)

// The rule cache's own encoding. gob spent about 0.18 CPU-seconds decoding the 2,400
// SigmaHQ Windows rules, a third of a hunt's start-up: it reflects over every field and
// allocates every string again, though most are repeats (each predicate's Pos.File is
// the rule's path, 44% of the bytes; field names, kinds and transforms recur across
// rules). Here every distinct string of a shard is written once, in a table read
// before the entries, and everything else is a varint: decoding is a walk over bytes.
//
// Every field of every IR type a rule holds is written; TestCodecCoversIR fails when
// the IR gains a field this file does not know.

// encoder writes a shard's entries to body while it collects their strings.
type encoder struct {
	body  []byte
	index map[string]uint64
	table []string
}

func newEncoder() *encoder { return &encoder{index: map[string]uint64{}} }

// shard is the table followed by the body.
func (e *encoder) shard(entries int) []byte {
	n := 0
	for _, s := range e.table {
		n += len(s) + binary.MaxVarintLen32
	}
	out := make([]byte, 0, 2*binary.MaxVarintLen64+n+len(e.body))
	out = binary.AppendUvarint(out, uint64(entries))
	out = binary.AppendUvarint(out, uint64(len(e.table)))
	for _, s := range e.table {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	return append(out, e.body...)
}

func (e *encoder) uint(v int) { e.body = binary.AppendUvarint(e.body, uint64(v)) }
func (e *encoder) int(v int)  { e.body = binary.AppendVarint(e.body, int64(v)) }

func (e *encoder) bool(b bool) {
	if b {
		e.body = append(e.body, 1)
	} else {
		e.body = append(e.body, 0)
	}
}

// str writes 0 for "", else 1 + the string's place in the table.
func (e *encoder) str(s string) {
	if s == "" {
		e.uint(0)
		return
	}
	i, ok := e.index[s]
	if !ok {
		i = uint64(len(e.table)) + 1
		e.index[s] = i
		e.table = append(e.table, s)
	}
	e.body = binary.AppendUvarint(e.body, i)
}

func (e *encoder) strs(ss []string) {
	e.uint(len(ss))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) strMap(m map[string]string) {
	e.uint(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.str(k)
		e.str(m[k])
	}
}

func (e *encoder) pos(p rule.Pos) {
	e.str(p.File)
	e.int(p.Line)
	e.int(p.Col)
}

func (e *encoder) entry(path string, sum [32]byte, p parsed) {
	e.str(path)
	e.body = append(e.body, sum[:]...)
	e.strs(p.errs)
	e.strs(p.warns)
	e.uint(len(p.rules))
	for _, r := range p.rules {
		e.rule(r)
	}
}

func (e *encoder) rule(r *rule.Rule) {
	e.str(r.ID)
	e.str(string(r.Language))
	s := &r.Source
	e.str(s.Repo)
	e.str(s.RepoURL)
	e.str(s.Path)
	e.int(s.Line)
	e.int(s.Index)
	e.str(s.Commit)
	e.str(s.UpstreamURL)
	e.str(r.Name)
	e.str(r.Title)
	e.str(r.Description)
	e.str(r.Status)
	e.str(r.Severity)
	e.str(string(r.Class))
	e.str(r.Type)
	e.strs(r.Authors)
	e.str(r.Date)
	e.str(r.Modified)
	e.strs(r.References)
	e.strs(r.Tags)
	e.strs(r.Tactics)
	e.strs(r.Techniques)
	l := &r.LogSource
	e.str(l.Product)
	e.str(l.Category)
	e.str(l.Service)
	e.str(l.Definition)
	e.strs(l.Tables)
	e.strs(l.DataModels)
	e.strs(l.DataSources)
	e.strs(l.Indexes)
	e.strs(l.EventTypes)
	e.strs(r.FalsePositives)
	e.uint(len(r.Related))
	for _, x := range r.Related {
		e.str(x.ID)
		e.str(x.Type)
	}
	e.str(r.Body)
	e.str(r.BodyLang)
	e.uint(len(r.Bodies))
	for _, x := range r.Bodies {
		e.str(x.Label)
		e.str(x.Body)
		e.str(x.Lang)
	}
	e.str(r.Condition)
	e.node(r.Root)
	// A stage's Node is usually a conjunct of Root, shared: it is written as its path
	// from Root so that the decoded rule shares it again.
	paths := map[*rule.Node][]int{}
	var walk func(n *rule.Node, path []int)
	walk = func(n *rule.Node, path []int) {
		if _, seen := paths[n]; n == nil || seen {
			return
		}
		paths[n] = path
		for i, c := range n.Children {
			walk(c, append(path[:len(path):len(path)], i))
		}
	}
	walk(r.Root, nil)
	e.uint(len(r.Stages))
	for i := range r.Stages {
		st := &r.Stages[i]
		e.int(st.Index)
		e.int(st.Alt)
		e.str(string(st.Kind))
		e.str(st.Label)
		e.bool(st.Negated)
		e.str(st.Op)
		e.str(st.Text)
		if p, ok := paths[st.Node]; ok && st.Node != nil {
			e.uint(stageInRoot)
			e.uint(len(p))
			for _, k := range p {
				e.uint(k)
			}
		} else {
			e.uint(stageOwnNode)
			e.node(st.Node)
		}
		e.bool(st.Aggregation != nil)
		if a := st.Aggregation; a != nil {
			e.str(a.Func)
			e.str(a.Field)
			e.strs(a.GroupBy)
			e.str(a.Op)
			e.str(a.Value)
			e.str(a.Timespan)
		}
		e.pos(st.Pos)
	}
	e.str(r.Timeframe)
	e.str(r.Frequency)
	e.strs(r.GroupBy)
	e.bool(r.Correlation != nil)
	if c := r.Correlation; c != nil {
		e.str(c.Type)
		e.strs(c.Rules)
		e.strs(c.GroupBy)
		e.str(c.Timespan)
		e.uint(len(c.Conditions))
		for _, t := range c.Conditions {
			e.str(t.Op)
			e.body = binary.LittleEndian.AppendUint64(e.body, math.Float64bits(t.Value))
		}
		e.str(c.Field)
		e.uint(len(c.Aliases))
		for _, k := range slices.Sorted(maps.Keys(c.Aliases)) {
			e.str(k)
			e.strMap(c.Aliases[k])
		}
		e.bool(c.Generate)
	}
	e.strs(r.Outputs)
	e.uint(len(r.Params))
	for _, p := range r.Params {
		e.str(p.Name)
		e.str(p.Value)
		e.pos(p.Pos)
	}
	e.uint(len(r.Indicators))
	for _, x := range r.Indicators {
		e.str(x.Field)
		e.str(x.Canonical)
		e.str(string(x.Kind))
		e.str(x.Value)
		e.str(x.Key)
		e.strs(x.Transforms)
		e.bool(x.Negated)
		e.int(x.Stage)
	}
	e.uint(len(r.Diagnostics))
	for _, d := range r.Diagnostics {
		e.str(string(d.Severity))
		e.str(d.Code)
		e.pos(d.Pos)
		e.str(d.Message)
	}
	e.strMap(r.Extra)
	e.int(r.RiskScore)
	e.uint(len(r.Settings))
	for _, x := range r.Settings {
		e.str(x.Name)
		e.str(x.Value)
	}
	e.uint(len(r.Docs))
	for _, x := range r.Docs {
		e.str(x.Title)
		e.str(x.Markdown)
	}
	e.uint(len(r.Computed))
	for _, x := range r.Computed {
		e.str(x.Name)
		e.str(x.Definition)
		e.int(x.Stage)
	}
}

const (
	stageOwnNode = 0
	stageInRoot  = 1
)

func (e *encoder) node(n *rule.Node) {
	e.bool(n != nil)
	if n == nil {
		return
	}
	e.str(string(n.Op))
	e.uint(len(n.Children))
	for _, c := range n.Children {
		e.node(c)
	}
	e.bool(n.Pred != nil)
	if p := n.Pred; p != nil {
		e.str(p.Field)
		e.str(string(p.Kind))
		e.uint(len(p.Values))
		for _, v := range p.Values {
			e.str(v.S)
			e.str(string(v.Type))
			e.bool(v.Wild)
		}
		e.bool(p.All)
		e.strs(p.Transforms)
		e.str(p.Native)
		e.pos(p.Pos)
	}
	e.str(n.Name)
	e.str(n.Quant)
	e.str(n.Text)
	e.pos(n.Pos)
}

// errDamaged is what any malformed shard gives: the cache is then ignored and rebuilt.
var errDamaged = errors.New("damaged rule cache")

// decoder reads a shard. A read past the end or a bad reference sets err and returns
// zero values, so that the callers check err once per entry.
type decoder struct {
	b     []byte
	table []string
	err   error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errDamaged
	}
	d.b = nil
}

func (d *decoder) uint() int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > math.MaxInt32 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) int() int {
	v, n := binary.Varint(d.b)
	if n <= 0 || v > math.MaxInt32 || v < math.MinInt32 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

// count reads a length, each element taking at least one byte: a damaged length
// never allocates more than the shard could hold.
func (d *decoder) count() int {
	n := d.uint()
	if n > len(d.b) {
		d.fail()
		return 0
	}
	return n
}

func (d *decoder) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) str() string {
	i := d.uint()
	if i == 0 {
		return ""
	}
	if i > len(d.table) {
		d.fail()
		return ""
	}
	return d.table[i-1]
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) strMap() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) pos() rule.Pos {
	return rule.Pos{File: d.str(), Line: d.int(), Col: d.int()}
}

// decodeShard reads a shard's entries.
func decodeShard(b []byte) ([]cacheEntry, error) {
	d := &decoder{b: b}
	n := d.count()
	d.table = make([]string, d.count())
	for i := range d.table {
		l := d.count()
		if d.err != nil {
			break
		}
		d.table[i] = string(d.b[:l])
		d.b = d.b[l:]
	}
	if d.err != nil {
		return nil, d.err
	}
	es := make([]cacheEntry, n)
	for i := range es {
		e := &es[i]
		e.Path = d.str()
		if len(d.b) < len(e.Sum) {
			return nil, errDamaged
		}
		d.b = d.b[copy(e.Sum[:], d.b):]
		e.errs = d.strs()
		e.warns = d.strs()
		if k := d.count(); k > 0 {
			e.rules = make([]*rule.Rule, k)
			for j := range e.rules {
				e.rules[j] = d.rule()
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if len(d.b) != 0 {
		return nil, errDamaged
	}
	return es, nil
}

func (d *decoder) rule() *rule.Rule {
	r := &rule.Rule{}
	r.ID = d.str()
	r.Language = rule.Language(d.str())
	s := &r.Source
	s.Repo = d.str()
	s.RepoURL = d.str()
	s.Path = d.str()
	s.Line = d.int()
	s.Index = d.int()
	s.Commit = d.str()
	s.UpstreamURL = d.str()
	r.Name = d.str()
	r.Title = d.str()
	r.Description = d.str()
	r.Status = d.str()
	r.Severity = d.str()
	r.Class = rule.Class(d.str())
	r.Type = d.str()
	r.Authors = d.strs()
	r.Date = d.str()
	r.Modified = d.str()
	r.References = d.strs()
	r.Tags = d.strs()
	r.Tactics = d.strs()
	r.Techniques = d.strs()
	l := &r.LogSource
	l.Product = d.str()
	l.Category = d.str()
	l.Service = d.str()
	l.Definition = d.str()
	l.Tables = d.strs()
	l.DataModels = d.strs()
	l.DataSources = d.strs()
	l.Indexes = d.strs()
	l.EventTypes = d.strs()
	r.FalsePositives = d.strs()
	if n := d.count(); n > 0 {
		r.Related = make([]rule.Related, n)
		for i := range r.Related {
			r.Related[i] = rule.Related{ID: d.str(), Type: d.str()}
		}
	}
	r.Body = d.str()
	r.BodyLang = d.str()
	if n := d.count(); n > 0 {
		r.Bodies = make([]rule.Variant, n)
		for i := range r.Bodies {
			r.Bodies[i] = rule.Variant{Label: d.str(), Body: d.str(), Lang: d.str()}
		}
	}
	r.Condition = d.str()
	r.Root = d.node()
	if n := d.count(); n > 0 {
		r.Stages = make([]rule.Stage, n)
		for i := range r.Stages {
			st := &r.Stages[i]
			st.Index = d.int()
			st.Alt = d.int()
			st.Kind = rule.StageKind(d.str())
			st.Label = d.str()
			st.Negated = d.bool()
			st.Op = d.str()
			st.Text = d.str()
			switch d.uint() {
			case stageInRoot:
				n := r.Root
				for range d.count() {
					k := d.uint()
					if n == nil || k >= len(n.Children) {
						d.fail()
						return r
					}
					n = n.Children[k]
				}
				st.Node = n
			case stageOwnNode:
				st.Node = d.node()
			default:
				d.fail()
			}
			if d.bool() {
				st.Aggregation = &rule.Aggregation{Func: d.str(), Field: d.str(), GroupBy: d.strs(), Op: d.str(), Value: d.str(), Timespan: d.str()}
			}
			st.Pos = d.pos()
		}
	}
	r.Timeframe = d.str()
	r.Frequency = d.str()
	r.GroupBy = d.strs()
	if d.bool() {
		c := &rule.Correlation{}
		c.Type = d.str()
		c.Rules = d.strs()
		c.GroupBy = d.strs()
		c.Timespan = d.str()
		if n := d.count(); n > 0 {
			c.Conditions = make([]rule.Threshold, n)
			for i := range c.Conditions {
				c.Conditions[i].Op = d.str()
				if len(d.b) < 8 {
					d.fail()
					return r
				}
				c.Conditions[i].Value = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
				d.b = d.b[8:]
			}
		}
		c.Field = d.str()
		if n := d.count(); n > 0 {
			c.Aliases = make(map[string]map[string]string, n)
			for range n {
				k := d.str()
				c.Aliases[k] = d.strMap()
			}
		}
		c.Generate = d.bool()
		r.Correlation = c
	}
	r.Outputs = d.strs()
	if n := d.count(); n > 0 {
		r.Params = make([]rule.Param, n)
		for i := range r.Params {
			r.Params[i] = rule.Param{Name: d.str(), Value: d.str(), Pos: d.pos()}
		}
	}
	if n := d.count(); n > 0 {
		r.Indicators = make([]rule.Indicator, n)
		for i := range r.Indicators {
			r.Indicators[i] = rule.Indicator{Field: d.str(), Canonical: d.str(), Kind: rule.Kind(d.str()), Value: d.str(),
				Key: d.str(), Transforms: d.strs(), Negated: d.bool(), Stage: d.int()}
		}
	}
	if n := d.count(); n > 0 {
		r.Diagnostics = make([]rule.Diagnostic, n)
		for i := range r.Diagnostics {
			r.Diagnostics[i] = rule.Diagnostic{Severity: rule.Severity(d.str()), Code: d.str(), Pos: d.pos(), Message: d.str()}
		}
	}
	r.Extra = d.strMap()
	r.RiskScore = d.int()
	if n := d.count(); n > 0 {
		r.Settings = make([]rule.Setting, n)
		for i := range r.Settings {
			r.Settings[i] = rule.Setting{Name: d.str(), Value: d.str()}
		}
	}
	if n := d.count(); n > 0 {
		r.Docs = make([]rule.Doc, n)
		for i := range r.Docs {
			r.Docs[i] = rule.Doc{Title: d.str(), Markdown: d.str()}
		}
	}
	if n := d.count(); n > 0 {
		r.Computed = make([]rule.Computed, n)
		for i := range r.Computed {
			r.Computed[i] = rule.Computed{Name: d.str(), Definition: d.str(), Stage: d.int()}
		}
	}
	return r
}

// maxDepth bounds a damaged cache's nesting: the parsers' own trees are far shallower.
const maxDepth = 10_000

func (d *decoder) node() *rule.Node { return d.nodeAt(0) }

func (d *decoder) nodeAt(depth int) *rule.Node {
	if !d.bool() {
		return nil
	}
	if depth > maxDepth {
		d.fail()
		return nil
	}
	n := &rule.Node{Op: rule.Op(d.str())}
	if k := d.count(); k > 0 {
		n.Children = make([]*rule.Node, k)
		for i := range n.Children {
			n.Children[i] = d.nodeAt(depth + 1)
		}
	}
	if d.bool() {
		p := &rule.Pred{Field: d.str(), Kind: rule.Kind(d.str())}
		if k := d.count(); k > 0 {
			p.Values = make([]rule.Value, k)
			for i := range p.Values {
				p.Values[i] = rule.Value{S: d.str(), Type: rule.ValueType(d.str()), Wild: d.bool()}
			}
		}
		p.All = d.bool()
		p.Transforms = d.strs()
		p.Native = d.str()
		p.Pos = d.pos()
		n.Pred = p
	}
	n.Name = d.str()
	n.Quant = d.str()
	n.Text = d.str()
	n.Pos = d.pos()
	return n
}
