package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
)

// RulePage is get_rule's answer and a rule resource's content: the rule page's view
// model (package page, what the wiki and `ruledex show` render) plus the identifiers an
// agent needs to follow up.
type RulePage struct {
	Ref         string   `json:"ref"`
	URI         string   `json:"uri"`
	ID          string   `json:"id"`
	Language    string   `json:"language"`
	Class       string   `json:"class"`
	Source      string   `json:"source,omitempty"`
	Path        string   `json:"path,omitempty"`
	UpstreamURL string   `json:"upstream_url,omitempty"`
	Techniques  []string `json:"techniques,omitempty"`
	Tactics     []string `json:"tactics,omitempty"`
	*page.Rule
	// NeighborTotals counts each relation before get_rule's cut (the neighbors tool
	// lists them all).
	NeighborTotals map[string]int `json:"neighbor_totals,omitempty"`
	// Truncated says what was cut to keep the answer bounded, and how to get it.
	Truncated []string `json:"truncated,omitempty"`
}

type pageOptions struct {
	maxValues int
	noBody    bool
}

// rulePage builds the page as `ruledex show` does: corpus counts and ATT&CK names from
// the catalog, event coverage from the event catalog, stored neighbors, translations.
func (s *Server) rulePage(ctx context.Context, r *rule.Rule, o pageOptions) (*RulePage, error) {
	in, err := page.LoadInput(ctx, s.cat, r)
	if err != nil {
		return nil, fmt.Errorf("rule page %s/%s: %w", r.Language, r.ID, err)
	}
	p := page.BuildRule(r, in)
	if s.translate != nil {
		p.Translations = s.translate(r)
	}
	if s.events != nil {
		for _, c := range s.events.Coverage(r) {
			p.Events = append(p.Events, page.EventRow{Provider: c.Provider, EventID: c.EventID, Title: c.Title})
		}
		for _, a := range s.events.AbsentFields(r) {
			p.AbsentFields = append(p.AbsentFields, page.AbsentField(a))
		}
	}
	if p.Neighbors, err = page.LoadNeighbors(ctx, s.cat, r); err != nil {
		return nil, fmt.Errorf("rule page %s/%s: neighbors: %w", r.Language, r.ID, err)
	}
	class := string(r.Class)
	if class == "" {
		class = string(rule.Detection)
	}
	out := &RulePage{Ref: ruleRef(string(r.Language), r.ID), URI: RuleURI(r.Language, r.ID), ID: r.ID, Language: string(r.Language),
		Class: class, Source: r.Source.Repo, Path: r.Source.Path, UpstreamURL: r.Source.UpstreamURL, Techniques: r.Techniques, Tactics: r.Tactics, Rule: p}
	out.bound(o)
	return out, nil
}

