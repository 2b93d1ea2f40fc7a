package translate

import (
	"strings"
	"time"

	"github.com/ruledex/ruledex/rule"
)

var eqlBool = boolStyle{and: "and", or: "or", not: func(s string) string { return "not " + parenthesize(s) },
	list: eqlList}

// eqlList writes an OR of case-insensitive tests on one column as `f : ("a", "*b*")`,
// and of cased equalities as `f in ("a", "b")`.
func eqlList(as []atom) (string, bool) {
	vs := make([]string, len(as))
	if sameEqColumn(as) && as[0].cased {
		for i, a := range as {
			lit, _ := globLiteral(a.v)
			vs[i] = eqlString(lit)
		}
		return as[0].field + " in (" + strings.Join(vs, ", ") + ")", true
	}
	for i, a := range as {
		switch a.kind {
		case rule.Eq, rule.Match, rule.StartsW, rule.EndsW, rule.Glob:
		default:
			return "", false
		}
		lit, literal := globLiteral(a.v)
		if a.cased || a.field != as[0].field || a.v.Type == rule.Number || literal && strings.ContainsAny(lit, "*?") || a.v.Wild && globHasLiteralWild(a.v) {
			return "", false
		}
		vs[i] = eqlString(eqlWildcard(a))
	}
	return as[0].field + " : (" + strings.Join(vs, ", ") + ")", true
}

func parenthesize(s string) string {
	if strings.HasPrefix(s, "(") && trimOuter(s) != s {
		return s
	}
	return "(" + s + ")"
}

// writeEQL writes an EQL query: the event category and type select the kind of event
// (Elastic Defend writes event.type "start" for a process launch); `:` compares
// case-insensitively with wildcards, `==` and the functions without ~ are cased.
func writeEQL(w *writer, src *prepared) (string, error) {
	if w.cat.eqlCategory == "" {
		return "", fail(w.t, "no EQL event category holds %s events", src.category)
	}
	e, err := w.expr(src.root, eqlBool, func(a atom) (string, error) { return eqlAtom(w, a) }, false)
	if err != nil {
		return "", err
	}
	head := w.cat.eqlCategory + ` where host.os.type == "windows"`
	if w.cat.eqlType != "" {
		head += ` and event.type == "` + w.cat.eqlType + `"`
	}
	lines := splitTop(e, "and")
	return head + " and\n  " + strings.Join(lines, " and\n  "), nil
}

func eqlAtom(w *writer, a atom) (string, error) {
	f := a.field
	if a.kind == rule.Ne {
		return "", fail(w.t, "%s: a not-equal test; ruledex does not translate it into EQL, whose `!=` treats missing fields its own way", a.canon)
	}
	if a.v.Wild && globHasLiteralWild(a.v) {
		return "", fail(w.t, "%s: EQL wildcards cannot match a literal * or ? in %q", a.canon, a.v.S)
	}
	switch a.kind {
	case rule.Eq, rule.Ne, rule.Match, rule.StartsW, rule.EndsW, rule.Glob:
		if a.v.Type == rule.Number && (a.kind == rule.Eq || a.kind == rule.Ne) {
			return f + map[bool]string{true: " == ", false: " != "}[a.kind == rule.Eq] + a.v.S, nil
		}
		lit, literal := globLiteral(a.v)
		if a.cased && !(literal && noLetters(lit)) {
			if !literal {
				return f + " like " + eqlString(eqlWildcard(a)), nil
			}
			switch a.kind {
			case rule.Eq:
				return f + " == " + eqlString(lit), nil
			case rule.Ne:
				return f + " != " + eqlString(lit), nil
			case rule.Match:
				return "stringContains(" + f + ", " + eqlString(lit) + ")", nil
			case rule.StartsW:
				return "startsWith(" + f + ", " + eqlString(lit) + ")", nil
			case rule.EndsW:
				return "endsWith(" + f + ", " + eqlString(lit) + ")", nil
			}
		}
		if literal && strings.ContainsAny(lit, "*?") {
			// `:` would read these as wildcards; the ~ functions compare literally.
			switch a.kind {
			case rule.Match:
				return "stringContains~(" + f + ", " + eqlString(lit) + ")", nil
			case rule.StartsW:
				return "startsWith~(" + f + ", " + eqlString(lit) + ")", nil
			case rule.EndsW:
				return "endsWith~(" + f + ", " + eqlString(lit) + ")", nil
			}
			return "", fail(w.t, "%s: EQL cannot compare %q case-insensitively without reading its wildcards", a.canon, lit)
		}
		s := f + " : " + eqlString(eqlWildcard(a))
		if a.kind == rule.Ne {
			return "not " + s, nil
		}
		return s, nil
	case rule.Gt, rule.Ge, rule.Lt, rule.Le:
		return f + " " + map[rule.Kind]string{rule.Gt: ">", rule.Ge: ">=", rule.Lt: "<", rule.Le: "<="}[a.kind] + " " + a.v.S, nil
	case rule.IsNull:
		return f + " == null", nil
	case rule.IsNotNull:
		return f + " != null", nil
	case rule.CIDR:
		return "cidrMatch(" + f + ", " + eqlString(a.v.S) + ")", nil
	case rule.Regex:
		return "", fail(w.t, "%s: EQL regular expressions use Lucene syntax and match whole values; ruledex does not translate RE2 patterns into it", a.canon)
	}
	return "", fail(w.t, "%s: EQL translation of %s tests is not supported", a.canon, a.kind)
}

