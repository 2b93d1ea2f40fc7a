package translate

import (
	"regexp"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

var yaralBool = boolStyle{and: "and", or: "or", not: func(s string) string { return "not " + parenthesize(s) }}

// writeYaraL writes the events section of a single-event YARA-L rule over $e. UDM
// string comparisons are case-sensitive unless marked nocase; substring and affix tests
// are written as regular expressions (re.regex is an unanchored search). A missing UDM
// field reads as the empty string, so `!= ""` is "present" and `= ""` is "absent or
// empty", exactly the IR's is_not_null / is_null.
func writeYaraL(w *writer, src *prepared) (string, error) {
	if w.cat.udmType == "" {
		return "", fail(w.t, "no UDM event type holds %s events", src.category)
	}
	e, err := w.expr(src.root, yaralBool, func(a atom) (string, error) { return yaralAtom(w, a) }, false)
	if err != nil {
		return "", err
	}
	lines := []string{`$e.metadata.event_type = "` + w.cat.udmType + `"`}
	lines = append(lines, splitTop(e, "and")...)
	return "    " + strings.Join(lines, "\n    "), nil
}

func yaralAtom(w *writer, a atom) (string, error) {
	f := "$e." + a.field
	nocase := ""
	switch a.kind {
	case rule.Eq, rule.Ne:
		if a.v.Type == rule.Number {
			return f + map[bool]string{true: " = ", false: " != "}[a.kind == rule.Eq] + a.v.S, nil
		}
		lit, literal := globLiteral(a.v)
		if literal && lit == "" {
			return "", fail(w.t, "%s: UDM cannot tell an empty field from a missing one", a.canon)
		}
		if literal {
			if !a.cased && !noLetters(lit) {
				nocase = " nocase"
			}
			return f + map[bool]string{true: " = ", false: " != "}[a.kind == rule.Eq] + yaralString(lit) + nocase, nil
		}
	case rule.IsNull:
		return f + ` = ""`, nil
	case rule.IsNotNull:
		return f + ` != ""`, nil
	case rule.Gt, rule.Ge, rule.Lt, rule.Le:
		return f + " " + map[rule.Kind]string{rule.Gt: ">", rule.Ge: ">=", rule.Lt: "<", rule.Le: "<="}[a.kind] + " " + a.v.S, nil
	case rule.CIDR:
		return "net.ip_in_range_cidr(" + f + ", " + yaralString(a.v.S) + ")", nil
	}
	if a.kind == rule.Glob {
		// A glob is a regex in YARA-L, but ruledex cannot yet prove such a rewrite equal.
		return "", fail(w.t, "%s: YARA-L has no wildcard match for %q", a.canon, a.v.S)
	}
	pat, ok := yaralPattern(a)
	if !ok {
		return "", fail(w.t, "%s: YARA-L translation of %s tests is not supported", a.canon, a.kind)
	}
	if a.cased || a.kind == rule.Regex {
		if strings.Contains(a.flags, "i") {
			nocase = " nocase"
		}
	} else {
		nocase = " nocase"
	}
	if strings.Contains(pat, "`") {
		return "", fail(w.t, "%s: the pattern holds a backtick, which a YARA-L regex string cannot", a.canon)
	}
	s := "re.regex(" + f + ", `" + pat + "`)" + nocase
	if a.kind == rule.Ne {
		return "not " + s, nil
	}
	return s, nil
}

// yaralPattern writes a string test as an RE2 pattern for re.regex.
func yaralPattern(a atom) (string, bool) {
	switch a.kind {
	case rule.Regex:
		p := a.v.S
		if f := strings.ReplaceAll(a.flags, "i", ""); f != "" {
			p = "(?" + f + ")" + p
		}
		return p, true
	case rule.Eq, rule.Ne, rule.Match, rule.StartsW, rule.EndsW, rule.Glob:
	default:
		return "", false
	}
	var b strings.Builder
	if a.kind != rule.Match && a.kind != rule.EndsW {
		b.WriteByte('^')
	}
	parts := []rule.GlobPart{{Lit: a.v.S}}
	if a.v.Wild {
		parts = rule.GlobParts(a.v.S)
	}
	for _, p := range parts {
		switch p.Wild {
		case '*':
			b.WriteString(`(?s:.*)`)
		case '?':
			b.WriteString(`(?s:.)`)
		default:
			b.WriteString(regexp.QuoteMeta(p.Lit))
		}
	}
	if a.kind != rule.Match && a.kind != rule.StartsW {
		b.WriteByte('$')
	}
	return b.String(), true
}

func yaralString(s string) string {
	return `"` + quoteEscaper.Replace(s) + `"`
}

// yaralFile writes a complete YARA-L 2.0 rule.
func yaralFile(w *writer, r *rule.Rule, src *prepared, events string) string {
	var b strings.Builder
	b.WriteString("// " + strings.Join(provenance(r), "\n// ") + "\n")
	b.WriteString("rule " + slug(r.Title) + " {\n  meta:\n")
	meta := func(k, v string) {
		if v != "" {
			b.WriteString("    " + k + " = " + yaralString(oneLine(v)) + "\n")
		}
	}
	meta("rule_name", r.Title)
	meta("author", strings.Join(r.Authors, ", "))
	desc := r.Description
	if strings.TrimSpace(desc) == "" {
		desc = r.Title
	}
	meta("description", desc)
	meta("severity", titleCase(elasticSeverity(r.Severity)))
	meta("product", "windows")
	if len(r.Techniques) > 0 {
		meta("mitre_attack_technique", strings.Join(r.Techniques, ", "))
	}
	if r.Source.UpstreamURL != "" {
		meta("reference", r.Source.UpstreamURL)
	}
	b.WriteString("\n  events:\n" + events + "\n\n  condition:\n    $e\n}\n")
	return b.String()
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
