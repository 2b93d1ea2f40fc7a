package sigma

import (
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

// selection is one named search identifier of a detection section.
type selection struct {
	name string
	key  *yaml.Node
	val  *yaml.Node
	body *rule.Node
	// empty is why the selection has no content ("" when it has); reported once the
	// condition shows whether it is used.
	empty string
}

// detection parses a `detection:` section: its selections, condition and timeframe.
func (d *docCtx) detection(key, v *yaml.Node) {
	sels, conds, condNode := d.selections(key, v, "detection")
	d.logic(sels, conds, condNode, key)
}

// filter parses a Sigma v2 filter document's `filter:` section, which is a detection
// section plus the `rules` it applies to.
func (d *docCtx) filter(key, v *yaml.Node) {
	if v.Kind == yaml.MappingNode {
		if rs := mapGet(v, "rules"); rs != nil {
			if d.r.Extra == nil {
				d.r.Extra = map[string]string{}
			}
			d.r.Extra["filter.rules"] = nodeText(rs)
		}
	}
	sels, conds, condNode := d.selections(key, v, "filter")
	d.logic(sels, conds, condNode, key)
}

// selections reads the named selections of a detection-like mapping and its condition.
func (d *docCtx) selections(key, v *yaml.Node, section string) (sels []*selection, conds []*yaml.Node, condNode *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		d.errf(key, "sigma/detection/type", "%s must be a mapping of selections and a condition", section)
		return nil, nil, nil
	}
	byName := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolve(v.Content[i+1])
		switch {
		case k.Value == "condition":
			condNode = val
			conds = d.conditionTexts(k, val)
			continue
		case k.Value == "timeframe":
			if val != nil {
				d.r.Timeframe = val.Value
			}
			continue
		case section == "filter" && k.Value == "rules":
			continue
		}
		s := &selection{name: k.Value, key: k, val: val}
		if val == nil || (val.Kind == yaml.ScalarNode && val.Tag == "!!null") {
			s.empty = "is empty"
		} else if val.Kind == yaml.SequenceNode && len(val.Content) == 0 {
			s.empty = "is an empty list"
		}
		if s.empty != "" {
			s.body = &rule.Node{Op: rule.OpOpaque, Text: k.Value, Pos: d.pos(k)}
		} else {
			s.body = d.selectionBody(k, val)
		}
		if j, dup := byName[s.name]; dup {
			d.warnf(k, "sigma/yaml/duplicate-key", "selection %q is defined twice; the last one is used", s.name)
			sels[j] = s
			continue
		}
		byName[s.name] = len(sels)
		sels = append(sels, s)
	}
	if condNode == nil {
		d.errf(key, "sigma/condition/missing", "%s has no condition", section)
	}
	return sels, conds, condNode
}

// conditionTexts reads the condition: a string, or a list of strings (OR-ed).
func (d *docCtx) conditionTexts(k, v *yaml.Node) []*yaml.Node {
	if v == nil {
		d.errf(k, "sigma/condition/missing", "condition is empty")
		return nil
	}
	switch v.Kind {
	case yaml.ScalarNode:
		if strings.TrimSpace(v.Value) == "" || v.Tag == "!!null" {
			d.errf(v, "sigma/condition/missing", "condition is empty")
			return nil
		}
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			c = resolve(c)
			if c == nil || c.Kind != yaml.ScalarNode || strings.TrimSpace(c.Value) == "" {
				d.errf(c, "sigma/condition/type", "each condition in the list must be a string")
				continue
			}
			out = append(out, c)
		}
		return out
	}
	d.errf(v, "sigma/condition/type", "condition must be a string or a list of strings")
	return nil
}

// selectionBody builds the tree of one selection: a mapping ANDs its field items, a
// list ORs its elements (maps, or keywords), a scalar is one keyword.
func (d *docCtx) selectionBody(k, v *yaml.Node) *rule.Node {
	if v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		d.errf(k, "sigma/detection/empty", "selection %q is empty", k.Value)
		return &rule.Node{Op: rule.OpOpaque, Text: k.Value, Pos: d.pos(k)}
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.mapBody(k, v)
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			d.errf(k, "sigma/detection/empty", "selection %q is an empty list", k.Value)
			return &rule.Node{Op: rule.OpOpaque, Text: k.Value, Pos: d.pos(k)}
		}
		allScalar := true
		for _, c := range v.Content {
			if c = resolve(c); c == nil || c.Kind != yaml.ScalarNode {
				allScalar = false
			}
		}
		if allScalar {
			return d.keywords(k, v.Content)
		}
		var alts []*rule.Node
		for _, c := range v.Content {
			c = resolve(c)
			if c == nil {
				continue
			}
			switch c.Kind {
			case yaml.MappingNode:
				alts = append(alts, d.mapBody(k, c))
			case yaml.ScalarNode:
				alts = append(alts, d.keywords(k, []*yaml.Node{c}))
			default:
				d.errf(c, "sigma/detection/type", "selection %q: a list item must be a mapping or a keyword", k.Value)
				alts = append(alts, &rule.Node{Op: rule.OpOpaque, Text: nodeText(c), Pos: d.pos(c)})
			}
		}
		if len(alts) == 1 {
			return alts[0]
		}
		n := rule.Or(alts...)
		n.Pos = d.pos(v)
		return n
	case yaml.ScalarNode:
		return d.keywords(k, []*yaml.Node{v})
	}
	d.errf(k, "sigma/detection/type", "selection %q has an unsupported form", k.Value)
	return &rule.Node{Op: rule.OpOpaque, Text: k.Value, Pos: d.pos(k)}
}