// globHasLiteralWild reports whether a glob has an escaped (literal) * or ?.
func globHasLiteralWild(v rule.Value) bool {
	for _, p := range rule.GlobParts(v.S) {
		if p.Wild == 0 && strings.ContainsAny(p.Lit, "*?") {
			return true
		}
	}
	return false
}

// eqlWildcard writes the value as an EQL wildcard pattern (`*`, `?`).
func eqlWildcard(a atom) string {
	var b strings.Builder
	if a.kind == rule.Match || a.kind == rule.EndsW {
		b.WriteByte('*')
	}
	if a.v.Wild {
		for _, p := range rule.GlobParts(a.v.S) {
			if p.Wild != 0 {
				b.WriteByte(p.Wild)
			} else {
				b.WriteString(p.Lit)
			}
		}
	} else {
		b.WriteString(a.v.S)
	}
	if a.kind == rule.Match || a.kind == rule.StartsW {
		b.WriteByte('*')
	}
	return b.String()
}

// quoteEscaper escapes a string for the double-quoted literals of EQL, TOML, KQL and
// YARA-L. Built once: a Replacer builds its tables on first use, which cost more than
// the replacing when every rule page translates its rule.
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)

func eqlString(s string) string {
	return `"` + quoteEscaper.Replace(s) + `"`
}

var esqlBool = boolStyle{and: "and", or: "or", not: func(s string) string { return "not " + parenthesize(s) },
	list: func(as []atom) (string, bool) {
		if !sameEqColumn(as) {
			return "", false
		}
		col := as[0].field
		vs := make([]string, len(as))
		for i, a := range as {
			lit, _ := globLiteral(a.v)
			if !a.cased {
				lit = strings.ToLower(lit)
			}
			vs[i] = eqlString(lit)
		}
		if !as[0].cased {
			col = "to_lower(" + col + ")"
		}
		return col + " in (" + strings.Join(vs, ", ") + ")", true
	}}

// hasNegation reports whether n negates anything.
func hasNegation(n *node) bool {
	if n.op == rule.OpNot || n.op == rule.OpPred && n.p.Kind == rule.Ne {
		return true
	}
	for _, k := range n.kids {
		if hasNegation(k) {
			return true
		}
	}
	return false
}

// writeESQL writes an ES|QL query. ES|QL compares with three-valued logic (a missing
// field makes a comparison null, and `not null` is null), so rules with negations are
// not translated: their ES|QL form would drop events the original matches.
func writeESQL(w *writer, src *prepared) (string, error) {
	if w.cat.eqlCategory == "" {
		return "", fail(w.t, "no Elastic index holds %s events", src.category)
	}
	if hasNegation(src.root) {
		// ES|QL's three-valued logic: `not (f == "x")` is null, so dropped, on events
		// without f, where every other language's negation holds.
		return "", fail(w.t, "a negated test: in ES|QL it would also drop events that lack the field")
	}
	e, err := w.expr(src.root, esqlBool, func(a atom) (string, error) { return esqlAtom(w, a) }, false)
	if err != nil {
		return "", err
	}
	head := "from " + strings.Join(w.cat.indexes, ", ") + "\n| where host.os.type == \"windows\" and event.category == \"" + w.cat.eqlCategory + "\""
	if w.cat.eqlType != "" {
		head += ` and event.type == "` + w.cat.eqlType + `"`
	}
	return head + "\n| where " + strings.Join(splitTop(e, "and"), "\n    and "), nil
}