// bound cuts what can grow without limit: texts, value lists, neighbor lists.
func (out *RulePage) bound(o pageOptions) {
	p := out.Rule
	note := func(format string, a ...any) { out.Truncated = append(out.Truncated, fmt.Sprintf(format, a...)) }
	if o.noBody {
		p.Bodies = nil
	}
	for i := range p.Bodies {
		var cutBody bool
		if p.Bodies[i].Text, cutBody = cut(p.Bodies[i].Text, maxText); cutBody {
			note("bodies[%d] cut at %d bytes; the resource %s has the same page, the upstream file has all of it", i, maxText, out.URI)
		}
	}
	var c bool
	if p.Description, c = cut(p.Description, maxProse); c {
		note("description cut at %d bytes", maxProse)
	}
	for i := range p.Docs {
		if p.Docs[i].Markdown, c = cut(p.Docs[i].Markdown, maxProse); c {
			note("docs[%d] (%s) cut at %d bytes", i, p.Docs[i].Title, maxProse)
		}
	}
	for i := range p.Translations {
		if p.Translations[i].Query, c = cut(p.Translations[i].Query, maxQuery); c {
			note("translations[%d] (%s) cut at %d bytes; ruledex convert writes it whole", i, p.Translations[i].Target, maxQuery)
		}
	}
	for i := range p.Stages {
		if p.Stages[i].Text, c = cut(p.Stages[i].Text, maxQuery); c {
			note("stages[%d] cut at %d bytes; bodies has the rule text", i, maxQuery)
		}
	}
	n := o.maxValues
	if n <= 0 {
		n = defaultValues
	}
	for i := range p.Indicators {
		row := &p.Indicators[i]
		if len(row.Values) > n {
			note("indicators[%d] (%s %s) lists %d of %d values; pass max_values to see more", i, row.Field, row.Kind, n, len(row.Values))
			row.Values = row.Values[:n]
		}
	}
	for i := range p.Exclusions {
		row := &p.Exclusions[i]
		if len(row.Values) > n {
			note("exclusions[%d] (%s %s) lists %d of %d values; pass max_values to see more", i, row.Field, row.Kind, n, len(row.Values))
			row.Values = row.Values[:n]
		}
	}
	out.NeighborTotals = map[string]int{"equivalent": 0, "stricter": 0, "broader": 0}
	if nb := p.Neighbors; nb != nil {
		out.NeighborTotals = map[string]int{"equivalent": len(nb.Equivalent), "stricter": len(nb.Stricter), "broader": len(nb.Broader)}
		for name, list := range map[string]*[]page.NeighborRow{"equivalent": &nb.Equivalent, "stricter": &nb.Stricter, "broader": &nb.Broader} {
			if len(*list) > pageNeighbors {
				note("neighbors.%s lists %d of %d; the neighbors tool pages through all", name, pageNeighbors, len(*list))
				*list = (*list)[:pageNeighbors]
			}
		}
	}
	if len(p.Events) > maxLimit {
		note("events lists %d of %d", maxLimit, len(p.Events))
		p.Events = p.Events[:maxLimit]
	}
	// Nil lists the page model always has would read as null; say "none" as [].
	if p.Meta == nil {
		p.Meta = []page.MetaItem{}
	}
	if p.Bodies == nil {
		p.Bodies = []page.Body{}
	}
	if p.Breadcrumb == nil {
		p.Breadcrumb = []page.Crumb{}
	}
	if nb := p.Neighbors; nb != nil {
		for _, l := range []*[]page.NeighborRow{&nb.Equivalent, &nb.Stricter, &nb.Broader} {
			if *l == nil {
				*l = []page.NeighborRow{}
			}
		}
	}
	for i := range p.Indicators {
		for j := range p.Indicators[i].Values {
			v := &p.Indicators[i].Values[j]
			if len(v.Value) > maxArg {
				v.Value, _ = cut(v.Value, maxArg)
			}
		}
	}
}

// ---- resources

func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{
		Name:        "rule",
		Title:       "Detection rule page",
		URITemplate: ruleURIPrefix + "{language}/{id}",
		Description: "One rule of the catalog as get_rule returns it (JSON): metadata, ATT&CK, events, rule text, stages, indicators with corpus counts, " +
			"neighbors, translations. language is one of " + rule.LanguageIDs() + "; id is the rule's catalog id (search results give uri).",
		MIMEType: "application/json",
	}, s.readRule)
}

func (s *Server) readRule(ctx context.Context, req *mcp.ReadResourceRequest) (res *mcp.ReadResourceResult, err error) {
	uri := req.Params.URI
	defer func() { // as for tools (see recovered): one rule must not end the session
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("reading %s failed (a ruledex bug; please report it): %v", uri, p)
		}
	}()
	lang, id, ok := parseRuleURI(uri)
	if !ok || checkLanguage(lang) != nil {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	r, err := s.cat.Rule(ctx, rule.Language(lang), id)
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, mcp.ResourceNotFoundError(uri)
		}
		return nil, err
	}
	p, err := s.rulePage(ctx, r, pageOptions{})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("rule resource %s: %w", uri, err)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
}
