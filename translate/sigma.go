package translate

import (
	"crypto/sha1"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

// sigmaDoc is the detection being built: named selections and the condition.
type sigmaDoc struct {
	w     *writer
	names []string
	sels  map[string]*yaml.Node
	n     int
}

// writeSigma returns the detection block (selections and condition) as YAML text;
// sigmaFile wraps it into a complete rule.
func writeSigma(w *writer, src *prepared) (string, error) {
	d := &sigmaDoc{w: w, sels: map[string]*yaml.Node{}}
	cond, err := d.top(src.root)
	if err != nil {
		return "", err
	}
	det := mapping()
	for _, name := range d.names {
		addKV(det, name, d.sels[name])
	}
	addKV(det, "condition", scalar(cond))
	b, err := yaml.Marshal(wrapDoc(mapping("detection", det)))
	if err != nil {
		return "", fail(w.t, "yaml: %v", err)
	}
	return string(b), nil
}

// top writes the root: positive single tests on distinct keys share one selection,
// the way people write Sigma; everything else gets a selection or filter of its own.
func (d *sigmaDoc) top(n *node) (string, error) {
	kids := []*node{n}
	if n.op == rule.OpAnd {
		kids = n.kids
	}
	main := mapping()
	d.add("selection", main) // first, as people write it; dropped below if it stays empty
	used := map[string]bool{}
	var rest []string
	for _, k := range kids {
		if k.op == rule.OpPred {
			key, val, err := d.item(k.p)
			if err != nil {
				return "", err
			}
			if key != "" && !used[key] {
				used[key] = true
				addKV(main, key, val)
				continue
			}
		}
		c, err := d.cond(k)
		if err != nil {
			return "", err
		}
		rest = append(rest, c)
	}
	var parts []string
	if len(main.Content) > 0 {
		parts = append(parts, "selection")
	} else {
		d.names = d.names[1:]
		delete(d.sels, "selection")
	}
	parts = append(parts, rest...)
	return strings.Join(parts, " and "), nil
}

func (d *sigmaDoc) add(name string, v *yaml.Node) string {
	d.names = append(d.names, name)
	d.sels[name] = v
	return name
}

func (d *sigmaDoc) fresh(prefix string) string {
	d.n++
	return fmt.Sprintf("%s_%d", prefix, d.n)
}

// cond writes n as a condition expression, adding the selections it needs.
func (d *sigmaDoc) cond(n *node) (string, error) {
	switch n.op {
	case rule.OpPred:
		if n.p.Kind == rule.Keyword {
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for _, v := range n.p.Values {
				seq.Content = append(seq.Content, sigmaValue(v, true))
			}
			return d.add(d.fresh("keywords"), seq), nil
		}
		key, val, err := d.item(n.p)
		if err != nil {
			return "", err
		}
		return d.add(d.fresh("selection"), mapping(key, val)), nil
	case rule.OpNot:
		if k := n.kids[0]; k.op == rule.OpPred || k.op == rule.OpOr && allPreds(k) {
			c, err := d.cond(k)
			if err != nil {
				return "", err
			}
			// A filter reads better under its own prefix.
			name := strings.Replace(c, "selection", "filter", 1)
			if name != c {
				d.sels[name] = d.sels[c]
				d.names[len(d.names)-1] = name
			}
			return "not " + name, nil
		}
		c, err := d.cond(n.kids[0])
		if err != nil {
			return "", err
		}
		return "not " + c, nil
	case rule.OpOr:
		if allPreds(n) {
			// A list of maps is an OR in Sigma.
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for _, k := range n.kids {
				key, val, err := d.item(k.p)
				if err != nil {
					return "", err
				}
				if k.p.Kind == rule.Keyword {
					return d.or(n)
				}
				seq.Content = append(seq.Content, mapping(key, val))
			}
			return d.add(d.fresh("selection"), seq), nil
		}
		return d.or(n)
	case rule.OpAnd:
		if allPreds(n) {
			m := mapping()
			used := map[string]bool{}
			ok := true
			for _, k := range n.kids {
				key, val, err := d.item(k.p)
				if err != nil {
					return "", err
				}
				if key == "" || used[key] {
					ok = false
					break
				}
				used[key] = true
				addKV(m, key, val)
			}
			if ok {
				return d.add(d.fresh("selection"), m), nil
			}
		}
		parts := make([]string, 0, len(n.kids))
		for _, k := range n.kids {
			c, err := d.cond(k)
			if err != nil {
				return "", err
			}
			parts = append(parts, c)
		}
		return "(" + strings.Join(parts, " and ") + ")", nil
	}
	return "", fail(d.w.t, "unexpected %s node", n.op)
}

func (d *sigmaDoc) or(n *node) (string, error) {
	parts := make([]string, 0, len(n.kids))
	for _, k := range n.kids {
		c, err := d.cond(k)
		if err != nil {
			return "", err
		}
		parts = append(parts, c)
	}
	return "(" + strings.Join(parts, " or ") + ")", nil
}

func allPreds(n *node) bool {
	for _, k := range n.kids {
		if k.op != rule.OpPred || k.p.Kind == rule.Keyword {
			return false
		}
	}
	return true
}

// sigmaMods are the modifiers that state a kind.
var sigmaMods = map[rule.Kind]string{
	rule.Match: "contains", rule.StartsW: "startswith", rule.EndsW: "endswith", rule.Regex: "re",
	rule.CIDR: "cidr", rule.Gt: "gt", rule.Ge: "gte", rule.Lt: "lt", rule.Le: "lte",
	rule.FieldRef: "fieldref", rule.Ne: "neq", rule.IsNotNull: "exists",
}

// item writes one predicate as a `Field|mods: values` pair.
func (d *sigmaDoc) item(p *rule.Pred) (string, *yaml.Node, error) {
	if p.Kind == rule.Keyword {
		return "", nil, nil
	}
	as, _, err := d.w.place(p, true)
	if err != nil {
		return "", nil, err
	}
	mods := []string{p.Field}
	for _, t := range p.Transforms {
		if rule.IsEncoding(t) {
			mods = append(mods, t)
		}
	}
	switch p.Kind {
	case rule.Eq, rule.Glob, rule.IsNull:
	case rule.Term, rule.TermPrefix, rule.TermSuffix:
		return "", nil, fail(d.w.t, "%s %s: Sigma has no whole-term match (KQL has)", p.Field, p.Kind)
	default:
		m, ok := sigmaMods[p.Kind]
		if !ok {
			return "", nil, fail(d.w.t, "%s: Sigma has no %s test", p.Field, p.Kind)
		}
		mods = append(mods, m)
	}
	for _, f := range strings.Split(as[0].flags, "") {
		if f != "" {
			mods = append(mods, f)
		}
	}
	if p.All && len(as) > 1 {
		mods = append(mods, "all")
	}
	if p.Cased() && p.Kind != rule.Regex {
		mods = append(mods, "cased")
	}
	raw := p.Kind == rule.Regex || p.Kind == rule.CIDR || p.Kind == rule.FieldRef
	var vals []*yaml.Node
	for _, a := range as {
		switch {
		case p.Kind == rule.IsNotNull:
			vals = append(vals, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		case a.kind == rule.IsNull:
			vals = append(vals, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"})
		default:
			vals = append(vals, sigmaValue(a.v, !raw))
		}
	}
	if len(vals) == 1 {
		return strings.Join(mods, "|"), vals[0], nil
	}
	return strings.Join(mods, "|"), &yaml.Node{Kind: yaml.SequenceNode, Content: vals}, nil
}

// sigmaValue writes a value: glob patterns are Sigma's own syntax; literals get their
// wildcards and the backslashes before them escaped (escape is false for regexes).
func sigmaValue(v rule.Value, escape bool) *yaml.Node {
	if v.Type == rule.Number {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: v.S}
	}
	s := v.S
	if escape && !v.Wild {
		s = escapeSigma(s)
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.SingleQuotedStyle}
}

// escapeSigma escapes a literal for Sigma: `*` and `?` always, and a backslash when
// the next character would otherwise make it an escape.
func escapeSigma(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '*', '?':
			b.WriteByte('\\')
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				b.WriteByte('\\')
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sigmaFile writes a complete SigmaHQ-style rule around the detection.
func sigmaFile(w *writer, r *rule.Rule, src *prepared, det string) string {
	doc := mapping()
	addKV(doc, "title", scalar(oneLine(r.Title)))
	addKV(doc, "id", scalar(derivedUUID(r, Sigma)))
	if isUUID(r.ID) {
		addKV(doc, "related", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{
			mapping("id", scalar(r.ID), "type", scalar("derived")),
		}})
	}
	addKV(doc, "status", scalar("experimental"))
	desc := oneLine(r.Description)
	if desc == "" {
		desc = oneLine(r.Title)
	}
	addKV(doc, "description", scalar(desc))
	refs := &yaml.Node{Kind: yaml.SequenceNode}
	if r.Source.UpstreamURL != "" {
		refs.Content = append(refs.Content, scalar(r.Source.UpstreamURL))
	}
	for _, ref := range r.References {
		refs.Content = append(refs.Content, scalar(oneLine(ref)))
	}
	if len(refs.Content) > 0 {
		addKV(doc, "references", refs)
	}
	if len(r.Authors) > 0 {
		addKV(doc, "author", scalar(oneLine(strings.Join(r.Authors, ", "))+" (translated by ruledex)"))
	}
	addKV(doc, "date", scalar(time.Now().UTC().Format("2006-01-02")))
	if tags := sigmaTags(r); len(tags.Content) > 0 {
		addKV(doc, "tags", tags)
	}
	addKV(doc, "logsource", mapping("category", scalar(src.category), "product", scalar("windows")))
	var detNode yaml.Node
	if err := yaml.Unmarshal([]byte(det), &detNode); err == nil && len(detNode.Content) == 1 {
		m := detNode.Content[0]
		addKV(doc, "detection", m.Content[1])
	}
	if len(r.FalsePositives) > 0 {
		fp := &yaml.Node{Kind: yaml.SequenceNode}
		for _, f := range r.FalsePositives {
			fp.Content = append(fp.Content, scalar(oneLine(f)))
		}
		addKV(doc, "falsepositives", fp)
	}
	if lvl := sigmaLevel(r.Severity); lvl != "" {
		addKV(doc, "level", scalar(lvl))
	}
	b, err := yaml.Marshal(wrapDoc(doc))
	if err != nil {
		return ""
	}
	return "# " + strings.Join(provenance(r), "\n# ") + "\n" + string(b)
}

func sigmaTags(r *rule.Rule) *yaml.Node {
	out := &yaml.Node{Kind: yaml.SequenceNode}
	for _, t := range r.Tactics {
		out.Content = append(out.Content, scalar("attack."+strings.ReplaceAll(strings.ToLower(t), " ", "-")))
	}
	for _, t := range r.Techniques {
		out.Content = append(out.Content, scalar("attack."+strings.ToLower(t)))
	}
	return out
}

func sigmaLevel(s string) string {
	switch strings.ToLower(s) {
	case "informational", "low", "medium", "high", "critical":
		return strings.ToLower(s)
	}
	return ""
}

// derivedUUID is a stable name-based UUID (version 5 layout) for the translation of r
// into t, so that translating again gives the same id.
func derivedUUID(r *rule.Rule, t Target) string {
	h := sha1.Sum([]byte("ruledex-translation\x00" + string(r.Language) + "\x00" + r.ID + "\x00" + string(t)))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// YAML node helpers.

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func mapping(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		addKV(m, kv[i].(string), kv[i+1].(*yaml.Node))
	}
	return m
}

func addKV(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
}

func wrapDoc(n *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{n}}
}

func itoa(n int) string { return strconv.Itoa(n) }
