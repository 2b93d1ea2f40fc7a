package translate

import (
	"strings"

	"github.com/ruledex/ruledex/rule"
)

var kqlBool = boolStyle{and: "and", or: "or", not: func(s string) string { return "not(" + trimOuter(s) + ")" },
	list: func(as []atom) (string, bool) {
		if !sameEqColumn(as) {
			return "", false
		}
		op := "in~"
		if as[0].cased {
			op = "in"
		}
		vs := make([]string, len(as))
		for i, a := range as {
			lit, _ := globLiteral(a.v)
			vs[i] = kqlString(lit)
		}
		return kqlIdent(as[0].field) + " " + op + " (" + strings.Join(vs, ", ") + ")", true
	}}

// kqlOps spell the string kinds: case-insensitive first, then case-sensitive.
var kqlOps = map[rule.Kind][2]string{
	rule.Eq: {"=~", "=="}, rule.Ne: {"!~", "!="}, rule.Match: {"contains", "contains_cs"},
	rule.StartsW: {"startswith", "startswith_cs"}, rule.EndsW: {"endswith", "endswith_cs"},
	rule.Term: {"has", "has_cs"}, rule.TermPrefix: {"hasprefix", "hasprefix_cs"},
	rule.TermSuffix: {"hassuffix", "hassuffix_cs"},
}

func writeKQL(w *writer, src *prepared) (string, error) {
	e, err := w.expr(src.root, kqlBool, func(a atom) (string, error) { return kqlAtom(w, a) }, false)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if w.sc.name == "sentinel" {
		if w.cat.sentinelIDs == "" {
			return "", fail(w.t, "no SecurityEvent event carries %s events", src.category)
		}
		b.WriteString("SecurityEvent\n| where EventID == " + w.cat.sentinelIDs + "\n")
		w.assumed[src.category+" = SecurityEvent EventID "+w.cat.sentinelIDs+" (Security auditing only: Sentinel's SecurityEvent holds no Sysmon events)"] = true
	} else {
		b.WriteString(w.cat.kqlTable + "\n")
	}
	for i, line := range splitTop(e, "and") {
		if i == 0 {
			b.WriteString("| where " + line)
		} else {
			b.WriteString("\n    and " + line)
		}
	}
	return b.String(), nil
}

func kqlAtom(w *writer, a atom) (string, error) {
	f := kqlIdent(a.field)
	switch a.kind {
	case rule.Eq, rule.Ne, rule.Match, rule.StartsW, rule.EndsW, rule.Term, rule.TermPrefix, rule.TermSuffix:
		lit, ok := globLiteral(a.v)
		if !ok {
			return "", fail(w.t, "%s: KQL has no wildcard match for %q", a.canon, a.v.S)
		}
		if a.v.Type == rule.Number && (a.kind == rule.Eq || a.kind == rule.Ne) {
			op := "=="
			if a.kind == rule.Ne {
				op = "!="
			}
			return f + " " + op + " " + lit, nil
		}
		ops := kqlOps[a.kind]
		op := ops[0]
		if a.cased && !noLetters(lit) {
			op = ops[1]
		}
		return f + " " + op + " " + kqlString(lit), nil
	case rule.Glob:
		return "", fail(w.t, "%s: KQL has no wildcard match for %q", a.canon, a.v.S)
	case rule.Regex:
		pat := a.v.S
		if a.flags != "" {
			pat = "(?" + a.flags + ")" + pat
		}
		return f + " matches regex " + kqlString(pat), nil
	case rule.Gt, rule.Ge, rule.Lt, rule.Le:
		return f + " " + map[rule.Kind]string{rule.Gt: ">", rule.Ge: ">=", rule.Lt: "<", rule.Le: "<="}[a.kind] + " " + a.v.S, nil
	case rule.IsNull:
		return "isempty(" + f + ")", nil
	case rule.IsNotNull:
		return "isnotempty(" + f + ")", nil
	case rule.CIDR:
		return "ipv4_is_in_range(" + f + ", " + kqlString(a.v.S) + ")", nil
	}
	return "", fail(w.t, "%s: KQL translation of %s tests is not supported", a.canon, a.kind)
}

// kqlString quotes s: a verbatim @"..." string when it has backslashes (the Windows
// path idiom), else a plain one; both forms escape what they must.
func kqlString(s string) string {
	if strings.Contains(s, `\`) && !strings.ContainsAny(s, "\n\r\t") {
		return `@"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return `"` + quoteEscaper.Replace(s) + `"`
}

// kqlIdent brackets column names that are not plain identifiers.
func kqlIdent(s string) string {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return `['` + strings.ReplaceAll(s, `'`, `\'`) + `']`
		}
	}
	return s
}

// kqlFile is a .kql query with a comment header, as the public KQL collections write.
func kqlFile(w *writer, r *rule.Rule, src *prepared, q string) string {
	var b strings.Builder
	b.WriteString("// " + oneLine(r.Title) + "\n")
	if d := oneLine(r.Description); d != "" {
		b.WriteString("// " + d + "\n")
	}
	if len(r.Techniques) > 0 {
		b.WriteString("// MITRE ATT&CK: " + strings.Join(r.Techniques, ", ") + "\n")
	}
	for _, p := range provenance(r) {
		b.WriteString("// " + p + "\n")
	}
	b.WriteString(q + "\n")
	return b.String()
}
