package mcpserver

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
)

// ---- find_indicator

func (s *Server) findIndicator(ctx context.Context, _ *mcp.CallToolRequest, a IndicatorArgs) (*mcp.CallToolResult, *IndicatorResult, error) {
	w, err := newWindow(a.Offset, a.Limit)
	if err != nil {
		return nil, nil, err
	}
	for name, v := range map[string]string{"field": a.Field, "value": a.Value} {
		if err := checkText(name, v); err != nil {
			return nil, nil, err
		}
	}
	kind, ok := rule.ParseKind(a.Kind)
	if !ok {
		return nil, nil, argError("unknown kind %q; use one of %s (or contains, endswith, startswith, has)", a.Kind, strings.Join(enumStrings(rule.Kinds), ", "))
	}
	if strings.TrimSpace(a.Field) == "" && kind != rule.Keyword {
		return nil, nil, argError("field is required for kind %s (only keyword tests have no field)", kind)
	}
	var transforms []string
	for _, t := range a.Transforms {
		t = strings.ToLower(strings.TrimSpace(t))
		if !slices.Contains(rule.Transforms, t) {
			return nil, nil, argError("unknown transform %q; use one of %s", t, strings.Join(rule.Transforms, ", "))
		}
		transforms = append(transforms, t)
	}
	canon, key := fieldmap.Default().IndicatorKey(nil, a.Field, kind, transforms, a.Value)
	uses, err := s.cat.RulesByIndicatorKey(ctx, key, 0)
	if err != nil {
		return nil, nil, err
	}
	out := &IndicatorResult{Field: a.Field, Canonical: canon, Kind: string(kind), Value: a.Value, Transforms: transforms, Key: key,
		ByLanguage: map[string]int{}, Offset: w.offset, Uses: []IndicatorUse{}}
	seen := map[string]bool{}
	for _, u := range uses {
		ref := ruleRef(string(u.Language), u.ID)
		if u.Negated {
			out.Excluded++
		} else if !seen[ref] {
			seen[ref] = true
			out.Rules++
			out.ByLanguage[string(u.Language)]++
		}
	}
	from, to, next := w.slice(len(uses))
	out.NextOffset = next
	for _, u := range uses[from:to] {
		v, _ := cut(u.Value, maxSnippet)
		out.Uses = append(out.Uses, IndicatorUse{Ref: ruleRef(string(u.Language), u.ID), Title: u.Title, Language: string(u.Language),
			Source: u.Repo, Field: u.Field, Kind: string(u.Kind), Value: v, Negated: u.Negated})
	}
	if len(uses) == 0 && a.Value != "" {
		near, err := s.cat.NearIndicators(ctx, canon, strings.TrimLeft(a.Value, `\/*`), 5)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range near {
			ni := NearIndicator{Field: n.Field, Kind: n.Kind, Value: n.Value, Rules: n.Rules}
			if n.Transforms != "" {
				ni.Transforms = strings.Split(n.Transforms, "|")
			}
			out.Nearest = append(out.Nearest, ni)
		}
	}
	return nil, out, nil
}

func enumStrings[S ~string](vals []S) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

// ---- neighbors

// NeighborsResult is neighbors' answer.
type NeighborsResult struct {
	Ref        string `json:"ref"`
	Title      string `json:"title"`
	ClassID    string `json:"class_id,omitempty"`
	ClassSize  int    `json:"class_size,omitempty"`
	ClassBasis string `json:"class_basis,omitempty"`
	// Shape is the canonical logic the equivalence is proved on.
	Shape  string         `json:"shape,omitempty"`
	Totals map[string]int `json:"totals"`
	Offset int            `json:"offset"`
	// NextOffset is set when any list has more after this page.
	NextOffset int            `json:"next_offset,omitempty"`
	Equivalent []NeighborRule `json:"equivalent,omitempty"`
	Stricter   []NeighborRule `json:"stricter,omitempty"`
	Broader    []NeighborRule `json:"broader,omitempty"`
}

// NeighborRule is one related rule.
type NeighborRule struct {
	Ref        string `json:"ref"`
	Title      string `json:"title"`
	Language   string `json:"language"`
	Source     string `json:"source,omitempty"`
	Basis      string `json:"basis"`
	Difference string `json:"difference,omitempty"`
}

