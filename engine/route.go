package engine

import (
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// CatalogRouter routes Sigma log sources through the Windows event catalog's logsource
// map: a category or service becomes its channels and event IDs, and Sysmon
// categories with a native-audit alternate (process_creation → Security 4688, ...)
// get a second route with the alternate's field renames.
//
// Rules of another product (linux, macos, aws, ...) never run on events that carry a
// Channel (Windows logs); they still run on channel-less JSON, their own logs. Log
// sources the map does not know (windows product-only rules, unknown categories) are
// reported as unknown, and such rules run on every event: a rule that never runs
// would fail silently. The prefilter keeps them cheap where their fields are absent.
type CatalogRouter struct {
	Catalog *winevent.Catalog
}

// RoutesFor implements RuleRouter: every value of a list-valued product, category or
// service (kept in Rule.Extra["logsource.<key>"], one per line, by the Sigma parser)
// routes, and the rule runs where any of them does.
func (r CatalogRouter) RoutesFor(ru *rule.Rule) ([]Route, bool) {
	variants := []rule.LogSource{ru.LogSource}
	for _, key := range []string{"product", "category", "service"} {
		list, ok := ru.Extra["logsource."+key]
		if !ok || !strings.Contains(list, "\n") {
			continue
		}
		var next []rule.LogSource
		for _, ls := range variants {
			for _, v := range strings.Split(list, "\n") {
				if v = strings.TrimSpace(v); v == "" {
					continue
				}
				x := ls
				switch key {
				case "product":
					x.Product = v
				case "category":
					x.Category = v
				case "service":
					x.Service = v
				}
				next = append(next, x)
			}
		}
		if len(next) > 0 {
			variants = next
		}
	}
	if len(variants) == 1 {
		return r.Routes(variants[0])
	}
	var out []Route
	seen := map[string]bool{}
	for _, ls := range variants {
		rs, ok := r.Routes(ls)
		if !ok {
			// One value the map does not know: the rule must not lose its events.
			return nil, false
		}
		for _, rt := range rs {
			k := strings.Join(rt.Channels, ",") + "\x00" + idsText(rt.EventIDs) + "\x00" + rt.Via
			if !seen[k] {
				seen[k] = true
				out = append(out, rt)
			}
		}
	}
	return out, true
}

// Routes implements Router.
func (r CatalogRouter) Routes(ls rule.LogSource) ([]Route, bool) {
	if r.Catalog == nil {
		return nil, false
	}
	if p := strings.ToLower(strings.TrimSpace(ls.Product)); p != "" && p != "windows" {
		// Another product's rule never runs on Windows logs: the route names a channel
		// no Windows event has, so events with a Channel are excluded while flat JSON
		// without one (that product's own logs) is still matched.
		return []Route{{Channels: []string{"(" + p + " logs, not Windows)"}}}, true
	}
	ts := r.Catalog.Route(ls)
	if len(ts) == 0 {
		return nil, false
	}
	// Providers are not routed on: the channel and event ID already decide, and
	// evtx_dump exports of forwarded events sometimes rename providers.
	var out []Route
	idx := map[string]int{}
	for _, t := range ts {
		via := ""
		if t.Native {
			via = t.Channel + " " + idsText(t.EventIDs)
		}
		k := via + "\x00" + idsText(t.EventIDs)
		if i, ok := idx[k]; ok && !t.Native {
			if !contains(out[i].Channels, t.Channel) {
				out[i].Channels = append(out[i].Channels, t.Channel)
			}
			continue
		}
		idx[k] = len(out)
		out = append(out, Route{Channels: []string{t.Channel}, EventIDs: t.EventIDs, Rename: t.Renames,
			Where: t.Where, Via: via})
	}
	return out, true
}

// RouteRule routes a rule of another language (a KQL table, an SPL data model or
// sourcetype, an Elastic or YARA-L category) to the events the catalog places it on,
// and resolves each field it tests through the field map: the rule's column →
// canonical (Sysmon) name → the event's name on that route (NewProcessName on 4688).
// Name-only columns (Defender FileName, CIM process_name, ECS process.name) test the
// file name of the path they map to. A rule the catalog cannot place runs on every
// event with canonical names. It never fails: ok is always true.
func (r CatalogRouter) RouteRule(ru *rule.Rule) ([]Route, bool) {
	fm := fieldmap.Default()
	ctx := fieldmap.Contexts(ru)
	canon := func(f string) (string, bool) {
		if e, ok := fm.Lookup(ctx, f); ok {
			return e.Canonical, e.NameOnly
		}
		return f, false
	}
	var ts []winevent.Target
	if r.Catalog != nil {
		ts = r.Catalog.RouteRule(ru)
	}
	if len(ts) == 0 {
		// A table, data model or category the event catalog cannot place (Azure
		// activity, Okta, a Linux data model): such a rule is about other telemetry and
		// never runs on Windows events, which carry a Channel; channel-less JSON lines
		// are still tested, as for Sigma rules of another product.
		return []Route{{Channels: []string{"(not Windows telemetry)"}, Resolve: canon}}, true
	}
	out := make([]Route, 0, len(ts))
	for _, t := range ts {
		via := ""
		if t.Native {
			via = t.Channel + " " + idsText(t.EventIDs)
		}
		resolve := func(f string) (string, bool) {
			c, nameOnly := canon(f)
			return t.Field(c), nameOnly
		}
		out = append(out, Route{Channels: []string{t.Channel}, EventIDs: t.EventIDs, Where: t.Where, Via: via, Resolve: resolve})
	}
	return out, true
}

func idsText(ids []int) string {
	b := make([]byte, 0, 8*len(ids))
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInt(b, id)
	}
	return string(b)
}

func appendInt(b []byte, n int) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
