package mcpserver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

// sessionTimeout closes idle streamable-HTTP sessions.
const sessionTimeout = time.Hour

// readOnly marks every tool: nothing here changes the catalog, and the catalog is a
// closed world (no network).
var readOnly = &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}

// tool registers one typed tool with its refined input schema.
func tool[In, Out any](s *Server, name, title, desc string, tweak func(map[string]*jsonschema.Schema), h mcp.ToolHandlerFor[In, Out]) error {
	in, err := schema[In](tweak)
	if err != nil {
		return err
	}
	ann := *readOnly
	ann.Title = title
	mcp.AddTool(s.mcp, &mcp.Tool{Name: name, Title: title, Description: desc, InputSchema: in, Annotations: &ann}, recovered(name, h))
	return nil
}

// recovered turns a panic in a handler into a tool error: one rule that trips a bug
// (in a translation, say) must not end the session, which over stdio is the process.
func recovered[In, Out any](name string, h mcp.ToolHandlerFor[In, Out]) mcp.ToolHandlerFor[In, Out] {
	return func(ctx context.Context, req *mcp.CallToolRequest, in In) (res *mcp.CallToolResult, out Out, err error) {
		defer func() {
			if p := recover(); p != nil {
				var zero Out
				res, out, err = nil, zero, fmt.Errorf("%s failed on this input (a ruledex bug; please report it): %v", name, p)
			}
		}()
		return h(ctx, req, in)
	}
}

// ToolNames lists the tools in registration order (tests and the README list them).
var ToolNames = []string{"search_rules", "get_rule", "find_indicator", "neighbors", "technique_coverage", "event_info", "catalog_stats"}

func (s *Server) addTools() error {
	for _, add := range []func() error{
		s.addSearch, s.addGetRule, s.addFindIndicator, s.addNeighbors, s.addTechniqueCoverage, s.addEventInfo, s.addStats,
	} {
		if err := add(); err != nil {
			return err
		}
	}
	return nil
}

// ---- search_rules

// SearchArgs are search_rules' arguments.
type SearchArgs struct {
	Query     string `json:"query,omitempty" jsonschema:"words to find in title, description, tags, field names and values (e.g. bitsadmin, \"encoded command\"); empty browses detections, most severe first"`
	Language  string `json:"language,omitempty" jsonschema:"only rules of this language"`
	Source    string `json:"source,omitempty" jsonschema:"only rules from this source repository, as catalog_stats lists it (github.com/SigmaHQ/sigma)"`
	Technique string `json:"technique,omitempty" jsonschema:"only rules tagging this ATT&CK technique ID; a parent (T1059) includes its sub-techniques"`
	Tactic    string `json:"tactic,omitempty" jsonschema:"only rules naming this ATT&CK tactic: short name (defense-evasion), ID (TA0005) or name"`
	Severity  string `json:"severity,omitempty" jsonschema:"only rules of this severity (informational, low, medium, high, critical; catalog_stats lists what the catalog has)"`
	Class     string `json:"class,omitempty" jsonschema:"rule class; browsing without query lists detections only unless this is set"`
	Field     string `json:"field,omitempty" jsonschema:"only rules testing this field, by canonical or written name (Image, CommandLine, process.command_line)"`
	Offset    int    `json:"offset,omitempty" jsonschema:"results to skip (next_offset of the previous call)"`
	Limit     int    `json:"limit,omitempty" jsonschema:"results to return (default 20)"`
}

// SearchResult is search_rules' answer.
type SearchResult struct {
	Total      int                             `json:"total"`
	Offset     int                             `json:"offset"`
	NextOffset int                             `json:"next_offset,omitempty"`
	Results    []RuleHit                       `json:"results"`
	Facets     map[string][]catalog.FacetValue `json:"facets,omitempty"`
}

// RuleHit is one rule in a result list.
type RuleHit struct {
	Ref         string `json:"ref"`
	URI         string `json:"uri"`
	Title       string `json:"title"`
	Language    string `json:"language"`
	Class       string `json:"class,omitempty"`
	Severity    string `json:"severity,omitempty"`
	Source      string `json:"source,omitempty"`
	LogSource   string `json:"logsource,omitempty"`
	Description string `json:"description,omitempty"`
	Snippet     string `json:"snippet,omitempty"`
}

// facetsShown bounds the values listed per facet of a search answer.
const facetsShown = 8