func (d *docCtx) mapBody(k, v *yaml.Node) *rule.Node {
	if len(v.Content) == 0 {
		d.warnf(v, "sigma/detection/empty", "selection %q is an empty mapping (matches every event)", k.Value)
		return &rule.Node{Op: rule.OpTrue, Pos: d.pos(v)}
	}
	var items []*rule.Node
	for i := 0; i+1 < len(v.Content); i += 2 {
		items = append(items, d.fieldItem(v.Content[i], resolve(v.Content[i+1])))
	}
	if len(items) == 1 {
		return items[0]
	}
	n := rule.And(items...)
	n.Pos = d.pos(v)
	return n
}

// keywords is a keyword list: values searched anywhere in the event, OR-ed.
func (d *docCtx) keywords(k *yaml.Node, vals []*yaml.Node) *rule.Node {
	p := &rule.Pred{Kind: rule.Keyword, Pos: d.pos(k)}
	for _, v := range vals {
		v = resolve(v)
		if v == nil || v.Tag == "!!null" {
			d.errf(v, "sigma/detection/null-keyword", "a keyword cannot be null")
			continue
		}
		val := parseSigmaString(v.Value).keywordValue()
		if v.Tag == "!!int" || v.Tag == "!!float" {
			val.Type = rule.Number
		}
		p.Values = append(p.Values, val)
	}
	if len(vals) > 0 {
		p.Pos = d.pos(resolve(vals[0]))
	}
	return rule.Leaf(p)
}

// sval is one value of a field item while modifiers are applied.
type sval struct {
	node *yaml.Node
	typ  rule.ValueType
	str  sstr   // string values (after escape processing and wildcard modifiers)
	raw  string // the text as written (numbers, regexes, CIDRs, field names)
}

// modifier kinds that replace the comparison; "" keeps the wildcard-derived kind.
var compareKinds = map[string]rule.Kind{"lt": rule.Lt, "lte": rule.Le, "gt": rule.Gt, "gte": rule.Ge}

var transformMods = map[string]string{
	"cased": rule.TCased, "windash": rule.TWindash, "base64": rule.TBase64, "base64offset": rule.TBase64Offset,
	"utf16le": rule.TUTF16LE, "utf16be": rule.TUTF16BE, "utf16": rule.TUTF16, "wide": rule.TWide,
	"expand": rule.TExpand,
	"minute": rule.TMinute, "hour": rule.THour, "day": rule.TDay, "week": rule.TWeek,
	"month": rule.TMonth, "year": rule.TYear,
}

var regexFlags = map[string]string{
	"i": rule.TIgnoreCase, "ignorecase": rule.TIgnoreCase,
	"m": rule.TMultiline, "multiline": rule.TMultiline,
	"s": rule.TDotAll, "dotall": rule.TDotAll,
}