func esqlAtom(w *writer, a atom) (string, error) {
	f := a.field
	kind := a.kind
	var s string
	switch kind {
	case rule.Eq, rule.Match, rule.StartsW, rule.EndsW, rule.Glob:
		if a.v.Type == rule.Number {
			s = f + " == " + a.v.S
			break
		}
		lit, literal := globLiteral(a.v)
		col := f
		if !a.cased || (literal && noLetters(lit)) {
			col = "to_lower(" + f + ")"
			lit = strings.ToLower(lit)
		}
		switch {
		case literal && kind == rule.Eq:
			s = col + " == " + eqlString(lit)
		case literal && kind == rule.StartsW:
			s = "starts_with(" + col + ", " + eqlString(lit) + ")"
		case literal && kind == rule.EndsW:
			s = "ends_with(" + col + ", " + eqlString(lit) + ")"
		default:
			pat := esqlLike(a, !a.cased)
			s = col + " like " + eqlString(pat)
		}
	case rule.Gt, rule.Ge, rule.Lt, rule.Le:
		s = f + " " + map[rule.Kind]string{rule.Gt: ">", rule.Ge: ">=", rule.Lt: "<", rule.Le: "<="}[kind] + " " + a.v.S
	case rule.IsNull:
		return f + " is null", nil
	case rule.IsNotNull:
		return f + " is not null", nil
	case rule.CIDR:
		s = "cidr_match(" + f + ", " + eqlString(a.v.S) + ")"
	default:
		return "", fail(w.t, "%s: ES|QL translation of %s tests is not supported", a.canon, a.kind)
	}
	return s, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`)

// esqlLike writes a LIKE pattern: `*` any run, `?` one character, `\` escapes.
func esqlLike(a atom, lower bool) string {
	esc := likeEscaper
	var b strings.Builder
	if a.kind == rule.Match || a.kind == rule.EndsW {
		b.WriteByte('*')
	}
	parts := []rule.GlobPart{{Lit: a.v.S}}
	if a.v.Wild {
		parts = rule.GlobParts(a.v.S)
	}
	for _, p := range parts {
		if p.Wild != 0 {
			b.WriteByte(p.Wild)
			continue
		}
		lit := p.Lit
		if lower {
			lit = strings.ToLower(lit)
		}
		b.WriteString(esc.Replace(lit))
	}
	if a.kind == rule.Match || a.kind == rule.StartsW {
		b.WriteByte('*')
	}
	return b.String()
}

// elasticFile writes an Elastic detection-rules TOML file.
func elasticFile(w *writer, r *rule.Rule, src *prepared, q string) string {
	lang := "eql"
	if w.t == ESQL {
		lang = "esql"
	}
	today := time.Now().UTC().Format("2006/01/02")
	var b strings.Builder
	b.WriteString("# " + strings.Join(provenance(r), "\n# ") + "\n")
	b.WriteString("[metadata]\ncreation_date = " + tomlString(today) + "\nmaturity = \"development\"\nupdated_date = " + tomlString(today) + "\n\n")
	b.WriteString("[rule]\n")
	b.WriteString("author = " + tomlList(append(append([]string{}, r.Authors...), "ruledex (translation)")) + "\n")
	desc := r.Description
	if strings.TrimSpace(desc) == "" {
		desc = r.Title
	}
	b.WriteString("description = " + tomlString(oneLine(desc)) + "\n")
	b.WriteString("from = \"now-9m\"\n")
	if w.t == EQL {
		b.WriteString("index = " + tomlList(w.cat.indexes) + "\n")
	}
	b.WriteString("language = " + tomlString(lang) + "\n")
	b.WriteString("license = \"Elastic License v2\"\n")
	b.WriteString("name = " + tomlString(oneLine(r.Title)) + "\n")
	refs := r.References
	if r.Source.UpstreamURL != "" {
		refs = append([]string{r.Source.UpstreamURL}, refs...)
	}
	if len(refs) > 0 {
		b.WriteString("references = " + tomlList(refs) + "\n")
	}
	b.WriteString("risk_score = " + itoa(riskFor(r)) + "\n")
	b.WriteString("rule_id = " + tomlString(derivedUUID(r, w.t)) + "\n")
	b.WriteString("severity = " + tomlString(elasticSeverity(r.Severity)) + "\n")
	b.WriteString("tags = [\"OS: Windows\", \"Use Case: Threat Detection\"]\n")
	b.WriteString("type = " + tomlString(lang) + "\n\n")
	if strings.Contains(q, "'''") {
		b.WriteString("query = " + tomlString(q) + "\n")
	} else {
		b.WriteString("query = '''\n" + q + "\n'''\n")
	}
	for _, t := range r.Techniques {
		b.WriteString("\n[[rule.threat]]\nframework = \"MITRE ATT&CK\"\n[[rule.threat.technique]]\nid = " + tomlString(t) + "\n")
	}
	return b.String()
}

func tomlString(s string) string {
	return `"` + quoteEscaper.Replace(s) + `"`
}

func tomlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = tomlString(oneLine(x))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func elasticSeverity(s string) string {
	switch strings.ToLower(s) {
	case "low", "informational":
		return "low"
	case "high":
		return "high"
	case "critical":
		return "critical"
	}
	return "medium"
}

func riskFor(r *rule.Rule) int {
	if r.RiskScore > 0 && r.RiskScore <= 100 {
		return r.RiskScore
	}
	return map[string]int{"low": 21, "high": 73, "critical": 99}[elasticSeverity(r.Severity)] + map[bool]int{true: 47}[elasticSeverity(r.Severity) == "medium"]
}