func (s *Server) addSearch() error {
	return tool(s, "search_rules", "Search detection rules",
		"Full-text search and filtered browse over every rule of the catalog (all languages). Returns rules with a ref to pass to get_rule, "+
			"the total, and facet counts (language, source, severity, technique...) over all matches to refine with. Paginated by offset/limit.",
		func(p map[string]*jsonschema.Schema) {
			p["language"].Enum = enumOf(rule.Languages)
			p["class"].Enum = enumOf(classes)
			p["technique"].Pattern = techniqueID.String()
			pagingSchema(p)
		}, s.search)
}

func (s *Server) search(ctx context.Context, _ *mcp.CallToolRequest, a SearchArgs) (*mcp.CallToolResult, *SearchResult, error) {
	w, err := newWindow(a.Offset, a.Limit)
	if err != nil {
		return nil, nil, err
	}
	for name, v := range map[string]string{"query": a.Query, "source": a.Source, "tactic": a.Tactic, "severity": a.Severity, "field": a.Field} {
		if err := checkText(name, v); err != nil {
			return nil, nil, err
		}
	}
	if err := checkLanguage(a.Language); err != nil {
		return nil, nil, err
	}
	if err := checkClass(a.Class); err != nil {
		return nil, nil, err
	}
	q := catalog.SearchQuery{Text: strings.TrimSpace(a.Query), Language: a.Language, Field: a.Field, Class: a.Class, FacetLimit: facetsShown}
	if q.Technique, err = normTechnique(a.Technique); err != nil {
		return nil, nil, err
	}
	if a.Tactic != "" {
		t, err := s.resolveTactic(ctx, a.Tactic)
		if err != nil {
			return nil, nil, err
		}
		q.Tactic = t.Short
	}
	if q.Source, err = s.canonicalValue(ctx, "source", "repo", a.Source); err != nil {
		return nil, nil, err
	}
	if q.Severity, err = s.canonicalValue(ctx, "severity", "severity", a.Severity); err != nil {
		return nil, nil, err
	}
	s.fresh(ctx)
	// The catalog pages by page number; an offset that is not a multiple of the limit
	// straddles two of its pages.
	q.PerPage, q.Page = w.limit, w.offset/w.limit+1
	res, err := s.cat.Search(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	hits := res.Hits
	skip := w.offset % w.limit
	if skip > 0 && len(hits) == w.limit {
		q.Page++
		more, err := s.cat.Search(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		hits = append(hits, more.Hits...)
	}
	hits = hits[min(skip, len(hits)):]
	hits = hits[:min(w.limit, len(hits))]
	out := &SearchResult{Total: res.Total, Offset: w.offset, Results: []RuleHit{}, Facets: res.Facets}
	for _, h := range hits {
		desc, _ := cut(h.Description, maxSnippet)
		out.Results = append(out.Results, RuleHit{Ref: ruleRef(h.Language, h.ID), URI: RuleURI(rule.Language(h.Language), h.ID), Title: h.Title,
			Language: h.Language, Class: h.Class, Severity: h.Severity, Source: h.Source, LogSource: h.LogSource, Description: desc, Snippet: h.Snippet})
	}
	if end := w.offset + len(out.Results); end < res.Total && len(out.Results) > 0 {
		out.NextOffset = end
	}
	return nil, out, nil
}

// ---- get_rule

// GetRuleArgs are get_rule's arguments.
type GetRuleArgs struct {
	Rule      string `json:"rule" jsonschema:"the rule: a ref from a result (sigma/<id>), a resource URI, an id, an exact title or a file name"`
	MaxValues int    `json:"max_values,omitempty" jsonschema:"values listed per indicator row (default 25); the row says how many it has"`
	NoBody    bool   `json:"no_body,omitempty" jsonschema:"leave out the rule text (bodies) to save space"`
}

func (s *Server) addGetRule() error {
	return tool(s, "get_rule", "Get a rule's page",
		"Everything the rule's wiki page has: metadata (status, severity, log source, author, source repository and upstream link), ATT&CK tactics and "+
			"techniques with names, the Windows events it can match, the rule text, its stages and predicates, exclusions, indicators with corpus counts "+
			"(how many rules in each language test the same field/kind/value), neighbors (equivalent, stricter, broader rules; first 10 of each), "+
			"translations into the other languages (proved by reading them back) and parse diagnostics. Long texts and value lists are cut and say so.",
		func(p map[string]*jsonschema.Schema) {
			p["rule"].MinLength = ptr(1)
			p["max_values"].Minimum, p["max_values"].Maximum = ptr(1.0), ptr(float64(maxValues))
		}, s.getRule)
}

func (s *Server) getRule(ctx context.Context, _ *mcp.CallToolRequest, a GetRuleArgs) (*mcp.CallToolResult, *RulePage, error) {
	if a.MaxValues < 0 || a.MaxValues > maxValues {
		return nil, nil, argError("max_values must be from 1 to %d, not %d", maxValues, a.MaxValues)
	}
	r, err := s.resolveRule(ctx, a.Rule)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.rulePage(ctx, r, pageOptions{maxValues: a.MaxValues, noBody: a.NoBody})
	return nil, p, err
}

// ---- find_indicator

// IndicatorArgs are find_indicator's arguments.
type IndicatorArgs struct {
	Field      string   `json:"field,omitempty" jsonschema:"the field as any language writes it: Image, NewProcessName, FolderPath, process.executable and FileName count together; empty only for kind keyword"`
	Kind       string   `json:"kind" jsonschema:"the test: eq, ne, match (contains), starts_with, ends_with, glob, regex, cidr, in, gt, ge, lt, le, is_null, is_not_null, keyword, fieldref, term (KQL has), term_prefix, term_suffix; Sigma and KQL spellings (endswith, contains, has) work too"`
	Value      string   `json:"value,omitempty" jsonschema:"the value as the rule writes it (\\bitsadmin.exe); case does not matter unless transforms has cased"`
	Transforms []string `json:"transforms,omitempty" jsonschema:"value transforms of the test, e.g. cased, windash, base64offset"`
	Offset     int      `json:"offset,omitempty" jsonschema:"rules to skip (next_offset of the previous call)"`
	Limit      int      `json:"limit,omitempty" jsonschema:"rules to return (default 20)"`
}

// IndicatorResult is find_indicator's answer.
type IndicatorResult struct {
	Field      string   `json:"field"`
	Canonical  string   `json:"canonical"`
	Kind       string   `json:"kind"`
	Value      string   `json:"value"`
	Transforms []string `json:"transforms,omitempty"`
	Key        string   `json:"key"`
	// Rules counts the rules testing it (positive tests); ByLanguage splits them.
	Rules      int            `json:"rules"`
	ByLanguage map[string]int `json:"by_language"`
	// Excluded counts rules that exclude it (in a negated stage).
	Excluded   int             `json:"excluded"`
	Offset     int             `json:"offset"`
	NextOffset int             `json:"next_offset,omitempty"`
	Uses       []IndicatorUse  `json:"uses"`
	Nearest    []NearIndicator `json:"nearest,omitempty"`
}

// IndicatorUse is one rule testing the indicator, with the field and value as it writes them.
type IndicatorUse struct {
	Ref      string `json:"ref"`
	Title    string `json:"title"`
	Language string `json:"language"`
	Source   string `json:"source,omitempty"`
	Field    string `json:"field"`
	Kind     string `json:"kind"`
	Value    string `json:"value"`
	Negated  bool   `json:"negated,omitempty"`
}

// NearIndicator is an existing indicator suggested when none matched, in a form to pass
// back to find_indicator.
type NearIndicator struct {
	Field      string   `json:"field"`
	Kind       string   `json:"kind"`
	Value      string   `json:"value"`
	Transforms []string `json:"transforms,omitempty"`
	Rules      int      `json:"rules"`
}

func (s *Server) addFindIndicator() error {
	return tool(s, "find_indicator", "Find rules testing an indicator",
		"Which rules, in every language, test one field/kind/value (an indicator), with counts by language. Field names are equivalent across "+
			"languages through ruledex's field map, and a file-name field (FileName eq x.exe) counts as Image ends_with \\x.exe. Rules that exclude "+
			"the indicator are listed after the others. When nothing matches, the nearest existing indicators are suggested.",
		func(p map[string]*jsonschema.Schema) {
			p["kind"].MinLength = ptr(1)
			pagingSchema(p)
		}, s.findIndicator)
}

// ---- neighbors

// NeighborsArgs are neighbors' arguments.
type NeighborsArgs struct {
	Rule     string `json:"rule" jsonschema:"the rule: a ref from a result (sigma/<id>), a resource URI, an id, an exact title or a file name"`
	Relation string `json:"relation,omitempty" jsonschema:"only this relation; all three when empty"`
	Offset   int    `json:"offset,omitempty" jsonschema:"rules to skip in each list"`
	Limit    int    `json:"limit,omitempty" jsonschema:"rules to return per list (default 20)"`
}

func (s *Server) addNeighbors() error {
	return tool(s, "neighbors", "Related rules by logic",
		"Rules whose logic is equivalent to, stricter than (matches a subset of its events) or broader than the given rule, in any language, "+
			"proved from the predicates (sound, deliberately incomplete). Basis same-telemetry: same fields and events; field-map: proved through "+
			"field and telemetry mappings, which difference names. Also the rule's equivalence class.",
		func(p map[string]*jsonschema.Schema) {
			p["rule"].MinLength = ptr(1)
			p["relation"].Enum = []any{"equivalent", "stricter", "broader"}
			pagingSchema(p)
		}, s.neighbors)
}

// ---- technique_coverage

// CoverageArgs are technique_coverage's arguments.
type CoverageArgs struct {
	Technique string `json:"technique,omitempty" jsonschema:"an ATT&CK technique ID (T1197, T1059.001); a parent includes its sub-techniques"`
	Tactic    string `json:"tactic,omitempty" jsonschema:"an ATT&CK tactic: short name (persistence), ID (TA0003) or name; give technique or tactic"`
	Language  string `json:"language,omitempty" jsonschema:"count only rules of this language"`
	Source    string `json:"source,omitempty" jsonschema:"count only rules from this source repository"`
	Offset    int    `json:"offset,omitempty" jsonschema:"listed rules to skip"`
	Limit     int    `json:"limit,omitempty" jsonschema:"rules to list (default 20); counts are always over all"`
}

func (s *Server) addTechniqueCoverage() error {
	return tool(s, "technique_coverage", "ATT&CK coverage",
		"How well the catalog covers one ATT&CK technique or tactic: the rules tagging it, counted by language and by source, the detections "+
			"among them, and the (sub-)techniques with no detection rule at all (gaps). Counts are over detection rules; the rule list includes "+
			"hunting queries and building blocks too, with their class.",
		func(p map[string]*jsonschema.Schema) {
			p["technique"].Pattern = techniqueID.String()
			p["language"].Enum = enumOf(rule.Languages)
			pagingSchema(p)
		}, s.techniqueCoverage)
}

// ---- event_info

// EventArgs are event_info's arguments.
type EventArgs struct {
	Provider string `json:"provider,omitempty" jsonschema:"event provider name or slug (Microsoft-Windows-Sysmon, Microsoft-Windows-Security-Auditing); empty lists providers"`
	EventID  int    `json:"event_id,omitempty" jsonschema:"event ID of the provider (1, 4688); empty lists the provider's events"`
	Field    string `json:"field,omitempty" jsonschema:"with event_id: list the rules testing this field of the event instead of all rules covering it"`
	Offset   int    `json:"offset,omitempty" jsonschema:"listed items (providers, events or rules) to skip"`
	Limit    int    `json:"limit,omitempty" jsonschema:"items to list (default 20)"`
}

func (s *Server) addEventInfo() error {
	return tool(s, "event_info", "Windows event coverage",
		"What the rules do with Windows events. With provider and event_id: the event's fields with how many rules test each (in any language, "+
			"under any field name), the most common indicators on it, and the rules that can match it. With provider only: its events with rule "+
			"counts. With neither: the providers.",
		func(p map[string]*jsonschema.Schema) {
			p["event_id"].Minimum = ptr(0.0)
			pagingSchema(p)
		}, s.eventInfo)
}

// ---- catalog_stats

// StatsArgs are catalog_stats' (no) arguments.
type StatsArgs struct{}

func (s *Server) addStats() error {
	return tool(s, "catalog_stats", "Catalog overview",
		"What the catalog holds: rules and files, rules per language, source and class, detections, ATT&CK techniques covered, parse "+
			"problems, the most shared indicators, and the values the filters of the other tools accept (languages, sources, severities, tactics).",
		nil, s.stats)
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// langOrder sorts language names as pages list them (rule.Languages), others after.
func langOrder(a, b string) int {
	ia, ib := slices.Index(rule.Languages, rule.Language(a)), slices.Index(rule.Languages, rule.Language(b))
	if ia < 0 {
		ia = len(rule.Languages)
	}
	if ib < 0 {
		ib = len(rule.Languages)
	}
	if ia != ib {
		return ia - ib
	}
	return strings.Compare(a, b)
}
