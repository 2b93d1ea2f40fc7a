// Package page is the view model of a rule page (REFERENCE §1): BuildRule turns a
// rule's IR plus what the catalog knows about the rest of the corpus (indicator counts,
// ATT&CK names) into ordered sections. The CLI renders it as text (WriteText), the web
// as HTML, so both show the same data in the same order. Sections with nothing to show
// are nil/empty and renderers leave them out.
package page

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"unicode"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

// RuleURL is the path of a rule's page: /rules/<lang>/<id>/.
func RuleURL(lang rule.Language, id string) string {
	return "/rules/" + url.PathEscape(string(lang)) + "/" + url.PathEscape(id) + "/"
}

// Rule is a rule page.
type Rule struct {
	URL        string  `json:"url"`
	Breadcrumb []Crumb `json:"breadcrumb"`
	Title      string  `json:"title"`
	// Banner explains why a rule is not a detection over telemetry ("" for detections).
	Banner      string      `json:"banner,omitempty"`
	Meta        []MetaItem  `json:"meta"`
	Description string      `json:"description,omitempty"`
	References  []string    `json:"references,omitempty"`
	Attack      []AttackRow `json:"attack,omitempty"`
	// Events is event coverage; BuildRule leaves it empty, callers with an event
	// catalog fill it (the CLI and web use package winevent).
	Events []EventRow `json:"events,omitempty"`
	// AbsentFields are fields the rule tests that none of its Sysmon events carries
	// (winevent.AbsentFields); filled by the same callers as Events.
	AbsentFields []AbsentField  `json:"absent_fields,omitempty"`
	Bodies       []Body         `json:"bodies"`
	Stages       []StageView    `json:"stages,omitempty"`
	Alternatives int            `json:"alternatives,omitempty"` // >0 when the rule is an OR of conjunctions
	Exclusions   []ExclusionRow `json:"exclusions,omitempty"`
	Indicators   []IndicatorRow `json:"indicators,omitempty"`
	Outputs      []string       `json:"outputs,omitempty"`
	// Risk is the rule's risk rating (Elastic risk_score, ESCU risk score, confidence
	// and impact), each as the language states it.
	Risk []MetaItem `json:"risk,omitempty"`
	// Settings are the rule's parameters (Elastic rule type settings, YARA-L match
	// window and options), as written.
	Settings []rule.Setting `json:"settings,omitempty"`
	// Translations is the "In other languages" section (see Translation).
	Translations []Translation `json:"translations,omitempty"`
	// Docs are the rule's prose sections in Markdown (investigation guide, setup, how to
	// implement, known false positives); renderers must treat them as untrusted.
	Docs []rule.Doc `json:"docs,omitempty"`
	// Computed are the columns the rule derives, with their definitions.
	Computed []rule.Computed `json:"computed,omitempty"`
	// Neighbors is REFERENCE §1.11; BuildRule leaves it nil, callers with stored
	// neighbors fill it (the CLI from catalog.Neighbors).
	Neighbors   *Neighbors        `json:"neighbors,omitempty"`
	Diagnostics []rule.Diagnostic `json:"diagnostics,omitempty"`
}

// Neighbors lists rules related to this one by their logic (REFERENCE §1.11).
type Neighbors struct {
	ClassID    string        `json:"class_id,omitempty"`
	ClassURL   string        `json:"class_url,omitempty"`
	ClassSize  int           `json:"class_size,omitempty"`
	ClassBasis string        `json:"class_basis,omitempty"`
	Shape      string        `json:"shape,omitempty"`
	Equivalent []NeighborRow `json:"equivalent"`
	Stricter   []NeighborRow `json:"stricter"`
	Broader    []NeighborRow `json:"broader"`
}

// NeighborRow is one related rule and how it differs.
type NeighborRow struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Language   string `json:"language"`
	Source     string `json:"source"`
	URL        string `json:"url"`
	Basis      string `json:"basis"` // "same-telemetry" or "field-map"
	Difference string `json:"difference,omitempty"`
}

// Empty reports whether there is nothing to show.
func (n *Neighbors) Empty() bool {
	return n == nil || len(n.Equivalent)+len(n.Stricter)+len(n.Broader) == 0
}

// EqClassURL is the page of an equivalence class.
func EqClassURL(id string) string { return "/rules/eq/" + url.PathEscape(id) + "/" }

