package translate

import (
	"strings"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

// splQuoteEscaper escapes a value inside SPL double quotes (built once, see quoteEscaper).
var splQuoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

var splBool = boolStyle{and: "AND", or: "OR", not: func(s string) string { return "NOT (" + trimOuter(s) + ")" }}

// writeSPL writes an ESCU-style accelerated search: tstats over the CIM data model,
// grouped by the fields analysts pivot on. The grouping has no threshold, so the
// search keeps one row per distinct event shape: a single-event filter.
func writeSPL(w *writer, src *prepared) (string, error) {
	if w.cat.cimModel == "" {
		return "", fail(w.t, "no CIM data model holds %s events", src.category)
	}
	e, err := w.expr(src.root, splBool, func(a atom) (string, error) { return splAtom(w, a) }, false)
	if err != nil {
		return "", err
	}
	var by []string
	for _, f := range w.cat.cimBy {
		by = append(by, w.cat.cimDataset+"."+f)
	}
	q := "| tstats summariesonly=false count min(_time) as firstTime max(_time) as lastTime from datamodel=" +
		w.cat.cimModel + " where " + trimOuter(e) + " by " + strings.Join(by, " ")
	return q, nil
}

func splAtom(w *writer, a atom) (string, error) {
	f := w.cat.cimDataset + "." + a.field
	if strings.Contains(a.field, ".") {
		f = a.field
	}
	switch a.kind {
	case rule.Eq, rule.Ne, rule.Match, rule.StartsW, rule.EndsW, rule.Glob:
		pat, err := splPattern(w, a)
		if err != nil {
			return "", err
		}
		if a.cased && !noLetters(pat) {
			return "", fail(w.t, "%s: an SPL search compares values case-insensitively; %q is case-sensitive", a.canon, a.v.S)
		}
		op := "="
		if a.kind == rule.Ne {
			op = "!="
		}
		if a.v.Type == rule.Number {
			return f + op + a.v.S, nil
		}
		return f + op + `"` + pat + `"`, nil
	case rule.Gt, rule.Ge, rule.Lt, rule.Le:
		return f + map[rule.Kind]string{rule.Gt: ">", rule.Ge: ">=", rule.Lt: "<", rule.Le: "<="}[a.kind] + a.v.S, nil
	case rule.IsNotNull:
		return f + "=*", nil
	}
	return "", fail(w.t, "%s: a %s test cannot be written in a tstats search", a.canon, a.kind)
}

// splPattern writes a value as an SPL search pattern: `*` is the only wildcard and
// cannot be escaped, so a literal `*` (or a one-character `?`) cannot be searched.
func splPattern(w *writer, a atom) (string, error) {
	var parts []rule.GlobPart
	if a.v.Wild {
		parts = rule.GlobParts(a.v.S)
	} else {
		parts = []rule.GlobPart{{Lit: a.v.S}}
	}
	var b strings.Builder
	if a.kind == rule.Match || a.kind == rule.EndsW {
		b.WriteByte('*')
	}
	for _, p := range parts {
		switch {
		case p.Wild == '*':
			b.WriteByte('*')
		case p.Wild == '?':
			return "", fail(w.t, "%s: SPL has no one-character wildcard for %q", a.canon, a.v.S)
		case strings.Contains(p.Lit, "*"):
			return "", fail(w.t, "%s: SPL cannot search for a literal * in %q", a.canon, a.v.S)
		case strings.HasSuffix(p.Lit, `\`) && len(parts) == 1 && (a.kind == rule.Eq || a.kind == rule.EndsW || a.kind == rule.Ne):
			// A closing backslash right before the closing quote is read as escaping it.
			return "", fail(w.t, "%s: SPL cannot quote a value that ends in a backslash (%q)", a.canon, a.v.S)
		default:
			b.WriteString(splQuoteEscaper.Replace(p.Lit))
		}
	}
	if a.kind == rule.Match || a.kind == rule.StartsW {
		b.WriteByte('*')
	}
	return b.String(), nil
}

// splFile writes an ESCU detection YAML.
func splFile(w *writer, r *rule.Rule, src *prepared, q string) string {
	doc := mapping()
	addKV(doc, "name", scalar(oneLine(r.Title)))
	addKV(doc, "id", scalar(derivedUUID(r, SPL)))
	addKV(doc, "version", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"})
	addKV(doc, "author", scalar(oneLine(strings.Join(r.Authors, ", "))+" (translated by ruledex)"))
	addKV(doc, "status", scalar("experimental"))
	addKV(doc, "type", scalar("TTP"))
	desc := oneLine(r.Description)
	if desc == "" {
		desc = oneLine(r.Title)
	}
	addKV(doc, "description", scalar(desc+" "+strings.Join(provenance(r), ". ")+"."))
	if w.cat.dataSource != "" {
		addKV(doc, "data_source", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{scalar(w.cat.dataSource)}})
	}
	addKV(doc, "search", scalar(q))
	addKV(doc, "how_to_implement", scalar("Requires the "+w.cat.cimModel+" data model populated from endpoint telemetry (Sysmon, EDR or Windows Security 4688 with command lines)."))
	fp := "Unknown."
	if len(r.FalsePositives) > 0 {
		fp = oneLine(strings.Join(r.FalsePositives, "; "))
	}
	addKV(doc, "known_false_positives", scalar(fp))
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
	tags := mapping()
	if len(r.Techniques) > 0 {
		ts := &yaml.Node{Kind: yaml.SequenceNode}
		for _, t := range r.Techniques {
			ts.Content = append(ts.Content, scalar(t))
		}
		addKV(tags, "mitre_attack_id", ts)
	}
	addKV(tags, "asset_type", scalar("Endpoint"))
	addKV(tags, "security_domain", scalar("endpoint"))
	addKV(doc, "tags", tags)
	b, err := yaml.Marshal(wrapDoc(doc))
	if err != nil {
		return ""
	}
	return string(b)
}
