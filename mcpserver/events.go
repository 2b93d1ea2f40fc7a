package mcpserver

import (
	"context"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/winevent"
)

// EventResult is event_info's answer; which part is filled depends on the arguments.
type EventResult struct {
	Offset     int `json:"offset"`
	NextOffset int `json:"next_offset,omitempty"`
	// Providers (no provider given).
	Providers []ProviderInfo `json:"providers,omitempty"`
	// Provider's events (provider given, no event_id).
	Provider string      `json:"provider,omitempty"`
	Events   []EventInfo `json:"events,omitempty"`
	// One event (provider and event_id given).
	Event *EventDetail `json:"event,omitempty"`
	// Total counts the listed kind of item (providers, events or rules) before paging.
	Total int `json:"total"`
}

// ProviderInfo is one event provider.
type ProviderInfo struct {
	Name     string   `json:"name"`
	Channels []string `json:"channels,omitempty"`
	Events   int      `json:"events"`
	Rules    int      `json:"rules"`
}

// EventInfo is one event of a provider with the rules that can match it.
type EventInfo struct {
	EventID    int                 `json:"event_id"`
	Title      string              `json:"title,omitempty"`
	Channel    string              `json:"channel,omitempty"`
	Rules      int                 `json:"rules"`
	ByLanguage []catalog.LangCount `json:"by_language,omitempty"`
}

// EventDetail is one event: its fields with rule counts, common indicators and rules.
type EventDetail struct {
	Provider    string                   `json:"provider"`
	EventID     int                      `json:"event_id"`
	Title       string                   `json:"title,omitempty"`
	Channel     string                   `json:"channel,omitempty"`
	Description string                   `json:"description,omitempty"`
	Rules       int                      `json:"rules"`
	ByLanguage  []catalog.LangCount      `json:"by_language,omitempty"`
	Fields      []EventField             `json:"fields"`
	Indicators  []catalog.EventIndicator `json:"common_indicators"`
	FieldFilter string                   `json:"field_filter,omitempty"`
	// RuleList is the page of rules covering the event (or testing FieldFilter).
	RuleList []CoverageRule `json:"rule_list"`
}

// EventField is one field of the event with the rules testing it.
type EventField struct {
	Name       string              `json:"name"`
	Type       string              `json:"type,omitempty"`
	Rules      int                 `json:"rules"`
	ByLanguage []catalog.LangCount `json:"by_language,omitempty"`
}

// eventIndicators is how many common indicators event_info lists.
const eventIndicators = 20

func (s *Server) eventInfo(ctx context.Context, _ *mcp.CallToolRequest, a EventArgs) (*mcp.CallToolResult, *EventResult, error) {
	w, err := newWindow(a.Offset, a.Limit)
	if err != nil {
		return nil, nil, err
	}
	for name, v := range map[string]string{"provider": a.Provider, "field": a.Field} {
		if err := checkText(name, v); err != nil {
			return nil, nil, err
		}
	}
	if a.EventID < 0 {
		return nil, nil, argError("event_id must be a positive event ID, not %d", a.EventID)
	}
	if a.Provider == "" {
		if a.EventID != 0 || a.Field != "" {
			return nil, nil, argError("event_id and field need provider (e.g. Microsoft-Windows-Sysmon)")
		}
		return s.providers(ctx, w)
	}
	counts, err := s.cat.EventRuleCounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	name, err := s.providerName(a.Provider, counts)
	if err != nil {
		return nil, nil, err
	}
	if a.EventID == 0 {
		if a.Field != "" {
			return nil, nil, argError("field needs event_id")
		}
		return s.providerEvents(name, counts, w)
	}
	return s.event(ctx, name, a.EventID, a.Field, counts, w)
}

// providerName resolves a provider by name or slug, from the event catalog when loaded,
// else from the providers rules cover.
func (s *Server) providerName(v string, counts []catalog.EventCount) (string, error) {
	if s.events != nil {
		if p, ok := s.events.Provider(v); ok {
			return p.Name, nil
		}
	}
	seen := map[string]bool{}
	var names []string
	for _, c := range counts {
		if strings.EqualFold(c.Provider, v) {
			return c.Provider, nil
		}
		if !seen[c.Provider] {
			seen[c.Provider] = true
			names = append(names, c.Provider)
		}
	}
	sort.Strings(names)
	return "", argError("no event provider %q; providers rules cover: %s", v, listSome(names, 40))
}