func (s *Server) neighbors(ctx context.Context, _ *mcp.CallToolRequest, a NeighborsArgs) (*mcp.CallToolResult, *NeighborsResult, error) {
	w, err := newWindow(a.Offset, a.Limit)
	if err != nil {
		return nil, nil, err
	}
	if a.Relation != "" && !slices.Contains([]string{"equivalent", "stricter", "broader"}, a.Relation) {
		return nil, nil, argError("unknown relation %q; use equivalent, stricter or broader", a.Relation)
	}
	r, err := s.resolveRule(ctx, a.Rule)
	if err != nil {
		return nil, nil, err
	}
	nb, err := page.LoadNeighbors(ctx, s.cat, r)
	if err != nil {
		return nil, nil, err
	}
	out := &NeighborsResult{Ref: ruleRef(string(r.Language), r.ID), Title: r.Title, Offset: w.offset,
		Totals: map[string]int{"equivalent": 0, "stricter": 0, "broader": 0}}
	if nb == nil {
		return nil, out, nil
	}
	out.ClassID, out.ClassSize, out.ClassBasis, out.Shape = nb.ClassID, nb.ClassSize, nb.ClassBasis, nb.Shape
	for _, l := range []struct {
		name string
		src  []page.NeighborRow
		dst  *[]NeighborRule
	}{{"equivalent", nb.Equivalent, &out.Equivalent}, {"stricter", nb.Stricter, &out.Stricter}, {"broader", nb.Broader, &out.Broader}} {
		out.Totals[l.name] = len(l.src)
		if a.Relation != "" && a.Relation != l.name {
			continue
		}
		from, to, next := w.slice(len(l.src))
		out.NextOffset = max(out.NextOffset, next)
		*l.dst = []NeighborRule{}
		for _, n := range l.src[from:to] {
			*l.dst = append(*l.dst, NeighborRule{Ref: ruleRef(n.Language, n.ID), Title: n.Title, Language: n.Language, Source: n.Source,
				Basis: n.Basis, Difference: n.Difference})
		}
	}
	return nil, out, nil
}

// ---- technique_coverage

// CoverageResult is technique_coverage's answer.
type CoverageResult struct {
	Technique *TechniqueInfo    `json:"technique,omitempty"`
	Tactic    *TacticInfo       `json:"tactic,omitempty"`
	Filter    map[string]string `json:"filter,omitempty"`
	// Rules counts every rule tagging it (any class), Detections the detection rules.
	Rules      int            `json:"rules"`
	Detections int            `json:"detections"`
	ByLanguage map[string]int `json:"by_language"`
	BySource   map[string]int `json:"by_source"`
	// Techniques are the techniques of the tactic, or the sub-techniques of the
	// technique, with their detection counts; Uncovered those with none.
	Techniques []TechniqueCount `json:"techniques,omitempty"`
	Covered    int              `json:"covered"`
	Uncovered  []TechniqueCount `json:"uncovered"`
	Offset     int              `json:"offset"`
	NextOffset int              `json:"next_offset,omitempty"`
	RuleList   []CoverageRule   `json:"rule_list"`
}

// TechniqueInfo names a technique.
type TechniqueInfo struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Parent     string   `json:"parent,omitempty"`
	Tactics    []string `json:"tactics"`
	Revoked    bool     `json:"revoked,omitempty"`
	Deprecated bool     `json:"deprecated,omitempty"`
	URL        string   `json:"url,omitempty"`
}

// TacticInfo names a tactic.
type TacticInfo struct {
	ID    string `json:"id"`
	Short string `json:"short"`
	Name  string `json:"name"`
	URL   string `json:"url,omitempty"`
}

// TechniqueCount is a technique with the number of detection rules tagging it (or a
// sub-technique of it).
type TechniqueCount struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Detections int    `json:"detections"`
}

// CoverageRule is one rule tagging the technique or tactic.
type CoverageRule struct {
	Ref      string `json:"ref"`
	Title    string `json:"title"`
	Language string `json:"language"`
	Class    string `json:"class"`
	Severity string `json:"severity,omitempty"`
	Source   string `json:"source,omitempty"`
	Via      string `json:"via,omitempty"`
}

