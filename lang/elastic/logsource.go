package elastic

import (
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// deriveLogSource fills Product, Category and EventTypes from what the rule tests
// (event.category, event.type, host.os.type), its EQL event categories, its index
// patterns (logs-endpoint.events.process-*) and its tags ("OS: Windows").
func deriveLogSource(r *rule.Rule) {
	ls := &r.LogSource
	cats := append([]string(nil), ls.EventTypes...)
	var types, oses []string
	dns := false
	visit := func(n *rule.Node) {
		for _, pp := range rule.Preds(n) {
			p := pp.Pred
			f := strings.ToLower(p.Field)
			if strings.HasPrefix(f, "dns.") {
				dns = true
			}
			if pp.Negated || (p.Kind != rule.Eq && p.Kind != rule.In) {
				continue
			}
			for _, v := range p.Values {
				s := strings.ToLower(v.S)
				switch f {
				case "event.category":
					cats = appendNew(cats, s)
				case "event.type", "event.action":
					types = appendNew(types, s)
				case "host.os.type", "host.os.family", "host.os.platform":
					oses = appendNew(oses, s)
				}
			}
		}
	}
	if r.Root != nil {
		visit(r.Root)
	} else {
		for _, st := range r.Stages {
			visit(st.Node)
		}
	}
	for _, ix := range ls.Indexes {
		l := strings.ToLower(ix)
		if rest, ok := strings.CutPrefix(l, "logs-endpoint.events."); ok {
			c := strings.TrimRight(strings.SplitN(rest, "-", 2)[0], "*")
			if c != "" && c != "*" {
				cats = appendNew(cats, c)
			}
		}
	}
	for _, c := range cats {
		ls.EventTypes = appendNew(ls.EventTypes, c)
	}
	if ls.Product == "" {
		ls.Product = product(oses, r.Tags, ls.DataSources)
	}
	if ls.Category == "" && len(cats) > 0 {
		ls.Category = category(cats[0], types, dns || contains(cats, "dns"))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// product names the platform as Sigma's logsource product does. A rule for several
// operating systems gets windows when it is one of them (the event catalog describes
// Windows events), else the first named.
func product(oses, tags, integrations []string) string {
	pick := func(list []string) string {
		first := ""
		for _, o := range list {
			switch o {
			case "windows":
				return o
			case "linux", "macos":
				if first == "" {
					first = o
				}
			}
		}
		return first
	}
	if p := pick(oses); p != "" {
		return p
	}
	var tagged []string
	for _, t := range tags {
		if os, ok := strings.CutPrefix(t, "OS: "); ok {
			tagged = append(tagged, strings.ToLower(os))
		}
	}
	if p := pick(tagged); p != "" {
		return p
	}
	for _, in := range integrations {
		switch strings.ToLower(in) {
		case "windows", "system":
			return "windows"
		case "aws", "azure", "gcp", "okta", "github", "kubernetes", "google_workspace":
			return strings.ToLower(in)
		case "o365":
			return "m365"
		}
	}
	return ""
}

// category maps an ECS event category (and the event types the rule asks for) to the
// Sigma logsource category with the same events, the names winevent's logsource map uses.
func category(cat string, types []string, dns bool) string {
	switch cat {
	case "process":
		if len(types) == 0 {
			// Without an event type a process rule reads every process event (starts,
			// ends, and through winlogbeat Sysmon 10 access events): no single Sigma
			// category means that, so none is claimed.
			return ""
		}
		if len(types) > 0 && !contains(types, "start") && !contains(types, "exec") && !contains(types, "process_started") &&
			!contains(types, "exec_event") && !contains(types, "executed") && (contains(types, "end") || contains(types, "exit")) {
			return "process_termination"
		}
		return "process_creation"
	case "file":
		if len(types) > 0 && contains(types, "deletion") && !contains(types, "creation") && !contains(types, "change") {
			return "file_delete"
		}
		return "file_event"
	case "registry":
		return "registry_event"
	case "network":
		if dns {
			return "dns_query"
		}
		return "network_connection"
	case "dns":
		return "dns_query"
	case "library":
		return "image_load"
	case "driver":
		return "driver_load"
	}
	return ""
}
