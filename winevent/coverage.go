package winevent

import (
	"sort"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// Why a target or coverage row was chosen; shown on pages as a hint.
const (
	ViaLogSource  = "logsource"    // the Sigma logsource map
	ViaNative     = "native-audit" // a native-audit alternate whose fields all exist
	ViaPinned     = "pinned"       // the rule tests EventID / Channel / Provider_Name itself
	ViaTable      = "table"        // a KQL table or ASIM parser
	ViaDataSource = "data_source"  // an ESCU data_source string
	ViaDataModel  = "data_model"   // a Splunk CIM data model
)

// CoverageRow is one event a rule can match: the Provider | Event ID | Title rows of
// a rule page and `event_coverage` in `ruledex show --json`.
type CoverageRow struct {
	Provider string `json:"provider"`
	EventID  int    `json:"event_id"`
	Title    string `json:"title"`
	// Slug is the provider's URL slug (/<slug>/<event-id>); Channel the event's channel.
	Slug    string `json:"provider_slug"`
	Channel string `json:"channel,omitempty"`
	// Known is false for events the catalog has no page for (the rule pins an ID the
	// data does not describe); Title is then empty.
	Known bool   `json:"known"`
	Via   string `json:"via"`
	// Fields are the rule's tested fields as this event names them (Image on Sysmon 1
	// is NewProcessName on 4688), for the per-field counts of event pages. Only fields
	// the event carries are listed; empty for events the catalog does not describe.
	Fields []FieldUse `json:"-"`
}

// FieldUse links a field as a rule writes it to the event field it reads.
type FieldUse struct {
	RuleField  string
	EventField string
}

// facts are what coverage needs to know about a rule's logic.
type facts struct {
	fields   []string // tested fields, first spelling kept, system properties left out
	keywords bool
	ids      map[int]bool
	channels []string
	provs    []string
	actions  []string // positive ActionType values (Defender XDR tables)
}

// pinFields name the System properties rules pin, per meaning, in every language's
// spelling (Sigma EventID/Channel/Provider_Name, Sentinel Event's EventLog/Source,
// Splunk EventCode/LogName/SourceName).
var (
	pinID = map[string]bool{"eventid": true, "eventcode": true, "event_id": true, "event.code": true,
		"winlog.event_id": true, "metadata.product_event_type": true}
	pinChannel  = map[string]bool{"channel": true, "eventlog": true, "logname": true, "event_log": true, "winlog.channel": true}
	pinProvider = map[string]bool{"provider_name": true, "providername": true, "provider": true, "sourcename": true,
		"winlog.provider_name": true, "event.provider": true}
)

func ruleFacts(r *rule.Rule) facts {
	f := facts{ids: map[int]bool{}}
	seenPred := map[*rule.Pred]bool{}
	seenField := map[string]bool{}
	kqlEvent := false
	for _, t := range r.LogSource.Tables {
		kqlEvent = kqlEvent || strings.EqualFold(t, "Event")
	}
	add := func(pp rule.PolarPred) {
		p := pp.Pred
		if seenPred[p] {
			return
		}
		seenPred[p] = true
		if p.Kind == rule.Keyword || p.Field == "" {
			f.keywords = true
			return
		}
		lf := strings.ToLower(p.Field)
		pinnable := !pp.Negated && (p.Kind == rule.Eq || p.Kind == rule.In)
		switch {
		case pinID[lf]:
			if pinnable {
				for _, v := range p.Values {
					if n, err := strconv.Atoi(strings.TrimSpace(v.S)); err == nil && !v.Wild {
						f.ids[n] = true
					}
				}
			}
			return
		case pinChannel[lf]:
			if pinnable {
				for _, v := range p.Values {
					if !v.Wild && v.S != "" {
						f.channels = append(f.channels, v.S)
					}
				}
			}
			return
		case pinProvider[lf] || (kqlEvent && lf == "source"):
			if pinnable {
				for _, v := range p.Values {
					if !v.Wild && v.S != "" {
						f.provs = append(f.provs, v.S)
					}
				}
			}
			return
		}
		if lf == "actiontype" && !pp.Negated {
			switch p.Kind {
			case rule.Eq, rule.In, rule.Match, rule.StartsW:
				for _, v := range p.Values {
					f.actions = append(f.actions, strings.ToLower(v.S))
				}
			}
		}
		if systemFields[lf] || seenField[lf] {
			return
		}
		seenField[lf] = true
		f.fields = append(f.fields, p.Field)
	}
	for _, pp := range rule.Preds(r.Root) {
		add(pp)
	}
	for i := range r.Stages {
		for _, pp := range rule.Preds(r.Stages[i].Node) {
			add(pp)
		}
	}
	return f
}

// RouteRule returns where a rule's events come from, weighing its log source, the
// fields it tests and the values it pins:
//   - a detection that tests EventID (and Channel/Provider_Name) gets exactly those events;
//   - otherwise the log source's targets (Sigma logsource map, KQL table, SPL data
//     source or data model), keeping each candidate event only when every field the
//     rule tests exists there (after the alternate's renames); if no candidate has all
//     the fields, the log source's own (non-alternate) candidates are kept, because
//     the names may come from a pipeline the data does not describe.
//
// Nil means the rule names no Windows telemetry ruledex can place.
func (c *Catalog) RouteRule(r *rule.Rule) []Target {
	f := ruleFacts(r)
	switch r.Language {
	case rule.Kusto:
		return c.kqlTargets(r, f)
	case rule.Splunk:
		return c.splTargets(r, f)
	case rule.Elastic, rule.YaraL:
		return c.vocabTargets(r, f)
	}
	return c.sigmaTargets(r, f)
}

// Coverage lists the events a rule can match (issue 5): Provider | Event ID | Title.
// Keyword-only and product-only rules list nothing rather than guessing, and so do
// rules whose log source names a channel but no event IDs (a `service: security` rule
// that pins no EventID).
func (c *Catalog) Coverage(r *rule.Rule) []CoverageRow {
	f := ruleFacts(r)
	if len(f.fields) == 0 && len(f.ids) == 0 && f.keywords {
		return nil
	}
	var rows []CoverageRow
	seen := map[string]bool{}
	for _, t := range c.RouteRule(r) {
		if t.Provider == "" {
			continue
		}
		for _, id := range t.EventIDs {
			row := CoverageRow{Provider: t.Provider, EventID: id, Channel: t.Channel, Via: t.Via, Slug: Slug(t.Provider)}
			if p, ok := c.Provider(t.Provider); ok {
				row.Provider, row.Slug = p.Name, p.Slug
				if e, ok := p.Event(id); ok {
					row.Title, row.Known, row.Channel = e.Title, true, e.Channel
					row.Fields = fieldUses(e, &t, f.fields)
				}
			}
			k := strings.ToLower(row.Provider) + "\x00" + strconv.Itoa(id)
			if seen[k] {
				continue
			}
			seen[k] = true
			rows = append(rows, row)
		}
	}
	// PowerShellCore writes the same 4104 as Windows PowerShell, but the data describes
	// only the latter: an undescribed event borrows the title of a described one with the
	// same ID in the same coverage (it stays Known=false: there is no page for it).
	for i := range rows {
		if rows[i].Known {
			continue
		}
		for _, o := range rows {
			if o.Known && o.EventID == rows[i].EventID && o.Via == rows[i].Via {
				rows[i].Title = o.Title
				break
			}
		}
	}
	return rows
}

// fieldUses maps each tested field to the event's own field name, when it has one.
func fieldUses(e *Event, t *Target, fields []string) []FieldUse {
	var out []FieldUse
	for _, fl := range fields {
		name := fl
		if t.canon != nil {
			cf, ok := t.canon(fl)
			if !ok {
				// A column ruledex cannot place may still be the event's own name
				// (SecurityEvent columns are 4688's).
				cf = fl
			}
			name = cf
		}
		name = t.Field(name)
		if ef, ok := e.Field(name); ok {
			out = append(out, FieldUse{RuleField: fl, EventField: ef.Name})
			continue
		}
		if hashParts[strings.ToLower(name)] {
			for _, h := range []string{"Hashes", "Hash"} {
				if ef, ok := e.Field(h); ok {
					out = append(out, FieldUse{RuleField: fl, EventField: ef.Name})
					break
				}
			}
		}
	}
	return out
}

// vocabTargets places Elastic (ECS) and YARA-L (UDM) rules. Their parsers name the
// kind of event as a Sigma category (an EQL `process where event.type == "start"`, a UDM
// PROCESS_LAUNCH are process_creation), so the Sigma logsource map gives the
// candidates, and the fields are fitted after translating them through the ECS or UDM
// rows of the field map. Explicit event ids (winlog.event_id, event.code,
// metadata.product_event_type) pin the events as they do for Sigma.
func (c *Catalog) vocabTargets(r *rule.Rule, f facts) []Target {
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
	fm := fieldmap.Default()
	ctx := fieldmap.Contexts(r)
	canon := func(col string) (string, bool) {
		if fieldmap.Envelope(col) {
			return "", false
		}
		e, ok := fm.Lookup(ctx, col)
		if !ok {
			return "", false
		}
		return e.Canonical, true
	}
	if len(f.ids) > 0 {
		if ls.Product == "" && len(base) == 0 {
			// Event ids alone do not say Windows: an Elastic rule on event.code "4688"
			// with no OS named could be any source; require the OS or a category.
			return nil
		}
		ts := c.pinned(f, base)
		// Fields are canonical (Sysmon) names after the field map: where a pinned event
		// is the category's native-audit alternate (4688 for process creation), its
		// renames apply as they do on the unpinned route (Image is NewProcessName).
		for i := range ts {
			for _, b := range base {
				if b.Native && strings.EqualFold(b.Provider, ts[i].Provider) && idsWithin(ts[i].EventIDs, b.EventIDs) {
					ts[i].Renames, ts[i].Where, ts[i].Native = b.Renames, b.Where, true
				}
			}
		}
		return withCanon(ts, canon)
	}
	base = narrowProvider(base, f)
	return withCanon(c.fit(base, f.fields, canon), canon)
}

func (c *Catalog) sigmaTargets(r *rule.Rule, f facts) []Target {
	ls := r.LogSource
	if p := strings.ToLower(ls.Product); p != "" && p != "windows" {
		return nil
	}
	base := c.Route(ls)
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
	base = narrowProvider(base, f)
	return c.fit(base, f.fields, nil)
}

// narrowProvider applies Provider_Name/Channel pins to targets that leave them open
// (service: system + Provider_Name: Service Control Manager).
func narrowProvider(ts []Target, f facts) []Target {
	if len(f.provs) == 0 {
		return ts
	}
	var out []Target
	for _, t := range ts {
		if t.Provider != "" {
			out = append(out, t)
			continue
		}
		for _, p := range f.provs {
			n := t
			n.Provider = p
			out = append(out, n)
		}
	}
	return out
}

// pinned resolves the event IDs a rule tests to (channel, provider) pairs: the
// providers it pins, else the providers of the channels it pins, else the log source's
// targets, else the single provider in the catalog that has the ID.
func (c *Catalog) pinned(f facts, base []Target) []Target {
	type pair struct{ ch, prov string }
	var pairs []pair
	for _, p := range f.provs {
		if len(f.channels) > 0 {
			for _, ch := range f.channels {
				pairs = append(pairs, pair{ch, p})
			}
		} else {
			pairs = append(pairs, pair{"", p})
		}
	}
	if len(pairs) == 0 {
		for _, ch := range f.channels {
			ps := c.ProvidersOnChannel(ch)
			for _, p := range ps {
				pairs = append(pairs, pair{ch, p.Name})
			}
			if len(ps) == 0 {
				pairs = append(pairs, pair{ch, ""})
			}
		}
	}
	if len(pairs) == 0 {
		for _, t := range base {
			if t.Provider != "" {
				pairs = append(pairs, pair{t.Channel, t.Provider})
			} else {
				for _, p := range c.ProvidersOnChannel(t.Channel) {
					pairs = append(pairs, pair{t.Channel, p.Name})
				}
			}
		}
	}
	byPair := map[pair][]int{}
	var order []pair
	for _, id := range sortedIDs(f.ids) {
		var hit *pair
		for i := range pairs {
			if _, ok := c.Event(pairs[i].prov, id); ok {
				hit = &pairs[i]
				break
			}
		}
		if hit == nil && len(pairs) == 0 {
			// No log source at all: accept the ID only when one provider has it.
			var only *Provider
			n := 0
			for _, p := range c.providers {
				if _, ok := p.Event(id); ok {
					only, n = p, n+1
				}
			}
			if n == 1 {
				e, _ := only.Event(id)
				hit = &pair{e.Channel, only.Name}
			}
		}
		if hit == nil && len(pairs) > 0 {
			// The data does not describe this ID: attribute it to the pair whose provider
			// writes most of the channel (Security-Auditing rather than Eventlog).
			best, bestN := -1, -1
			for i, p := range pairs {
				n := 0
				if pr, ok := c.Provider(p.prov); ok {
					n = len(pr.Events)
				}
				if n > bestN {
					best, bestN = i, n
				}
			}
			hit = &pairs[best]
		}
		if hit == nil {
			continue
		}
		h := *hit
		if h.ch == "" {
			if e, ok := c.Event(h.prov, id); ok {
				h.ch = e.Channel
			} else if p, ok := c.Provider(h.prov); ok && len(p.Channels) == 1 {
				h.ch = p.Channels[0]
			}
		}
		if _, ok := byPair[h]; !ok {
			order = append(order, h)
		}
		byPair[h] = append(byPair[h], id)
	}
	var out []Target
	for _, p := range order {
		prov := p.prov
		if pr, ok := c.Provider(prov); ok {
			prov = pr.Name
		}
		out = append(out, Target{Channel: p.ch, Provider: prov, EventIDs: byPair[p], Via: ViaPinned})
	}
	return out
}

// fit keeps, per target, the event IDs whose events carry every field (renamed for
// alternates). canon, when set, maps a rule field to its Sysmon-named equivalent
// (KQL/SPL columns); fields it cannot map are left out of the check.
func (c *Catalog) fit(ts []Target, fields []string, canon func(string) (string, bool)) []Target {
	check := fields
	if canon != nil {
		check = nil
		for _, fl := range fields {
			if cf, ok := canon(fl); ok {
				check = append(check, cf)
			}
		}
	}
	var out []Target
	anyFit := false
	for _, t := range ts {
		if len(t.EventIDs) == 0 {
			out = append(out, t)
			continue
		}
		var keep []int
		for _, id := range t.EventIDs {
			e, ok := c.Event(t.Provider, id)
			if !ok {
				// Nothing to check against; the log source's word stands, alternates do not.
				if !t.Native {
					keep = append(keep, id)
				}
				continue
			}
			if hasAll(e, &t, check) {
				keep = append(keep, id)
				anyFit = true
			}
		}
		if len(keep) > 0 {
			n := t
			n.EventIDs = keep
			out = append(out, n)
		}
	}
	if anyFit || len(check) == 0 {
		return out
	}
	// No candidate carries the fields: trust the log source's own candidates.
	out = out[:0]
	for _, t := range ts {
		if !t.Native {
			out = append(out, t)
		}
	}
	return out
}

// lookupIn maps a column through the field map of its own table or data model only:
// a name's meaning elsewhere (DeviceName is a network event's SourceHostname) must not
// decide whether a process event fits.
func lookupIn(fm *fieldmap.Map, ctx []string, col string) (string, bool) {
	if len(ctx) == 0 || ctx[0] == "" {
		return "", false
	}
	e, ok := fm.Lookup(ctx, col)
	if !ok || !strings.EqualFold(e.Context, ctx[0]) {
		return "", false
	}
	return e.Canonical, true
}

func withCanon(ts []Target, canon func(string) (string, bool)) []Target {
	for i := range ts {
		ts[i].canon = canon
	}
	return ts
}

func hasAll(e *Event, t *Target, fields []string) bool {
	for _, fl := range fields {
		if !e.HasField(t.Field(fl)) {
			return false
		}
	}
	return true
}

// kqlTable says what a KQL table or ASIM parser stands for: a Sigma category whose
// targets (with alternates) apply, or fixed Security-Auditing events, or events the
// query itself must pin.
type kqlTable struct {
	category string
	security []int // fixed Security-Auditing event IDs
	pinned   bool  // SecurityEvent, WindowsEvent, Event: the query's EventID tests decide
	channel  string
	provider string
	ctx      string // fieldmap context for column names
	actions  bool   // DeviceEvents: the ActionType values the query tests decide
}

type eventRef struct {
	provider string
	id       int
}

// deviceEventActions maps Defender XDR DeviceEvents ActionType values to the Windows
// events recording the same activity (Microsoft's DeviceEvents schema and the Sysmon /
// Security event each action mirrors). Actions without a Windows event are left out.
var deviceEventActions = map[string][]eventRef{
	"namedpipeevent":                   {{sysmonProvider, 17}, {sysmonProvider, 18}},
	"createremotethreadapicall":        {{sysmonProvider, 8}},
	"openprocessapicall":               {{sysmonProvider, 10}},
	"dnsqueryresponse":                 {{sysmonProvider, 22}},
	"driverload":                       {{sysmonProvider, 6}},
	"serviceinstalled":                 {{"Service Control Manager", 7045}, {securityAuditing, 4697}},
	"scheduledtaskcreated":             {{securityAuditing, 4698}},
	"scheduledtaskdeleted":             {{securityAuditing, 4699}},
	"scheduledtaskenabled":             {{securityAuditing, 4700}},
	"scheduledtaskdisabled":            {{securityAuditing, 4701}},
	"scheduledtaskupdated":             {{securityAuditing, 4702}},
	"useraccountcreated":               {{securityAuditing, 4720}},
	"useraccountdeleted":               {{securityAuditing, 4726}},
	"useraccountaddedtolocalgroup":     {{securityAuditing, 4732}},
	"useraccountremovedfromlocalgroup": {{securityAuditing, 4733}},
	"auditpolicymodification":          {{securityAuditing, 4719}},
	"securitylogcleared":               {{"Microsoft-Windows-Eventlog", 1102}},
}

const sysmonProvider = "Microsoft-Windows-Sysmon"

// deviceEventActionNames orders deviceEventActions' keys so coverage rows are stable.
var deviceEventActionNames = func() []string {
	var ks []string
	for k := range deviceEventActions {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}()

// Device* tables follow field_equivalence_process_etc.tsv (mde_table ↔ Sigma category);
// ASIM schemas follow Microsoft's normalization schemas (process, authentication,
// network session, registry, file, DNS).
var kqlTables = map[string]kqlTable{
	"deviceprocessevents":   {category: "process_creation", ctx: "DeviceProcessEvents"},
	"deviceimageloadevents": {category: "image_load", ctx: "DeviceImageLoadEvents"},
	"devicefileevents":      {category: "file_event", ctx: "DeviceFileEvents"},
	"devicenetworkevents":   {category: "network_connection", ctx: "DeviceNetworkEvents"},
	"deviceregistryevents":  {category: "registry_event", ctx: "DeviceRegistryEvents"},
	"devicelogonevents":     {security: []int{4624, 4625}},
	"deviceevents":          {actions: true},
	"securityevent":         {pinned: true, channel: "Security", provider: "Microsoft-Windows-Security-Auditing", ctx: "SecurityEvent"},
	"windowsevent":          {pinned: true},
	"event":                 {pinned: true},
}

var asimSchemas = []struct {
	prefix string
	t      kqlTable
}{
	{"processterminate", kqlTable{category: "process_termination"}},
	{"processcreate", kqlTable{category: "process_creation", ctx: "imProcessCreate"}},
	{"processevent", kqlTable{category: "process_creation", ctx: "imProcessCreate"}},
	{"process", kqlTable{category: "process_creation", ctx: "imProcessCreate"}},
	{"authentication", kqlTable{security: []int{4624, 4625}}},
	{"networksession", kqlTable{category: "network_connection"}},
	{"registryevent", kqlTable{category: "registry_event"}},
	{"registry", kqlTable{category: "registry_event"}},
	{"fileevent", kqlTable{category: "file_event"}},
	{"dns", kqlTable{category: "dns_query"}},
}

// lookupKQLTable understands tables and ASIM parser names in their spellings
// (imProcessCreate, _Im_ProcessCreate, ASimProcessCreateMicrosoftSysmon, _ASim_Dns).
func lookupKQLTable(name string) (kqlTable, bool) {
	l := strings.ToLower(strings.TrimSpace(name))
	if t, ok := kqlTables[l]; ok {
		return t, true
	}
	s := strings.ReplaceAll(l, "_", "")
	switch {
	case strings.HasPrefix(s, "asim"):
		s = s[4:]
	case strings.HasPrefix(s, "im"):
		s = s[2:]
	default:
		return kqlTable{}, false
	}
	for _, a := range asimSchemas {
		if strings.HasPrefix(s, a.prefix) {
			return a.t, true
		}
	}
	return kqlTable{}, false
}

const securityAuditing = "Microsoft-Windows-Security-Auditing"

func (c *Catalog) kqlTargets(r *rule.Rule, f facts) []Target {
	var out []Target
	fm := fieldmap.Default()
	for _, name := range r.LogSource.Tables {
		kt, ok := lookupKQLTable(name)
		if !ok {
			continue
		}
		switch {
		case kt.category != "":
			ts := c.Route(rule.LogSource{Category: kt.category})
			for i := range ts {
				ts[i].Via = ViaTable
			}
			ctx := []string{kt.ctx}
			canon := func(col string) (string, bool) { return lookupIn(fm, ctx, col) }
			out = append(out, withCanon(c.fit(ts, f.fields, canon), canon)...)
		case kt.actions:
			seen := map[eventRef]bool{}
			start := len(out)
			for _, a := range f.actions {
				for _, name := range deviceEventActionNames {
					refs := deviceEventActions[name]
					// contains/startswith tests name a family ("ScheduledTask").
					if name != a && !(len(a) >= 6 && strings.Contains(name, a)) {
						continue
					}
					for _, ref := range refs {
						if seen[ref] {
							continue
						}
						seen[ref] = true
						ch := ""
						if e, ok := c.Event(ref.provider, ref.id); ok {
							ch = e.Channel
						}
						out = append(out, Target{Channel: ch, Provider: ref.provider, EventIDs: []int{ref.id}, Via: ViaTable})
					}
				}
			}
			added := out[start:]
			dctx := []string{"DeviceEvents"}
			withCanon(added, func(col string) (string, bool) { return lookupIn(fm, dctx, col) })
			sort.SliceStable(added, func(i, j int) bool {
				if added[i].Provider != added[j].Provider {
					return added[i].Provider > added[j].Provider // Sysmon before Security, as elsewhere
				}
				return added[i].EventIDs[0] < added[j].EventIDs[0]
			})
		case len(kt.security) > 0:
			out = append(out, Target{Channel: "Security", Provider: securityAuditing, EventIDs: kt.security, Via: ViaTable})
		case kt.pinned:
			g := f
			if kt.provider != "" && len(g.provs) == 0 {
				g.provs = []string{kt.provider}
			}
			if kt.channel != "" && len(g.channels) == 0 {
				g.channels = []string{kt.channel}
			}
			if len(g.ids) == 0 {
				if len(g.channels) > 0 {
					t := Target{Channel: g.channels[0], Via: ViaTable}
					if len(g.provs) > 0 {
						t.Provider = g.provs[0]
					}
					out = append(out, t)
				}
				continue
			}
			ts := c.pinned(g, nil)
			for i := range ts {
				ts[i].Via = ViaTable
			}
			out = append(out, ts...)
		}
	}
	return out
}

// dataSourceChannels maps the words ESCU's data_source strings use for a log
// ("Windows Event Log Security 4688", "Windows Event Log Defender 1121", "NTLM
// Operational 8004,8005,8006") to Sigma services of the logsource map.
var dataSourceServices = []struct{ prefix, service string }{
	{"sysmon eventid", "sysmon"},
	{"windows event log security", "security"},
	{"windows security", "security"},
	{"windows event log system", "system"},
	{"windows event log application", "application"},
	{"windows event log defender", "windefend"},
	{"powershell", "powershell"},
	{"ntlm operational", "ntlm"},
	{"windows event log taskscheduler", "taskscheduler"},
}

// splDataModels maps CIM data models (with or without the dataset) to Sigma categories.
var splDataModels = []struct{ prefix, category, ctx string }{
	{"endpoint.processes", "process_creation", "Processes"},
	{"endpoint.registry", "registry_event", "Registry"},
	{"endpoint.filesystem", "file_event", "Filesystem"},
	{"network_traffic", "network_connection", "Network_Traffic"},
	{"network_resolution", "dns_query", ""},
}

func (c *Catalog) splTargets(r *rule.Rule, f facts) []Target {
	var out []Target
	for _, ds := range r.LogSource.DataSources {
		for _, part := range strings.Split(ds, " AND ") {
			out = append(out, c.dataSource(strings.TrimSpace(part))...)
		}
	}
	fm := fieldmap.Default()
	if len(out) > 0 {
		// The search's columns are the data model's (Processes.process_name): read them
		// through its field map, and through the alternate's renames on native events
		// (Image is NewProcessName on 4688), so field counts see them.
		var ctx []string
		for _, dm := range r.LogSource.DataModels {
			l := strings.ToLower(strings.TrimSpace(dm))
			for _, m := range splDataModels {
				if strings.HasPrefix(l, m.prefix) && m.ctx != "" {
					ctx = []string{m.ctx}
					break
				}
			}
			if ctx != nil {
				break
			}
		}
		if ctx != nil {
			out = withCanon(out, func(col string) (string, bool) { return lookupIn(fm, ctx, col) })
		}
		for i := range out {
			if a := c.alternateFor(out[i].Provider, out[i].EventIDs); a != nil {
				out[i].Renames = a.Renames
			}
		}
		return out
	}
	for _, dm := range r.LogSource.DataModels {
		l := strings.ToLower(strings.TrimSpace(dm))
		switch {
		case strings.HasPrefix(l, "authentication"):
			out = append(out, Target{Channel: "Security", Provider: securityAuditing, EventIDs: []int{4624, 4625}, Via: ViaDataModel})
			continue
		case strings.HasPrefix(l, "endpoint.services"):
			out = append(out, c.pinned(facts{ids: map[int]bool{7045: true}}, nil)...)
			continue
		}
		for _, m := range splDataModels {
			if !strings.HasPrefix(l, m.prefix) {
				continue
			}
			ts := c.Route(rule.LogSource{Category: m.category})
			for i := range ts {
				ts[i].Via = ViaDataModel
			}
			ctx := []string{m.ctx}
			canon := func(col string) (string, bool) { return lookupIn(fm, ctx, col) }
			out = append(out, withCanon(c.fit(ts, f.fields, canon), canon)...)
			break
		}
	}
	if len(out) == 0 && len(f.ids) > 0 && len(f.channels) > 0 {
		// Raw searches: source="XmlWinEventLog:Security" EventCode=4688.
		out = c.pinned(f, nil)
	}
	return out
}

// alternateFor returns the native-audit alternate whose event the target reads (so a
// data_source naming Security 4688 gets process_creation's renames), or nil.
func (c *Catalog) alternateFor(provider string, ids []int) *Alternate {
	if len(ids) == 0 {
		return nil
	}
	var names []string
	for k := range c.alternates {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		a := c.alternates[k]
		if !strings.EqualFold(a.Provider, provider) || len(a.Where) > 0 {
			continue
		}
		for _, id := range a.EventIDs {
			if id == ids[0] {
				return a
			}
		}
	}
	return nil
}

// dataSource reads one ESCU data_source entry ("Sysmon EventID 1").
func (c *Catalog) dataSource(s string) []Target {
	l := strings.ToLower(s)
	if strings.Contains(l, "linux") {
		return nil
	}
	for _, d := range dataSourceServices {
		if !strings.HasPrefix(l, d.prefix) {
			continue
		}
		ids := map[int]bool{}
		for _, tok := range strings.FieldsFunc(l[len(d.prefix):], func(r rune) bool { return r == ',' || r == ' ' }) {
			if n, err := strconv.Atoi(tok); err == nil {
				ids[n] = true
			}
		}
		if len(ids) == 0 {
			return nil
		}
		m, ok := c.Service(d.service)
		if !ok {
			return nil
		}
		ts := c.pinned(facts{ids: ids}, c.mappingTargets(m))
		for i := range ts {
			ts[i].Via = ViaDataSource
		}
		return ts
	}
	return nil
}

// idsWithin reports whether every id of a is in b.
func idsWithin(a, b []int) bool {
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return len(a) > 0
}
