package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/derive"
	"github.com/ruledex/ruledex/winevent"
)

func init() {
	var asJSON, listRules bool
	var top int
	var field string
	cmd := &cobra.Command{
		Use:   "events [PROVIDER [EVENT-ID]] [--json]",
		Short: "Browse the Windows event encyclopedia: providers, events, fields and the rules that use them",
		Long: `events shows the Windows event catalog read from --data (its events/ folder):

  ruledex events                      every provider, with its events, channels and rules
  ruledex events PROVIDER             the provider's events ("30 events across 1 channel")
  ruledex events PROVIDER EVENT-ID    one event: description, message template, fields
                                      with types and the number of rules testing each,
                                      and the indicators rules most often test on it
  ... EVENT-ID --rules                the rules that can match the event
  ... EVENT-ID --field NAME           the rules that test that field of the event

PROVIDER is a provider name or its URL slug, in any case (Microsoft-Windows-Sysmon,
"Service Control Manager", Service-Control-Manager). Rule counts come from the catalog
(--db) when one exists: a rule counts for an event when the event is in its coverage
(ruledex show), and for a field when the rule tests that field there, under any of its
names (Image on Sysmon 1 is NewProcessName on Security 4688, FolderPath in KQL).`,
		Example: `  ruledex --data ../shared/corpus events
  ruledex --data ../shared/corpus events microsoft-windows-sysmon
  ruledex --data ../shared/corpus events Microsoft-Windows-Security-Auditing 4688 --json
  ruledex --data ../shared/corpus events sysmon 1 --field OriginalFileName`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (listRules || field != "") && len(args) != 2 {
				return withCode(exitUsage, fmt.Errorf("--rules and --field need PROVIDER and EVENT-ID"))
			}
			if listRules || field != "" {
				return runEventRules(cmd.Context(), cmd.OutOrStdout(), args, field, asJSON)
			}
			return runEvents(cmd.Context(), cmd.OutOrStdout(), args, asJSON, top)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&listRules, "rules", false, "list the rules that can match the event")
	cmd.Flags().StringVar(&field, "field", "", "list the rules that test this field of the event")
	cmd.Flags().IntVar(&top, "top", 20, "common indicators to show on an event page")
	root.AddCommand(cmd)
}

// runEventRules lists the rules covering an event, or testing one of its fields.
func runEventRules(ctx context.Context, w io.Writer, args []string, field string, asJSON bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	wc, err := eventsData(ctx)
	if err != nil {
		return err
	}
	p, ok := findProvider(wc, args[0])
	if !ok {
		return withCode(exitNoMatch, fmt.Errorf("no provider %q", args[0]))
	}
	id, err := strconv.Atoi(strings.TrimSpace(args[1]))
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("event id %q is not a number", args[1]))
	}
	e, ok := p.Event(id)
	if !ok {
		return withCode(exitNoMatch, fmt.Errorf("%s has no event %d in the catalog", p.Name, id))
	}
	if field != "" {
		f, ok := e.Field(field)
		if !ok {
			return withCode(exitNoMatch, fmt.Errorf("%s %d has no field %q", p.Name, id, field))
		}
		field = f.Name
	}
	cat, err := openDerived()
	if err != nil {
		return withCode(exitFailure, err)
	}
	defer cat.Close()
	if _, err := derive.Events(ctx, cat, wc); err != nil {
		return withCode(exitFailure, err)
	}
	rules, err := cat.RulesForEvent(ctx, p.Name, id, field, 0)
	if err != nil {
		return withCode(exitFailure, err)
	}
	if asJSON {
		if rules == nil {
			rules = []catalog.Summary{}
		}
		return evJSON(w, map[string]any{"provider": p.Name, "event_id": id, "field": field, "rules": rules})
	}
	what := fmt.Sprintf("%s %d (%s)", p.Name, id, oneLine(e.Title))
	if field != "" {
		what = field + " of " + what
	}
	if field != "" {
		fmt.Fprintf(w, "%d %s testing %s\n\n", len(rules), plural(len(rules), "rule", "rules"), what)
	} else {
		fmt.Fprintf(w, "%d %s that can match %s\n\n", len(rules), plural(len(rules), "rule", "rules"), what)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Language\tID\tTitle\n")
	for _, r := range rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Language, r.ID, oneLine(r.Title))
	}
	return tw.Flush()
}

