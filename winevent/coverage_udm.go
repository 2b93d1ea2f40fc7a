package winevent

import (
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// udmTargets routes a YARA-L rule: its category (from metadata.event_type, or from the
// Windows ids a Sigma conversion tests) gives the candidates, as a Sigma logsource
// does, and its UDM fields are checked under their canonical names, so a
// PROCESS_LAUNCH rule on target.process.command_line covers Sysmon 1 and 4688. Ids
// in metadata.product_event_type pin the events.
func (c *Catalog) udmTargets(r *rule.Rule, f facts) []Target {
	ls := r.LogSource
	if p := strings.ToLower(ls.Product); p != "" && p != "windows" {
		return nil
	}
	base := c.Route(rule.LogSource{Category: ls.Category, Service: ls.Service})
	for i := range base {
		if base[i].Via == "" {
			base[i].Via = ViaLogSource
			if base[i].Native {
				base[i].Via = ViaNative
			}
		}
	}
	if len(f.ids) > 0 {
		return c.pinned(f, base)
	}
	fm := fieldmap.Default()
	ctx := fieldmap.Contexts(r)
	canon := func(col string) (string, bool) {
		e, ok := fm.Lookup(ctx, col)
		if !ok {
			return "", false
		}
		return e.Canonical, true
	}
	return withCanon(c.fit(narrowProvider(base, f), f.fields, canon), canon)
}