func (s *Server) techniqueCoverage(ctx context.Context, _ *mcp.CallToolRequest, a CoverageArgs) (*mcp.CallToolResult, *CoverageResult, error) {
	w, err := newWindow(a.Offset, a.Limit)
	if err != nil {
		return nil, nil, err
	}
	tid, err := normTechnique(a.Technique)
	if err != nil {
		return nil, nil, err
	}
	if (tid == "") == (strings.TrimSpace(a.Tactic) == "") {
		return nil, nil, argError("give either technique (T1197) or tactic (persistence), not both and not neither")
	}
	if err := checkText("tactic", a.Tactic); err != nil {
		return nil, nil, err
	}
	if err := checkText("source", a.Source); err != nil {
		return nil, nil, err
	}
	if err := checkLanguage(a.Language); err != nil {
		return nil, nil, err
	}
	if a.Source, err = s.canonicalValue(ctx, "source", "repo", a.Source); err != nil {
		return nil, nil, err
	}
	techs, err := s.cat.Techniques(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(techs) == 0 {
		return nil, nil, errNoAttack
	}
	byID := map[string]catalog.Technique{}
	for _, t := range techs {
		byID[t.ID] = t
	}
	detecting, err := s.tagsMemo.get(s.fresh(ctx), a.Language+"\x00"+a.Source, func() (map[string]map[int64]bool, error) {
		return s.detectingRules(ctx, a.Language, a.Source)
	})
	if err != nil {
		return nil, nil, err
	}
	out := &CoverageResult{ByLanguage: map[string]int{}, BySource: map[string]int{}, Uncovered: []TechniqueCount{}, Offset: w.offset,
		RuleList: []CoverageRule{}}
	if a.Language != "" || a.Source != "" {
		out.Filter = map[string]string{}
		if a.Language != "" {
			out.Filter["language"] = a.Language
		}
		if a.Source != "" {
			out.Filter["source"] = a.Source
		}
	}
	count := func(t catalog.Technique) TechniqueCount {
		return TechniqueCount{ID: t.ID, Name: t.Name, Detections: len(detecting[t.ID])}
	}
	var refs []catalog.RuleRef
	var members []catalog.Technique // what gaps are looked for in
	if tid != "" {
		t, ok := byID[tid]
		if !ok {
			return nil, nil, argError("no ATT&CK technique %s in the catalog's ATT&CK data", tid)
		}
		out.Technique = &TechniqueInfo{ID: t.ID, Name: t.Name, Parent: t.Parent, Tactics: t.Tactics, Revoked: t.Revoked, Deprecated: t.Deprecated, URL: t.URL}
		if out.Technique.Tactics == nil {
			out.Technique.Tactics = []string{}
		}
		if refs, err = s.cat.RulesWithTechnique(ctx, t.ID); err != nil {
			return nil, nil, err
		}
		if t.Parent == "" {
			for _, x := range techs {
				if x.Parent == t.ID && !x.Revoked && !x.Deprecated {
					members = append(members, x)
				}
			}
		}
		if len(members) == 0 && len(detecting[t.ID]) == 0 {
			out.Uncovered = append(out.Uncovered, count(t))
		}
	} else {
		ta, err := s.resolveTactic(ctx, a.Tactic)
		if err != nil {
			return nil, nil, err
		}
		out.Tactic = &TacticInfo{ID: ta.ID, Short: ta.Short, Name: ta.Name, URL: ta.URL}
		if refs, err = s.cat.RulesWithTactic(ctx, ta.Short); err != nil {
			return nil, nil, err
		}
		for _, x := range techs {
			if x.Parent == "" && !x.Revoked && !x.Deprecated && slices.Contains(x.Tactics, ta.Short) {
				members = append(members, x)
			}
		}
	}
	for _, m := range members {
		c := count(m)
		out.Techniques = append(out.Techniques, c)
		if c.Detections == 0 {
			out.Uncovered = append(out.Uncovered, c)
		} else {
			out.Covered++
		}
	}
	if out.Technique != nil && len(members) == 0 && len(detecting[out.Technique.ID]) > 0 {
		out.Covered = 1
	}
	sort.SliceStable(out.Techniques, func(i, j int) bool { return out.Techniques[i].Detections > out.Techniques[j].Detections })
	var kept []catalog.RuleRef
	for _, r := range refs {
		if (a.Language != "" && r.Language != a.Language) || (a.Source != "" && !strings.EqualFold(r.Source, a.Source)) {
			continue
		}
		kept = append(kept, r)
		out.Rules++
		if r.Class == "" || r.Class == string(rule.Detection) {
			out.Detections++
			out.ByLanguage[r.Language]++
			out.BySource[r.Source]++
		}
	}
	from, to, next := w.slice(len(kept))
	out.NextOffset = next
	for _, r := range kept[from:to] {
		class := r.Class
		if class == "" {
			class = string(rule.Detection)
		}
		out.RuleList = append(out.RuleList, CoverageRule{Ref: ruleRef(r.Language, r.ID), Title: r.Title, Language: r.Language, Class: class,
			Severity: r.Severity, Source: r.Source, Via: r.Via})
	}
	return nil, out, nil
}

// detectingRules maps each technique to the detection rules tagging it; a parent also
// gets its sub-techniques' rules, since a rule for T1059.001 detects T1059.
func (s *Server) detectingRules(ctx context.Context, language, source string) (map[string]map[int64]bool, error) {
	tags, err := s.cat.TechniqueTags(ctx, language, source, "")
	if err != nil {
		return nil, err
	}
	detecting := map[string]map[int64]bool{}
	add := func(id string, pk int64) {
		if detecting[id] == nil {
			detecting[id] = map[int64]bool{}
		}
		detecting[id][pk] = true
	}
	for _, t := range tags {
		add(t.Technique, t.RulePK)
		if parent, _, ok := strings.Cut(t.Technique, "."); ok {
			add(parent, t.RulePK)
		}
	}
	return detecting, nil
}

// ---- catalog_stats

// StatsResult is catalog_stats' answer.
type StatsResult struct {
	Rules      int                   `json:"rules"`
	Detections int                   `json:"detections"`
	Files      int                   `json:"files"`
	ByLanguage []catalog.CountBy     `json:"by_language"`
	ByClass    []catalog.CountBy     `json:"by_class"`
	BySource   []catalog.SourceCount `json:"by_source"`
	// Techniques is the number of ATT&CK techniques some detection tags.
	Techniques  int                   `json:"techniques_covered"`
	Diagnostics catalog.DiagSummary   `json:"diagnostics"`
	Shared      []catalog.SharedValue `json:"most_shared_indicators"`
	// Filter values the other tools accept.
	Languages  []string `json:"languages"`
	Sources    []string `json:"sources"`
	Severities []string `json:"severities"`
	Classes    []string `json:"classes"`
	Tactics    []string `json:"tactics"`
}

func (s *Server) stats(ctx context.Context, _ *mcp.CallToolRequest, _ StatsArgs) (*mcp.CallToolResult, *StatsResult, error) {
	out, err := s.statsMemo.get(s.fresh(ctx), "", func() (*StatsResult, error) { return s.computeStats(ctx) })
	return nil, out, err
}

func (s *Server) computeStats(ctx context.Context) (*StatsResult, error) {
	ov, err := s.cat.Overview(ctx, 10)
	if err != nil {
		return nil, err
	}
	out := &StatsResult{Rules: ov.Rules, Detections: ov.Detections, Files: ov.Files, ByLanguage: ov.ByLanguage, ByClass: ov.ByClass,
		BySource: ov.BySource, Techniques: ov.Techniques, Diagnostics: ov.Diags, Shared: ov.Shared, Languages: enumStrings(rule.Languages), Classes: classes}
	if out.Sources, err = s.cat.Distinct(ctx, "repo"); err != nil {
		return nil, err
	}
	if out.Severities, err = s.cat.Distinct(ctx, "severity"); err != nil {
		return nil, err
	}
	tactics, err := s.cat.Tactics(ctx)
	if err != nil {
		return nil, err
	}
	out.Tactics = []string{}
	for _, t := range tactics {
		out.Tactics = append(out.Tactics, t.Short)
	}
	return out, nil
}