func runEvents(ctx context.Context, w io.Writer, args []string, asJSON bool, top int) error {
	if ctx == nil {
		ctx = context.Background()
	}
	wc, err := eventsData(ctx)
	if err != nil {
		return err
	}
	// Rule counts are optional: without a catalog the encyclopedia still reads.
	var cat *catalog.Catalog
	if c, err := openDerived(); err == nil {
		defer c.Close()
		if _, err := derive.Events(ctx, c, wc); err != nil {
			return withCode(exitFailure, err)
		}
		cat = c
	}
	switch len(args) {
	case 0:
		return eventsIndex(ctx, w, wc, cat, asJSON)
	}
	p, ok := findProvider(wc, args[0])
	if !ok {
		var names []string
		for _, p := range wc.Providers() {
			names = append(names, p.Name)
		}
		return withCode(exitNoMatch, fmt.Errorf("no provider %q; known providers: %s", args[0], strings.Join(names, ", ")))
	}
	if len(args) == 1 {
		return eventsProvider(ctx, w, p, cat, asJSON)
	}
	id, err := strconv.Atoi(strings.TrimSpace(args[1]))
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("event id %q is not a number", args[1]))
	}
	e, ok := p.Event(id)
	if !ok {
		return withCode(exitNoMatch, fmt.Errorf("%s has no event %d in the catalog (%d events: ruledex events %s)", p.Name, id, len(p.Events), p.Slug))
	}
	return eventPage(ctx, w, e, cat, asJSON, top)
}

// evCache keeps the loaded event data for repeated in-process use (tests walk every page).
var evCache struct {
	sync.Mutex
	data string
	wc   *winevent.Catalog
}

// eventsData loads the event catalog for the events command: from --data, else from the
// folder the catalog's last ingest used.
func eventsData(ctx context.Context) (*winevent.Catalog, error) {
	storedDataDir()
	if globals.data == "" {
		return nil, withCode(exitUsage, fmt.Errorf("events needs the reference data: give --data DIR (a folder with events/) or set RULEDEX_DATA"))
	}
	wc, err := cachedEventCatalog()
	if err != nil {
		return nil, withCode(exitFailure, err)
	}
	return wc, nil
}

func cachedEventCatalog() (*winevent.Catalog, error) {
	evCache.Lock()
	defer evCache.Unlock()
	if evCache.wc != nil && evCache.data == globals.data {
		return evCache.wc, nil
	}
	wc, err := eventCatalog()
	if err != nil {
		return nil, err
	}
	evCache.data, evCache.wc = globals.data, wc
	return wc, nil
}

// findProvider accepts a name or slug, else a unique part of one ("sysmon").
func findProvider(wc *winevent.Catalog, q string) (*winevent.Provider, bool) {
	if p, ok := wc.Provider(q); ok {
		return p, true
	}
	lq := strings.ToLower(strings.TrimSpace(q))
	var hit *winevent.Provider
	for _, p := range wc.Providers() {
		if lq != "" && (strings.Contains(strings.ToLower(p.Name), lq) || strings.Contains(strings.ToLower(p.Slug), lq)) {
			if hit != nil {
				return nil, false
			}
			hit = p
		}
	}
	return hit, hit != nil
}

// eventCounts returns rules per event and per provider (empty without a catalog).
func eventCounts(ctx context.Context, cat *catalog.Catalog) (map[string]map[int]catalog.EventCount, map[string]int, error) {
	byEvent := map[string]map[int]catalog.EventCount{}
	if cat == nil {
		return byEvent, map[string]int{}, nil
	}
	evs, err := cat.EventRuleCounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range evs {
		if byEvent[e.Provider] == nil {
			byEvent[e.Provider] = map[int]catalog.EventCount{}
		}
		byEvent[e.Provider][e.EventID] = e
	}
	byProv, err := cat.ProviderRuleCounts(ctx)
	return byEvent, byProv, err
}

type providerJSON struct {
	Name     string   `json:"name"`
	Slug     string   `json:"slug"`
	Channels []string `json:"channels"`
	Events   int      `json:"events"`
	Rules    *int     `json:"rules,omitempty"` // absent without a catalog
}

