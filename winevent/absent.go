package winevent

import (
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// AbsentField is a field a rule tests that none of the Sysmon events it reads carries:
// on those events a test of it is never true (a negated one always is), so the rule
// needs telemetry that adds it (an EDR agent's enrichment, a pipeline's renames).
// SigmaHQ's net_connection_win_python says as much in a comment: Sysmon 3 has no
// CommandLine or ParentImage.
type AbsentField struct {
	Field string `json:"field"`
	// Events are the Sysmon events checked, as "Microsoft-Windows-Sysmon 3".
	Events []string `json:"events"`
}

// AbsentFields lists the fields a Sigma rule tests that none of the Sysmon events of its
// coverage (RouteRule: its log source's events that carry all its fields, else all of
// them, or the event IDs it pins) carries. Only Sysmon's events are judged: the event
// data has Sysmon's own manifest (every field of schemas 4.40 to 4.81), where it holds
// older versions of some Windows events (Security 4697 without the ClientProcessId newer
// builds write), so a field missing there proves nothing. Whether another event the
// rule reads (Security 4688 for process_creation) carries the field is left open.
// Nothing is claimed for a log source the event data does not map, for the whole
// Sysmon channel, nor for an event it does not describe.
func (c *Catalog) AbsentFields(r *rule.Rule) []AbsentField {
	if c == nil || r == nil || r.Language != rule.Sigma {
		return nil
	}
	if p := strings.ToLower(r.LogSource.Product); p != "windows" {
		return nil
	}
	f := ruleFacts(r)
	if len(f.fields) == 0 {
		return nil
	}
	base := c.Route(r.LogSource)
	mapsSysmon := false
	for _, t := range base {
		mapsSysmon = mapsSysmon || strings.EqualFold(t.Provider, sysmonProvider)
	}
	if !mapsSysmon {
		return nil // pinned IDs alone would be attributed by a guess
	}
	// The events coverage lists: where another event carries every field (4688 for a
	// process_creation rule written with NewProcessName), Sysmon's are not among them.
	targets := c.sigmaTargets(r, f)
	var events []*Event
	var names []string
	for _, t := range targets {
		if !strings.EqualFold(t.Provider, sysmonProvider) {
			continue
		}
		if len(t.EventIDs) == 0 {
			return nil // every Sysmon event: some other one may carry the field
		}
		for _, id := range t.EventIDs {
			e, ok := c.Event(t.Provider, id)
			if !ok || len(e.Fields) == 0 {
				return nil
			}
			events = append(events, e)
			names = append(names, e.Provider+" "+strconv.Itoa(e.ID))
		}
	}
	if len(events) == 0 {
		return nil
	}
	var out []AbsentField
	for _, fl := range f.fields {
		carried := false
		for _, e := range events {
			if e.HasField(fl) {
				carried = true
				break
			}
		}
		if !carried {
			out = append(out, AbsentField{Field: fl, Events: names})
		}
	}
	return out
}