func (s *Server) providers(ctx context.Context, w window) (*mcp.CallToolResult, *EventResult, error) {
	rc, err := s.cat.ProviderRuleCounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	var all []ProviderInfo
	if s.events != nil {
		for _, p := range s.events.Providers() {
			all = append(all, ProviderInfo{Name: p.Name, Channels: p.Channels, Events: len(p.Events), Rules: rc[p.Name]})
		}
	} else {
		counts, err := s.cat.EventRuleCounts(ctx)
		if err != nil {
			return nil, nil, err
		}
		events := map[string]int{}
		for _, c := range counts {
			events[c.Provider]++
		}
		for _, name := range sortedKeys(events) {
			all = append(all, ProviderInfo{Name: name, Events: events[name], Rules: rc[name]})
		}
	}
	// Most covered first: that is what an agent asking about telemetry wants.
	sort.SliceStable(all, func(i, j int) bool { return all[i].Rules > all[j].Rules })
	from, to, next := w.slice(len(all))
	out := &EventResult{Offset: w.offset, NextOffset: next, Total: len(all), Providers: all[from:to]}
	if out.Providers == nil {
		out.Providers = []ProviderInfo{}
	}
	return nil, out, nil
}

func (s *Server) providerEvents(name string, counts []catalog.EventCount, w window) (*mcp.CallToolResult, *EventResult, error) {
	byID := map[int]catalog.EventCount{}
	for _, c := range counts {
		if c.Provider == name {
			byID[c.EventID] = c
		}
	}
	var all []EventInfo
	if p, ok := s.eventProvider(name); ok {
		for _, e := range p.Events {
			c := byID[e.ID]
			all = append(all, EventInfo{EventID: e.ID, Title: e.Title, Channel: e.Channel, Rules: c.Rules, ByLanguage: c.ByLanguage})
			delete(byID, e.ID)
		}
	}
	for id, c := range byID { // events rules pin that the event data does not describe
		all = append(all, EventInfo{EventID: id, Rules: c.Rules, ByLanguage: c.ByLanguage})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Rules != all[j].Rules {
			return all[i].Rules > all[j].Rules
		}
		return all[i].EventID < all[j].EventID
	})
	from, to, next := w.slice(len(all))
	out := &EventResult{Offset: w.offset, NextOffset: next, Total: len(all), Provider: name, Events: all[from:to]}
	if out.Events == nil {
		out.Events = []EventInfo{}
	}
	return nil, out, nil
}

func (s *Server) event(ctx context.Context, provider string, id int, field string, counts []catalog.EventCount, w window) (*mcp.CallToolResult, *EventResult, error) {
	d := &EventDetail{Provider: provider, EventID: id, Fields: []EventField{}, RuleList: []CoverageRule{}, FieldFilter: field}
	known := false
	for _, c := range counts {
		if c.Provider == provider && c.EventID == id {
			d.Rules, d.ByLanguage = c.Rules, c.ByLanguage
			known = true
		}
	}
	fc, err := s.cat.EventFieldCounts(ctx, provider, id)
	if err != nil {
		return nil, nil, err
	}
	if s.events != nil {
		if e, ok := s.events.Event(provider, id); ok {
			known = true
			d.Title, d.Channel = e.Title, e.Channel
			d.Description, _ = cut(e.Description, maxSnippet*4)
			for _, f := range e.Fields {
				ef := EventField{Name: f.Name, Type: f.Type}
				for name, c := range fc {
					if strings.EqualFold(name, f.Name) {
						ef.Rules, ef.ByLanguage = c.Rules, c.ByLanguage
						delete(fc, name)
						break
					}
				}
				d.Fields = append(d.Fields, ef)
			}
		}
	}
	for _, name := range sortedKeys(fc) { // fields rules test that the event data does not list
		d.Fields = append(d.Fields, EventField{Name: name, Rules: fc[name].Rules, ByLanguage: fc[name].ByLanguage})
	}
	if !known {
		return nil, nil, argError("no event %d of %s: no rule covers it and the event data does not describe it", id, provider)
	}
	if field != "" {
		found := false
		for _, f := range d.Fields {
			if strings.EqualFold(f.Name, field) {
				found = true
			}
		}
		if !found {
			var names []string
			for _, f := range d.Fields {
				names = append(names, f.Name)
			}
			return nil, nil, argError("event %d of %s has no field %q; its fields: %s", id, provider, field, listSome(names, 60))
		}
	}
	inds, err := s.cat.EventIndicators(ctx, provider, id, eventIndicators)
	if err != nil {
		return nil, nil, err
	}
	d.Indicators = inds
	if d.Indicators == nil {
		d.Indicators = []catalog.EventIndicator{}
	}
	rules, err := s.cat.RulesForEvent(ctx, provider, id, field, 0)
	if err != nil {
		return nil, nil, err
	}
	from, to, next := w.slice(len(rules))
	for _, r := range rules[from:to] {
		class := string(r.Class)
		if class == "" {
			class = "detection"
		}
		d.RuleList = append(d.RuleList, CoverageRule{Ref: ruleRef(string(r.Language), r.ID), Title: r.Title, Language: string(r.Language),
			Class: class, Severity: r.Severity, Source: r.Repo})
	}
	return nil, &EventResult{Offset: w.offset, NextOffset: next, Total: len(rules), Event: d}, nil
}

// eventProvider is the event catalog's provider, when the catalog is loaded.
func (s *Server) eventProvider(name string) (*winevent.Provider, bool) {
	if s.events == nil {
		return nil, false
	}
	return s.events.Provider(name)
}