// LoadNeighbors reads a rule's stored neighbors; nil when it has none (neighbors are
// computed after each ingest).
func LoadNeighbors(ctx context.Context, cat *catalog.Catalog, r *rule.Rule) (*Neighbors, error) {
	ns, err := cat.Neighbors(ctx, r.Language, r.ID)
	if err != nil {
		return nil, err
	}
	if len(ns.Equivalent)+len(ns.Stricter)+len(ns.Broader) == 0 && ns.ClassSize <= 1 {
		return nil, nil
	}
	rows := func(items []catalog.Neighbor) []NeighborRow {
		out := make([]NeighborRow, 0, len(items))
		for _, n := range items {
			out = append(out, NeighborRow{ID: n.ID, Title: n.Title, Language: string(n.Language), Source: n.Repo,
				URL: RuleURL(n.Language, n.ID), Basis: n.Basis, Difference: n.Difference})
		}
		return out
	}
	out := &Neighbors{ClassID: ns.ClassID, ClassSize: ns.ClassSize, ClassBasis: ns.ClassBasis, Shape: ns.Shape,
		Equivalent: rows(ns.Equivalent), Stricter: rows(ns.Stricter), Broader: rows(ns.Broader)}
	if ns.ClassID != "" {
		out.ClassURL = EqClassURL(ns.ClassID)
	}
	return out, nil
}

// Crumb is one breadcrumb link.
type Crumb struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// MetaItem is one metadata line: Label (Status, Kind, Severity, Log source, Time window,
// Group by, Author, Source) and its value, with a link when the value has one.
type MetaItem struct {
	Label string `json:"label"`
	Value string `json:"value"`
	Link  string `json:"link,omitempty"`
}

// AttackRow is one tactic of the ATT&CK coverage table and the rule's techniques in it.
type AttackRow struct {
	Tactic     TacticRef      `json:"tactic"`
	Techniques []TechniqueRef `json:"techniques"` // empty: the rule names the tactic only
}

// TacticRef names a tactic. Named is false for a row of techniques whose tactic the
// rule itself does not name.
type TacticRef struct {
	Short string `json:"short"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name"`
	Named bool   `json:"named"`
}

// TechniqueRef names a technique; Name is "" when the ATT&CK data is not loaded or
// does not know the ID (Unknown).
type TechniqueRef struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Revoked    bool   `json:"revoked,omitempty"`
	RevokedBy  string `json:"revoked_by,omitempty"`
	Deprecated bool   `json:"deprecated,omitempty"`
	Unknown    bool   `json:"unknown,omitempty"`
}

// EventRow is one event the rule can match.
type EventRow struct {
	Provider string `json:"provider"`
	EventID  int    `json:"event_id"`
	Title    string `json:"title"`
	URL      string `json:"url,omitempty"`
}

// AbsentFieldsNote introduces AbsentFields wherever a rule page lists them.
const AbsentFieldsNote = "Fields the rule tests that none of its Sysmon events carries (per Sysmon's manifest): " +
	"on those events a test of them is never true, a negated one always. The rule needs telemetry that adds " +
	"them, or another of its events (not checked)."

// AbsentField is a field the rule tests that none of Events (the Sysmon ones) carries.
type AbsentField struct {
	Field  string   `json:"field"`
	Events []string `json:"events"`
}

// Body is the rule text verbatim with its syntax name.
type Body struct {
	Label string `json:"label,omitempty"`
	Lang  string `json:"lang"`
	Text  string `json:"text"`
}

// StageView is one stage: Title is "Stage 1: selection"; Alt numbers the alternative
// of a top-level OR (0 when the rule is one conjunction).
type StageView struct {
	Index   int            `json:"index"`
	Alt     int            `json:"alt,omitempty"`
	Title   string         `json:"title"`
	Kind    rule.StageKind `json:"kind"`
	Negated bool           `json:"negated,omitempty"`
	Text    string         `json:"text,omitempty"`
}

// ExclusionRow is one predicate of a negated top-level stage.
type ExclusionRow struct {
	Stage      int       `json:"stage"`
	StageLabel string    `json:"stage_label"`
	Field      string    `json:"field"`
	Kind       rule.Kind `json:"kind"`
	Transforms []string  `json:"transforms,omitempty"`
	Values     []string  `json:"values"`
}

// IndicatorRow is the values one field and kind is tested with.
type IndicatorRow struct {
	Field      string           `json:"field"`
	Canonical  string           `json:"canonical"`
	Kind       rule.Kind        `json:"kind"`
	Transforms []string         `json:"transforms,omitempty"`
	Values     []IndicatorValue `json:"values"`
}

// IndicatorValue is one value with its corpus count. Total counts every rule of the
// catalog testing the same key, this one included; Shared is Total > 1 (the count is
// shown only then).
type IndicatorValue struct {
	Value      string              `json:"value"`
	Key        string              `json:"key"`
	Indicator  rule.Indicator      `json:"-"`
	Total      int                 `json:"total"`
	ByLanguage []catalog.LangCount `json:"by_language,omitempty"`
	Shared     bool                `json:"shared"`
}

