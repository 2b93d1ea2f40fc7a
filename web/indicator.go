package web

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// keySep separates the parts of an indicator key (see fieldmap.Key).
const keySep = "\x1f"

// validKinds are the indicator kinds a URL may name.
var validKinds = map[string]bool{}

func init() {
	for _, k := range []rule.Kind{rule.Eq, rule.Ne, rule.Match, rule.StartsW, rule.EndsW, rule.Glob, rule.Regex, rule.CIDR,
		rule.In, rule.Gt, rule.Ge, rule.Lt, rule.Le, rule.IsNull, rule.IsNotNull, rule.Keyword, rule.FieldRef} {
		validKinds[string(k)] = true
	}
}

// IndicatorURL is the page of the indicator with key, as a rule page links it. The
// query spells out the key's parts (field, kind, transforms, value) so the link is
// readable, and cased=1 marks case-sensitive tests, whose key keeps the value's case.
func IndicatorURL(in rule.Indicator) string {
	return indicatorURLFromKey(in.Canonical, in.Key, in.Transforms)
}

func indicatorURLFromKey(canonical, key string, transforms []string) string {
	parts := strings.SplitN(key, keySep, 4)
	if len(parts) != 4 {
		return "/indicators/?key=" + url.QueryEscape(key)
	}
	q := url.Values{}
	if canonical == "" {
		canonical = parts[0]
	}
	q.Set("field", canonical)
	q.Set("kind", parts[1])
	q.Set("value", parts[3])
	if parts[2] != "" {
		q.Set("transforms", parts[2])
	}
	for _, t := range transforms {
		if t == rule.TCased {
			q.Set("cased", "1")
		}
	}
	return "/indicators/?" + q.Encode()
}

// IndicatorResponse is the body of /api/indicators and the indicator page's data.
type IndicatorResponse struct {
	Field      string         `json:"field"`
	Kind       string         `json:"kind"`
	Value      string         `json:"value"`
	Transforms []string       `json:"transforms,omitempty"`
	Cased      bool           `json:"cased,omitempty"`
	Key        string         `json:"key"`
	Rules      int            `json:"rules"`
	ByLanguage map[string]int `json:"by_language"`
	// Equivalence lists the field-map rows that make other field names count as Field.
	Equivalence []Equivalence    `json:"equivalence"`
	Groups      []IndicatorGroup `json:"groups"`
}

// Equivalence is one field-map row: in Context, Field means the canonical field.
type Equivalence struct {
	Context  string `json:"context"`
	Field    string `json:"field"`
	NameOnly bool   `json:"name_only,omitempty"`
	Source   string `json:"source,omitempty"`
}

// IndicatorGroup is the rules of one language sharing the indicator.
type IndicatorGroup struct {
	Language string              `json:"language"`
	Rules    []IndicatorRuleView `json:"rules"`
}

// IndicatorRuleView is one rule with the indicator as it writes it.
type IndicatorRuleView struct {
	catalog.IndicatorRule
	URL string `json:"url"`
}

func (s *Server) indicator(r *http.Request) (*IndicatorResponse, error) {
	q := r.URL.Query()
	key, err := param(q, "key")
	if err != nil {
		return nil, err
	}
	out := &IndicatorResponse{ByLanguage: map[string]int{}, Equivalence: []Equivalence{}, Groups: []IndicatorGroup{}}
	if key == "" {
		field, err := param(q, "field")
		if err != nil {
			return nil, err
		}
		kind, err := param(q, "kind")
		if err != nil {
			return nil, err
		}
		value, err := param(q, "value")
		if err != nil {
			return nil, err
		}
		tr, err := param(q, "transforms")
		if err != nil {
			return nil, err
		}
		cased, err := param(q, "cased")
		if err != nil {
			return nil, err
		}
		if kind == "" {
			return nil, badRequest("give field, kind and value (or key)")
		}
		if !validKinds[kind] {
			return nil, badRequest("unknown kind %q", kind)
		}
		if field == "" && kind != string(rule.Keyword) {
			return nil, badRequest("field is required for kind %s", kind)
		}
		var transforms []string
		if tr != "" {
			transforms = strings.FieldsFunc(tr, func(r rune) bool { return r == '|' || r == ',' })
		}
		if cased == "1" || cased == "true" {
			transforms = append(transforms, rule.TCased)
		}
		// A link from a rule page names the canonical field, kind and value of the
		// key exactly; try that first. A person typing a written field name
		// (NewProcessName) gets it through the field map.
		isCased := cased == "1" || cased == "true"
		key = fieldmap.Key(field, rule.Kind(kind), transforms, value, isCased)
		rows, err := s.cat.IndicatorRules(r.Context(), key)
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			_, key = fieldmap.Default().IndicatorKey(nil, field, rule.Kind(kind), transforms, value)
		}
	}
	parts := strings.SplitN(key, keySep, 4)
	if len(parts) != 4 {
		return nil, badRequest("malformed indicator key")
	}
	out.Key = key
	out.Kind = parts[1]
	out.Value = parts[3]
	out.Field = parts[0]
	if parts[2] != "" {
		out.Transforms = strings.Split(parts[2], "|")
	}
	rows, err := s.cat.IndicatorRules(r.Context(), key)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, notFound("no rule tests %s %s %q", out.Field, out.Kind, out.Value)
	}
	// Show the field as the rules spell the canonical name, not lower-cased.
	for _, row := range rows {
		if strings.EqualFold(row.Field, out.Field) {
			out.Field = row.Field
			break
		}
	}
	for _, e := range fieldmap.Default().Entries {
		if strings.EqualFold(e.Canonical, out.Field) {
			out.Field = e.Canonical
			out.Equivalence = append(out.Equivalence, Equivalence{Context: e.Context, Field: e.Field, NameOnly: e.NameOnly, Source: e.Source})
		}
	}
	// Case sensitivity is the counting key's: a rule may write the value with a cased
	// test (KQL ==) and still be counted under a case-insensitive key; its own row
	// shows that.
	for _, t := range out.Transforms {
		if t == rule.TCased {
			out.Cased = true
		}
	}
	seen := map[string]bool{}
	byLang := map[string]*IndicatorGroup{}
	for _, row := range rows {
		if byLang[row.Language] == nil {
			byLang[row.Language] = &IndicatorGroup{Language: row.Language}
		}
		g := byLang[row.Language]
		g.Rules = append(g.Rules, IndicatorRuleView{IndicatorRule: row, URL: RuleURL(row.Language, row.ID)})
		if !row.Negated && !seen[row.Language+"\x00"+row.ID] {
			seen[row.Language+"\x00"+row.ID] = true
			out.ByLanguage[row.Language]++
			out.Rules++
		}
	}
	langs := make([]string, 0, len(byLang))
	for l := range byLang {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		out.Groups = append(out.Groups, *byLang[l])
	}
	return out, nil
}

func (s *Server) indicatorAPI(r *http.Request) (any, error) { return s.indicator(r) }

func (s *Server) indicatorPage(r *http.Request) (string, *view, error) {
	d, err := s.indicator(r)
	if err != nil {
		return "", nil, err
	}
	return "indicator", &view{Title: d.Field + " " + d.Kind + " " + d.Value, API: "/api/indicators?" + r.URL.RawQuery,
		Crumbs: []crumb{{Name: "Detection rules", URL: "/rules/"}, {Name: "Indicators"}}, Data: d}, nil
}
