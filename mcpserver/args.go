package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

// Bounds on what one call returns. They keep a single answer within what an agent can
// usefully read (tens of kilobytes), whatever the rule or the query.
const (
	defaultLimit = 20
	maxLimit     = 100
	// maxText bounds one rule body in full pages, maxProse one description or prose
	// section, maxQuery one translation or stage (the rule body says the same).
	maxText  = 16 << 10
	maxProse = 8 << 10
	maxQuery = 4 << 10
	// maxSnippet bounds descriptions in result lists.
	maxSnippet = 300
	// defaultValues and maxValues bound the values listed per indicator row of get_rule.
	defaultValues = 25
	maxValues     = 500
	// pageNeighbors is how many rules get_rule lists per relation (neighbors pages on).
	pageNeighbors = 10
	// maxArg bounds any string argument, as the web API bounds query parameters.
	maxArg = 2000
)

var techniqueID = regexp.MustCompile(`^[Tt]\d{4}(\.\d{3})?$`)

// argError is a bad argument: the handler returns it and the SDK turns it into a tool
// error (isError) the model reads.
func argError(format string, a ...any) error { return fmt.Errorf(format, a...) }

// window is one page of a list: offset and limit as given, checked.
type window struct{ offset, limit int }

func newWindow(offset, limit int) (window, error) {
	if offset < 0 {
		return window{}, argError("offset must be 0 or more, not %d", offset)
	}
	if limit == 0 {
		limit = defaultLimit
	}
	if limit < 1 || limit > maxLimit {
		return window{}, argError("limit must be from 1 to %d, not %d", maxLimit, limit)
	}
	return window{offset, limit}, nil
}

// slice returns the window's part of n items as [from, to) and the offset of the next
// page (0 when this is the last).
func (w window) slice(n int) (from, to, next int) {
	from = min(w.offset, n)
	to = min(from+w.limit, n)
	if to < n {
		next = to
	}
	return from, to, next
}

// checkText rejects overlong or non-UTF-8 string arguments.
func checkText(name, v string) error {
	if len(v) > maxArg {
		return argError("%s is longer than %d bytes", name, maxArg)
	}
	if !utf8.ValidString(v) {
		return argError("%s is not valid UTF-8", name)
	}
	return nil
}

func checkLanguage(v string) error {
	if v == "" || slices.Contains(rule.Languages, rule.Language(v)) {
		return nil
	}
	return argError("unknown language %q; use one of %s", v, rule.LanguageIDs())
}

var classes = []string{string(rule.Detection), string(rule.Hunting), string(rule.BuildingBlock), string(rule.VendorFeed)}

func checkClass(v string) error {
	if v == "" || slices.Contains(classes, v) {
		return nil
	}
	return argError("unknown class %q; use one of %s", v, strings.Join(classes, ", "))
}

// normTechnique upper-cases and checks an ATT&CK technique ID.
func normTechnique(v string) (string, error) {
	v = strings.ToUpper(strings.TrimSpace(v))
	if v != "" && !techniqueID.MatchString(v) {
		return "", argError("technique must be an ATT&CK ID such as T1197 or T1558.004, not %q", v)
	}
	return v, nil
}

// canonicalValue returns the catalog's spelling of a filter value (any case), and
// rejects a value no rule has, listing the valid ones: a typo would otherwise look like
// "no rules".
func (s *Server) canonicalValue(ctx context.Context, name, column, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	vals, err := s.cat.Distinct(ctx, column)
	if err != nil {
		return "", err
	}
	for _, x := range vals {
		if strings.EqualFold(x, v) {
			return x, nil
		}
	}
	return "", argError("no rule has %s %q; the catalog has %s", name, v, listSome(vals, 30))
}

// listSome joins at most n values for a message.
func listSome(vals []string, n int) string {
	if len(vals) == 0 {
		return "none"
	}
	if len(vals) > n {
		return strings.Join(vals[:n], ", ") + fmt.Sprintf(" and %d more", len(vals)-n)
	}
	return strings.Join(vals, ", ")
}