// fieldItem parses `Field|mod|mod: value(s)` into one predicate, or an OR (AND for
// |all) of predicates when its values test different effective kinds.
func (d *docCtx) fieldItem(k, v *yaml.Node) *rule.Node {
	native := k.Value
	parts := strings.Split(native, "|")
	field := strings.TrimSpace(parts[0])
	if field != parts[0] {
		d.warnf(k, "sigma/field/space", "field name %q has surrounding spaces", parts[0])
	}
	mods := parts[1:]
	pos := d.pos(k)
	opaque := func() *rule.Node { return &rule.Node{Op: rule.OpOpaque, Text: native, Pos: pos} }

	// Values.
	var nodes []*yaml.Node
	switch {
	case v == nil:
		nodes = []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!null", Line: k.Line, Column: k.Column}}
	case v.Kind == yaml.ScalarNode:
		nodes = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		if len(v.Content) == 0 {
			d.errf(k, "sigma/value/empty-list", "%s: empty value list", native)
			return opaque()
		}
		for _, c := range v.Content {
			c = resolve(c)
			if c == nil || c.Kind != yaml.ScalarNode {
				d.errf(c, "sigma/value/type", "%s: list values must be scalars", native)
				return opaque()
			}
			nodes = append(nodes, c)
		}
	default:
		d.errf(v, "sigma/value/type", "%s: a value must be a scalar or a list of scalars", native)
		return opaque()
	}
	vals := make([]*sval, len(nodes))
	for i, n := range nodes {
		sv := &sval{node: n, raw: n.Value}
		switch n.Tag {
		case "!!null":
			sv.typ = rule.Null
		case "!!int", "!!float":
			sv.typ = rule.Number
		case "!!bool":
			sv.typ = rule.Bool
		default:
			sv.typ = rule.String
			sv.str = parseSigmaString(n.Value)
		}
		vals[i] = sv
	}

	// Modifiers, left to right.
	var (
		kind       rule.Kind // overriding kind (re, cidr, lt..., fieldref, exists)
		all, neq   bool
		transforms []string
		seen       = map[string]bool{}
		isRegex    bool
	)
	toString := func(sv *sval) {
		if sv.typ == rule.Number || sv.typ == rule.Bool {
			sv.typ = rule.String
			sv.str = sstr{{lit: sv.raw}}
		}
	}
	for _, m := range mods {
		m0 := m
		m = strings.TrimSpace(m)
		if m != m0 || m != strings.ToLower(m) {
			d.warnf(k, "sigma/modifier/spelling", "%s: modifier %q should be written %q", native, m0, strings.ToLower(m))
			m = strings.ToLower(m)
		}
		if m == "" {
			d.warnf(k, "sigma/modifier/empty", "%s: empty modifier ignored", native)
			continue
		}
		if seen[m] {
			d.warnf(k, "sigma/modifier/repeated", "%s: modifier %q repeated; applied once", native, m)
			continue
		}
		seen[m] = true
		switch m {
		case "contains", "startswith", "endswith":
			if kind != "" {
				if kind == rule.FieldRef {
					// fieldref|startswith etc. (spec v2.1): keep the position test as a transform.
					transforms = append(transforms, m)
					continue
				}
				d.errf(k, "sigma/modifier/conflict", "%s: %s cannot follow a %s modifier", native, m, kind)
				return opaque()
			}
			for _, sv := range vals {
				toString(sv)
				if sv.typ != rule.String {
					continue
				}
				if m != "startswith" {
					sv.str = sv.str.prependStar()
				}
				if m != "endswith" {
					sv.str = sv.str.appendStar()
				}
			}
		case "all":
			all = true
			if len(vals) < 2 {
				d.warnf(k, "sigma/modifier/all-single", "%s: |all with a single value has no effect", native)
			}
		case "neq":
			neq = true
		case "exists":
			if len(vals) != 1 || vals[0].typ != rule.Bool {
				d.errf(k, "sigma/modifier/exists", "%s: exists needs a single true or false", native)
				return opaque()
			}
			kind = rule.IsNotNull
		case "re":
			if len(seen) > 1 {
				d.errf(k, "sigma/modifier/conflict", "%s: re must be the first modifier (a regular expression cannot be combined with value modifiers before it)", native)
				return opaque()
			}
			kind, isRegex = rule.Regex, true
			for _, sv := range vals {
				if sv.typ == rule.Null {
					d.errf(k, "sigma/value/type", "%s: a regular expression cannot be null", native)
					return opaque()
				}
			}
		case "cidr":
			kind = rule.CIDR
		case "fieldref":
			for _, sv := range vals {
				if sv.typ != rule.String || sv.str.hasWild() {
					d.errf(k, "sigma/modifier/fieldref", "%s: fieldref needs a field name without wildcards (put contains/startswith/endswith after fieldref)", native)
					return opaque()
				}
			}
			kind = rule.FieldRef
		case "lt", "lte", "gt", "gte":
			kind = compareKinds[m]
			for _, sv := range vals {
				if sv.typ != rule.Number {
					if _, err := strconv.ParseFloat(strings.TrimSpace(sv.raw), 64); err != nil {
						d.errf(sv.node, "sigma/value/not-number", "%s: %s needs a number, not %q", native, m, sv.raw)
						return opaque()
					}
					d.warnf(sv.node, "sigma/value/quoted-number", "%s: number %q written as a string", native, sv.raw)
					sv.typ = rule.Number
				}
			}
		case "i", "ignorecase", "m", "multiline", "s", "dotall":
			if !isRegex {
				d.errf(k, "sigma/modifier/flag-without-re", "%s: %s is a regular expression flag and needs |re before it", native, m)
				return opaque()
			}
			transforms = append(transforms, regexFlags[m])
		case "base64", "base64offset":
			for _, sv := range vals {
				if sv.typ == rule.String && sv.str.hasWild() {
					d.errf(k, "sigma/modifier/wildcard-encoding", "%s: %s cannot encode a value with wildcards; put contains/startswith/endswith after it", native, m)
					return opaque()
				}
				toString(sv)
			}
			transforms = append(transforms, transformMods[m])
		default:
			t, ok := transformMods[m]
			if !ok {
				d.errf(k, "sigma/modifier/unknown", "%s: unknown modifier %q", native, m)
				return opaque()
			}
			if strings.HasPrefix(m, "utf16") || m == "wide" {
				for _, sv := range vals {
					toString(sv)
				}
			}
			transforms = append(transforms, t)
		}
	}

	// Predicates, grouped by effective kind in order of first appearance.
	type group struct {
		kind rule.Kind
		vals []rule.Value
		not  bool
	}
	var groups []*group
	add := func(kd rule.Kind, v *rule.Value, not bool) {
		for _, g := range groups {
			if g.kind == kd && g.not == not {
				if v != nil {
					g.vals = append(g.vals, *v)
				}
				return
			}
		}
		g := &group{kind: kd, not: not}
		if v != nil {
			g.vals = append(g.vals, *v)
		}
		groups = append(groups, g)
	}
	for _, sv := range vals {
		switch {
		case kind == rule.IsNotNull: // exists
			if sv.raw == "true" || strings.EqualFold(sv.raw, "true") {
				add(rule.IsNotNull, nil, neq)
			} else {
				add(rule.IsNull, nil, neq)
			}
		case sv.typ == rule.Null:
			if kind != "" {
				d.errf(sv.node, "sigma/value/type", "%s: null cannot be compared with %s", native, kind)
				return opaque()
			}
			add(rule.IsNull, nil, neq)
		case kind != "":
			if kind == rule.Regex {
				if _, err := syntax.Parse(sv.raw, syntax.Perl); err != nil {
					// Sigma's flavour is a PCRE subset; RE2 rejects only what lies outside
					// it (look-arounds, back-references) or what is broken.
					d.warnf(sv.node, "sigma/value/regex", "%s: %v", native, err)
				}
			}
			add(kind, &rule.Value{S: sv.raw, Type: valueType(sv.typ)}, neq)
		case sv.typ == rule.String:
			kd, val := sv.str.effective()
			if neq && kd == rule.Eq {
				add(rule.Ne, &val, false)
			} else {
				add(kd, &val, neq)
			}
		default: // number or bool compared for equality
			val := rule.Value{S: sv.raw, Type: sv.typ}
			if neq {
				add(rule.Ne, &val, false)
			} else {
				add(rule.Eq, &val, false)
			}
		}
	}
	var nodes2 []*rule.Node
	for _, g := range groups {
		p := &rule.Pred{Field: field, Kind: g.kind, Values: g.vals, All: all && len(g.vals) > 1,
			Native: native, Pos: pos}
		if len(transforms) > 0 {
			p.Transforms = append([]string(nil), transforms...)
		}
		if field == "" {
			// `|contains: x` without a field: a keyword search with modifiers.
			p.Kind = rule.Keyword
			for i := range p.Values {
				p.Values[i] = keywordFromEffective(g.kind, p.Values[i])
			}
		}
		n := rule.Leaf(p)
		if g.not {
			n = rule.Not(n)
			n.Pos = pos
		}
		nodes2 = append(nodes2, n)
	}
	if len(nodes2) == 1 {
		return nodes2[0]
	}
	var n *rule.Node
	if all {
		n = rule.And(nodes2...)
	} else {
		n = rule.Or(nodes2...)
	}
	n.Pos = pos
	return n
}

func valueType(t rule.ValueType) rule.ValueType {
	if t == rule.String {
		return ""
	}
	return t
}

// keywordFromEffective turns an effective field test back into a keyword pattern.
func keywordFromEffective(k rule.Kind, v rule.Value) rule.Value {
	if v.Wild {
		return v
	}
	lit := sstr{{lit: v.S}}.pattern()
	switch k {
	case rule.Match:
		return rule.Value{S: "*" + lit + "*", Wild: true}
	case rule.StartsW:
		return rule.Value{S: lit + "*", Wild: true}
	case rule.EndsW:
		return rule.Value{S: "*" + lit, Wild: true}
	}
	return v
}