func eventsIndex(ctx context.Context, w io.Writer, wc *winevent.Catalog, cat *catalog.Catalog, asJSON bool) error {
	_, byProv, err := eventCounts(ctx, cat)
	if err != nil {
		return withCode(exitFailure, err)
	}
	var out []providerJSON
	for _, p := range wc.Providers() {
		pj := providerJSON{Name: p.Name, Slug: p.Slug, Channels: p.Channels, Events: len(p.Events)}
		if cat != nil {
			n := byProv[p.Name]
			pj.Rules = &n
		}
		out = append(out, pj)
	}
	if asJSON {
		return evJSON(w, map[string]any{"providers": out})
	}
	fmt.Fprintf(w, "Windows event providers (%d)\n\n", len(out))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Provider\tEvents\tChannels\tRules\n")
	for _, p := range out {
		rules := "-"
		if p.Rules != nil {
			rules = strconv.Itoa(*p.Rules)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", p.Name, p.Events, len(p.Channels), rules)
	}
	tw.Flush()
	if cat == nil {
		fmt.Fprintln(w, "\nRule counts need a catalog: run `ruledex ingest PATH...` first.")
	}
	return nil
}

type eventSummaryJSON struct {
	EventID    int                 `json:"event_id"`
	Title      string              `json:"title"`
	Channel    string              `json:"channel"`
	Version    int                 `json:"version"`
	Fields     int                 `json:"fields"`
	Rules      *int                `json:"rules,omitempty"`
	ByLanguage []catalog.LangCount `json:"by_language,omitempty"`
}

func eventsProvider(ctx context.Context, w io.Writer, p *winevent.Provider, cat *catalog.Catalog, asJSON bool) error {
	byEvent, byProv, err := eventCounts(ctx, cat)
	if err != nil {
		return withCode(exitFailure, err)
	}
	var evs []eventSummaryJSON
	for _, e := range p.Events {
		ej := eventSummaryJSON{EventID: e.ID, Title: e.Title, Channel: e.Channel, Version: e.Version, Fields: len(e.Fields)}
		if cat != nil {
			c := byEvent[p.Name][e.ID]
			ej.Rules, ej.ByLanguage = &c.Rules, c.ByLanguage
		}
		evs = append(evs, ej)
	}
	headline := fmt.Sprintf("%d %s across %d %s", len(p.Events), plural(len(p.Events), "event", "events"),
		len(p.Channels), plural(len(p.Channels), "channel", "channels"))
	if asJSON {
		out := map[string]any{"name": p.Name, "slug": p.Slug, "channels": p.Channels, "summary": headline, "events": evs}
		if cat != nil {
			out["rules"] = byProv[p.Name]
		}
		return evJSON(w, out)
	}
	fmt.Fprintf(w, "Windows events › %s\n\n%s\n%s (%s)\n\n", p.Name, p.Name, headline, strings.Join(p.Channels, ", "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Event ID\tTitle\tFields\tRules\n")
	for _, e := range evs {
		rules := "-"
		if e.Rules != nil {
			rules = strconv.Itoa(*e.Rules) + langSuffix(e.ByLanguage)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", e.EventID, oneLine(e.Title), e.Fields, rules)
	}
	return tw.Flush()
}

type fieldJSON struct {
	Name         string              `json:"name"`
	ManifestType string              `json:"manifest_type,omitempty"`
	OutType      string              `json:"out_type,omitempty"`
	Type         string              `json:"type"`
	TypeInferred bool                `json:"type_inferred,omitempty"`
	Description  string              `json:"description,omitempty"`
	Rules        *int                `json:"rules,omitempty"`
	ByLanguage   []catalog.LangCount `json:"by_language,omitempty"`
}

func eventPage(ctx context.Context, w io.Writer, e *winevent.Event, cat *catalog.Catalog, asJSON bool, top int) error {
	var counts map[string]catalog.FieldCount
	var inds []catalog.EventIndicator
	var total catalog.EventCount
	if cat != nil {
		var err error
		if counts, err = cat.EventFieldCounts(ctx, e.Provider, e.ID); err != nil {
			return withCode(exitFailure, err)
		}
		if inds, err = cat.EventIndicators(ctx, e.Provider, e.ID, top); err != nil {
			return withCode(exitFailure, err)
		}
		byEvent, _, err := eventCounts(ctx, cat)
		if err != nil {
			return withCode(exitFailure, err)
		}
		total = byEvent[e.Provider][e.ID]
	}
	fields := make([]fieldJSON, 0, len(e.Fields))
	for _, f := range e.Fields {
		fj := fieldJSON{Name: f.Name, ManifestType: f.ManifestType, OutType: f.OutType, Type: f.Type,
			TypeInferred: f.TypeInferred, Description: f.Description}
		if cat != nil {
			c := counts[f.Name]
			fj.Rules, fj.ByLanguage = &c.Rules, c.ByLanguage
		}
		fields = append(fields, fj)
	}
	if asJSON {
		out := map[string]any{
			"provider": e.Provider, "provider_slug": winevent.Slug(e.Provider), "event_id": e.ID, "title": e.Title,
			"channel": e.Channel, "version": e.Version, "versions": e.Versions, "level": e.Level,
			"description": e.Description, "message_template": e.Message, "note": e.Note, "sources": e.Sources,
			"fields": fields,
		}
		if cat != nil {
			out["rules"], out["by_language"] = total.Rules, total.ByLanguage
			if inds == nil {
				inds = []catalog.EventIndicator{}
			}
			out["common_indicators"] = inds
		}
		return evJSON(w, out)
	}
	fmt.Fprintf(w, "Windows events › %s › %d\n\n%d: %s\n\n", e.Provider, e.ID, e.ID, oneLine(e.Title))
	meta := [][2]string{{"Provider", e.Provider}, {"Channel", e.Channel}, {"Version", strconv.Itoa(e.Version)}}
	if len(e.Versions) > 0 {
		var vs []string
		for _, v := range e.Versions {
			vs = append(vs, strconv.Itoa(v))
		}
		meta[2][1] += " (known versions " + strings.Join(vs, ", ") + ")"
	}
	if e.Level != "" {
		meta = append(meta, [2]string{"Level", e.Level})
	}
	if cat != nil {
		meta = append(meta, [2]string{"Rules", strconv.Itoa(total.Rules) + langSuffix(total.ByLanguage)})
	}
	for _, m := range meta {
		fmt.Fprintf(w, "%s\n  %s\n", m[0], m[1])
	}
	if e.Description != "" {
		fmt.Fprintf(w, "\nDescription\n\n%s\n", indent(e.Description))
	}
	if e.Note != "" {
		fmt.Fprintf(w, "\nNote\n\n%s\n", indent(e.Note))
	}
	if e.Message != "" {
		fmt.Fprintf(w, "\nMessage template\n\n%s\n", indent(e.Message))
	}
	fmt.Fprintf(w, "\nFields (%d)\n\n", len(fields))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name\tManifest type\tType\tRules\tDescription\n")
	for _, f := range fields {
		rules := "-"
		if f.Rules != nil {
			rules = ""
			if *f.Rules > 0 {
				rules = strconv.Itoa(*f.Rules) + langSuffix(f.ByLanguage)
			}
		}
		typ := f.Type
		if f.TypeInferred {
			typ += " (inferred)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.ManifestType, typ, rules, evTrunc(oneLine(f.Description), 90))
	}
	tw.Flush()
	if len(inds) > 0 {
		fmt.Fprintf(w, "\nCommon indicators\n\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Field\tKind\tValue\tRules\n")
		for _, in := range inds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d%s\n", in.Field, in.Kind, oneLine(in.Value), in.Rules, langSuffix(in.ByLanguage))
		}
		tw.Flush()
	}
	if cat == nil {
		fmt.Fprintln(w, "\nRule counts need a catalog: run `ruledex ingest PATH...` first.")
	}
	return nil
}

// langSuffix renders " (sigma 12, kusto 3)".
func langSuffix(ls []catalog.LangCount) string {
	if len(ls) == 0 {
		return ""
	}
	xs := append([]catalog.LangCount(nil), ls...)
	sort.SliceStable(xs, func(i, j int) bool { return xs[i].Rules > xs[j].Rules })
	var parts []string
	for _, l := range xs {
		parts = append(parts, fmt.Sprintf("%s %d", l.Language, l.Rules))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// oneLine keeps table cells on one line, and control characters from data out of the terminal.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}

func indent(s string) string {
	s = strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

func evTrunc(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func evJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