// CorpusText is the count as pages print it: "corpus 29 (sigma 28, kusto 1)", "" when
// only this rule has the indicator.
func (v IndicatorValue) CorpusText() string {
	if !v.Shared {
		return ""
	}
	var b strings.Builder
	b.WriteString("corpus ")
	b.WriteString(itoa(v.Total))
	if len(v.ByLanguage) > 0 {
		b.WriteString(" (")
		for i, lc := range v.ByLanguage {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(string(lc.Language))
			b.WriteByte(' ')
			b.WriteString(itoa(lc.Rules))
		}
		b.WriteByte(')')
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	if neg {
		d = append([]byte{'-'}, d...)
	}
	return string(d)
}

// Input is what BuildRule needs besides the rule. Every field is optional.
type Input struct {
	// Counts are the corpus counts of the rule's positive indicators by key
	// (catalog.RuleIndicatorCounts).
	Counts map[string]catalog.Count
	// Tactics and Techniques name ATT&CK IDs (catalog.Tactics / catalog.Techniques).
	Tactics    []catalog.Tactic
	Techniques []catalog.Technique
}

// BuildRule builds the page of r.
func BuildRule(r *rule.Rule, in Input) *Rule {
	p := &Rule{
		URL: RuleURL(r.Language, r.ID),
		Breadcrumb: []Crumb{
			{Name: "Detection rules", URL: "/rules/"},
			{Name: r.Language.Display(), URL: "/rules/?language=" + url.QueryEscape(string(r.Language))},
		},
		Title:       r.Title,
		Banner:      banner(r.Class),
		Description: strings.TrimSpace(r.Description),
		References:  r.References,
		Outputs:     r.Outputs,
		Diagnostics: r.Diagnostics,
	}
	p.Meta = meta(r)
	p.Attack = attackRows(r, in.Tactics, in.Techniques)
	if r.Body != "" {
		p.Bodies = append(p.Bodies, Body{Lang: r.BodyLang, Text: r.Body})
	}
	for _, v := range r.Bodies {
		p.Bodies = append(p.Bodies, Body{Label: v.Label, Lang: v.Lang, Text: v.Body})
	}
	for _, s := range r.Stages {
		label := s.Label
		if label == "" {
			label = string(s.Kind)
		}
		p.Stages = append(p.Stages, StageView{Index: s.Index, Alt: s.Alt, Title: "Stage " + itoa(s.Index) + ": " + label,
			Kind: s.Kind, Negated: s.Negated, Text: s.Text})
		p.Alternatives = max(p.Alternatives, s.Alt)
	}
	p.Exclusions = exclusions(r)
	p.Indicators = indicators(r, in.Counts)
	p.Risk = risk(r)
	p.Settings = r.Settings
	p.Docs = docs(r)
	p.Computed = r.Computed
	return p
}

// risk gathers the risk rating: the IR's score, else ESCU's tags as the parser kept
// them in Extra, with ESCU's confidence and impact (the score is their product / 100).
func risk(r *rule.Rule) []MetaItem {
	var out []MetaItem
	score := ""
	if r.RiskScore > 0 {
		score = itoa(r.RiskScore)
	} else if v := strings.TrimSpace(r.Extra["risk_score"]); v != "" {
		score = v
	}
	if score != "" {
		out = append(out, MetaItem{Label: "Risk score", Value: score})
	}
	for _, k := range [][2]string{{"confidence", "Confidence"}, {"impact", "Impact"}} {
		if v := strings.TrimSpace(r.Extra[k[0]]); v != "" {
			out = append(out, MetaItem{Label: k[1], Value: v})
		}
	}
	return out
}

// docs lists the rule's prose sections: the IR's Docs, then the ones only kept
// elsewhere (ESCU how_to_implement in Extra, Sigma falsepositives and ESCU
// known_false_positives in FalsePositives) unless a Doc of that title already has them.
func docs(r *rule.Rule) []rule.Doc {
	out := append([]rule.Doc(nil), r.Docs...)
	has := func(titles ...string) bool {
		for _, d := range out {
			for _, t := range titles {
				if strings.EqualFold(strings.TrimSpace(d.Title), t) {
					return true
				}
			}
		}
		return false
	}
	if v := strings.TrimSpace(r.Extra["how_to_implement"]); v != "" && !has("How to implement") {
		out = append(out, rule.Doc{Title: "How to implement", Markdown: v})
	}
	var fps []string
	for _, fp := range r.FalsePositives {
		if fp = strings.TrimSpace(fp); fp != "" {
			fps = append(fps, fp)
		}
	}
	if len(fps) > 0 && !has("False positives", "Known false positives") {
		md := fps[0]
		if len(fps) > 1 {
			md = "- " + strings.Join(fps, "\n- ")
		}
		out = append(out, rule.Doc{Title: "False positives", Markdown: md})
	}
	return out
}

func banner(c rule.Class) string {
	switch c {
	case rule.VendorFeed:
		return "This rule forwards alerts of a third-party product; it does not inspect telemetry itself. It is searchable but not listed among detections or counted in ATT&CK coverage."
	case rule.BuildingBlock:
		return "This is a building-block rule: it feeds other rules and never alerts on its own. It is not listed among detections or counted in ATT&CK coverage."
	case rule.Hunting:
		return "This is a hunting query, run by an analyst rather than scheduled as a detection."
	case rule.Tutorial:
		return "This query comes from teaching material (a webcast or learning session): it shows the language step by step rather than detecting something. It is searchable but not listed among detections or counted in ATT&CK coverage."
	}
	return ""
}

func meta(r *rule.Rule) []MetaItem {
	var m []MetaItem
	add := func(label, value, link string) {
		if value = strings.TrimSpace(value); value != "" {
			m = append(m, MetaItem{Label: label, Value: value, Link: link})
		}
	}
	add("Status", r.Status, "")
	if r.Type != "rule" { // the default document kind says nothing
		add("Kind", r.Type, "")
	}
	add("Severity", r.Severity, "")
	add("Log source", logSource(r.LogSource), "")
	add("Time window", r.Timeframe, "")
	add("Group by", strings.Join(r.GroupBy, ", "), "")
	add("Author", strings.Join(r.Authors, ", "), "")
	add("Source", r.Source.Repo, r.Source.UpstreamURL)
	return m
}

func logSource(ls rule.LogSource) string {
	var parts []string
	for _, kv := range [][2]string{{"product", ls.Product}, {"category", ls.Category}, {"service", ls.Service}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if len(ls.Tables) > 0 {
		parts = append(parts, "tables "+strings.Join(ls.Tables, ", "))
	}
	if len(ls.DataModels) > 0 {
		parts = append(parts, "data models "+strings.Join(ls.DataModels, ", "))
	}
	if len(ls.DataSources) > 0 {
		parts = append(parts, "data sources "+strings.Join(ls.DataSources, ", "))
	}
	if len(ls.Indexes) > 0 {
		parts = append(parts, "indexes "+strings.Join(ls.Indexes, ", "))
	}
	if len(ls.EventTypes) > 0 {
		parts = append(parts, "event types "+strings.Join(ls.EventTypes, ", "))
	}
	return strings.Join(parts, ", ")
}

// attackRows puts each technique under every tactic the rule names that the technique
// belongs to, tactics in the order the rule names them; techniques under none of them
// get rows of their own ATT&CK tactics (Named false, after, in matrix order), and
// techniques ATT&CK does not place (unknown IDs, no data loaded) a final row with an
// empty tactic.
func attackRows(r *rule.Rule, tactics []catalog.Tactic, techniques []catalog.Technique) []AttackRow {
	if len(r.Tactics) == 0 && len(r.Techniques) == 0 {
		return nil
	}
	tacBy := map[string]catalog.Tactic{}
	for _, t := range tactics {
		tacBy[t.Short] = t
	}
	techBy := map[string]catalog.Technique{}
	for _, t := range techniques {
		techBy[t.ID] = t
	}
	order := func(short string) int {
		if t, ok := tacBy[short]; ok {
			return t.Order
		}
		return 1 << 20
	}
	named := uniqStrings(r.Tactics)
	rows := map[string]*AttackRow{}
	var keys []string
	row := func(short string, isNamed bool) *AttackRow {
		if x, ok := rows[short]; ok {
			return x
		}
		ref := TacticRef{Short: short, Name: tacticName(short), Named: isNamed}
		if t, ok := tacBy[short]; ok {
			ref.ID, ref.Name = t.ID, t.Name
		}
		x := &AttackRow{Tactic: ref, Techniques: []TechniqueRef{}}
		rows[short] = x
		keys = append(keys, short)
		return x
	}
	for _, t := range named {
		row(t, true)
	}
	var unplaced []TechniqueRef
	for _, id := range uniqStrings(r.Techniques) {
		ref := TechniqueRef{ID: id}
		t, ok := techBy[id]
		if ok {
			ref.Name, ref.Revoked, ref.RevokedBy, ref.Deprecated = t.Name, t.Revoked, t.RevokedBy, t.Deprecated
		} else {
			ref.Unknown = len(techniques) > 0
		}
		placed := false
		for _, tac := range t.Tactics {
			if contains(named, tac) {
				x := row(tac, true)
				x.Techniques = append(x.Techniques, ref)
				placed = true
			}
		}
		if !placed && len(t.Tactics) > 0 {
			for _, tac := range t.Tactics {
				x := row(tac, false)
				x.Techniques = append(x.Techniques, ref)
			}
			placed = true
		}
		if !placed {
			unplaced = append(unplaced, ref)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := rows[keys[i]], rows[keys[j]]
		if a.Tactic.Named != b.Tactic.Named {
			return a.Tactic.Named
		}
		if a.Tactic.Named {
			return false // keep the rule's order
		}
		return order(keys[i]) < order(keys[j])
	})
	var out []AttackRow
	for _, k := range keys {
		out = append(out, *rows[k])
	}
	if len(unplaced) > 0 {
		out = append(out, AttackRow{Techniques: unplaced})
	}
	return out
}

// tacticName spells a short name for display when no ATT&CK data is loaded:
// "command-and-control" gives "Command and Control".
func tacticName(short string) string {
	words := strings.FieldsFunc(short, func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		if w == "and" && i > 0 {
			continue
		}
		rs := []rune(w)
		rs[0] = unicode.ToUpper(rs[0])
		words[i] = string(rs)
	}
	return strings.Join(words, " ")
}

func uniqStrings(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func exclusions(r *rule.Rule) []ExclusionRow {
	var out []ExclusionRow
	for _, sp := range r.Exclusions() {
		p := sp.Pred
		row := ExclusionRow{Stage: sp.Stage.Index, StageLabel: sp.Stage.Label, Field: p.Field, Kind: p.Kind, Transforms: p.Transforms}
		for _, v := range p.Values {
			row.Values = append(row.Values, valueText(v))
		}
		if len(row.Values) == 0 {
			row.Values = []string{}
		}
		sort.Strings(row.Values)
		out = append(out, row)
	}
	return out
}

func valueText(v rule.Value) string {
	if v.Type == rule.Null {
		return "null"
	}
	return v.S
}

// indicators groups the rule's positive indicators by field, kind and transforms,
// rows by field then kind, values sorted: the order pages show.
func indicators(r *rule.Rule, counts map[string]catalog.Count) []IndicatorRow {
	type gk struct{ field, kind, tr string }
	rows := map[gk]*IndicatorRow{}
	for _, in := range r.Indicators {
		if in.Negated {
			continue
		}
		k := gk{in.Field, string(in.Kind), strings.Join(in.Transforms, "|")}
		row := rows[k]
		if row == nil {
			row = &IndicatorRow{Field: in.Field, Canonical: in.Canonical, Kind: in.Kind, Transforms: in.Transforms}
			rows[k] = row
		}
		v := IndicatorValue{Value: in.Value, Key: in.Key, Indicator: in}
		if c, ok := counts[in.Key]; ok {
			v.Total, v.ByLanguage = c.Total, c.ByLanguage
		}
		v.Shared = v.Total > 1
		row.Values = append(row.Values, v)
	}
	out := make([]IndicatorRow, 0, len(rows))
	for _, row := range rows {
		sort.SliceStable(row.Values, func(i, j int) bool { return row.Values[i].Value < row.Values[j].Value })
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if fa, fb := strings.ToLower(a.Field), strings.ToLower(b.Field); fa != fb {
			return fa < fb
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if ta, tb := strings.Join(a.Transforms, "|"), strings.Join(b.Transforms, "|"); ta != tb {
			return ta < tb
		}
		// Fields written in two cases (eventType, eventtype) are two rows: without this
		// their order was the map's, so two exports of one catalog differed.
		return a.Field < b.Field
	})
	return out
}

// LoadInput gathers what BuildRule needs about r from the catalog: the corpus counts of
// its indicators and the ATT&CK names stored by the last ingest with reference data.
func LoadInput(ctx context.Context, cat *catalog.Catalog, r *rule.Rule) (Input, error) {
	var in Input
	var err error
	if in.Counts, err = cat.RuleIndicatorCounts(ctx, r); err != nil {
		return in, err
	}
	if in.Tactics, err = cat.Tactics(ctx); err != nil {
		return in, err
	}
	if len(r.Techniques) > 0 {
		if in.Techniques, err = cat.Techniques(ctx, r.Techniques...); err != nil {
			return in, err
		}
	}
	return in, nil
}