// resolveTactic accepts a tactic's short name, ID or name as catalog_stats and rule pages
// show them ("defense-evasion", "TA0005", "Defense Evasion").
func (s *Server) resolveTactic(ctx context.Context, v string) (catalog.Tactic, error) {
	tactics, err := s.cat.Tactics(ctx)
	if err != nil {
		return catalog.Tactic{}, err
	}
	if len(tactics) == 0 {
		return catalog.Tactic{}, errNoAttack
	}
	want := strings.TrimSpace(v)
	var names []string
	for _, t := range tactics {
		if strings.EqualFold(t.Short, want) || strings.EqualFold(t.ID, want) || strings.EqualFold(t.Name, want) ||
			strings.EqualFold(strings.ReplaceAll(t.Short, "-", " "), want) {
			return t, nil
		}
		names = append(names, t.Short)
	}
	return catalog.Tactic{}, argError("unknown tactic %q; use a short name, ID or name: %s", v, strings.Join(names, ", "))
}

var errNoAttack = errors.New("the catalog has no ATT&CK data: ingest with --data pointing at a folder with attack/enterprise-attack.json")

// resolveRule finds a rule from what an agent has: a ref from a result ("sigma/<id>"), a
// resource URI, an id, a title or a file name. Not found and ambiguous are argument
// errors naming what to pass instead.
func (s *Server) resolveRule(ctx context.Context, ref string) (*rule.Rule, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, argError("rule is required: a ref from search results (\"sigma/<id>\"), an id, an exact title or a file name")
	}
	if err := checkText("rule", ref); err != nil {
		return nil, err
	}
	if lang, id, ok := parseRuleURI(ref); ok {
		ref = lang + "/" + id
	}
	r, err := s.cat.RuleByName(ctx, ref)
	var le *catalog.LookupError
	if errors.As(err, &le) {
		if le.Ambiguous() {
			return nil, argError("%q names %d rules; pass one ref: %s", ref, len(le.Candidates), refList(le.Candidates, 10))
		}
		msg := fmt.Sprintf("no rule %q", ref)
		if len(le.Suggestions) > 0 {
			msg += "; closest titles: " + refList(le.Suggestions, 5)
		}
		return nil, errors.New(msg + " (search_rules finds rules by words)")
	}
	return r, err
}

func refList(xs []catalog.Summary, n int) string {
	var out []string
	for i, x := range xs {
		if i == n {
			out = append(out, fmt.Sprintf("and %d more", len(xs)-n))
			break
		}
		out = append(out, fmt.Sprintf("%s/%s (%q)", x.Language, x.ID, x.Title))
	}
	return strings.Join(out, ", ")
}

// ruleURIPrefix starts every rule resource URI.
const ruleURIPrefix = "ruledex://rules/"

// RuleURI is the resource URI of a rule.
func RuleURI(lang rule.Language, id string) string {
	return ruleURIPrefix + string(lang) + "/" + escapeID(id)
}

// escapeID percent-encodes what may not stand in one URI path segment; ids are mostly
// UUIDs and hashes, but upstream ids are free text.
func escapeID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// parseRuleURI splits ruledex://rules/<lang>/<id> (id percent-encoded).
func parseRuleURI(uri string) (lang, id string, ok bool) {
	rest, found := strings.CutPrefix(uri, ruleURIPrefix)
	if !found {
		return "", "", false
	}
	lang, enc, found := strings.Cut(rest, "/")
	if !found || lang == "" || enc == "" {
		return "", "", false
	}
	id, err := unescapeID(enc)
	if err != nil {
		return "", "", false
	}
	return lang, id, true
}

func unescapeID(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("bad escape")
		}
		var c byte
		if _, err := fmt.Sscanf(s[i+1:i+3], "%02X", &c); err != nil {
			return "", err
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), nil
}

// ruleRef is how results name a rule for get_rule and neighbors.
func ruleRef(lang, id string) string { return lang + "/" + id }

// cut shortens s to at most n bytes on a rune boundary, saying how much was left out.
func cut(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + fmt.Sprintf(" … [%d more bytes]", len(s)-i), true
}

// schema infers the input schema of T and lets tweak add what struct tags cannot say
// (enums, bounds, patterns, defaults).
func schema[T any](tweak func(p map[string]*jsonschema.Schema)) (*jsonschema.Schema, error) {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		return nil, err
	}
	if tweak != nil {
		tweak(s.Properties)
	}
	return s, nil
}

func enumOf[S ~string](vals []S) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// pagingSchema bounds offset and limit.
func pagingSchema(p map[string]*jsonschema.Schema) {
	if o := p["offset"]; o != nil {
		o.Minimum = ptr(0.0)
	}
	if l := p["limit"]; l != nil {
		l.Minimum, l.Maximum = ptr(1.0), ptr(float64(maxLimit))
	}
}
