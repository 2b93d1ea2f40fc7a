// Package fieldmap holds ruledex's field equivalence data and derives a rule's
// indicators from its predicates, so that the same test written in Sigma, KQL or SPL
// (Image|endswith '\x.exe', FileName =~ "x.exe", process_name=x.exe) counts as one.
package fieldmap

import (
	"embed"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/ruledex/ruledex/rule"
)

// The table is split by vocabulary (fields.tsv: Windows, Defender, Sentinel, CIM;
// fields_ecs.tsv: Elastic Common Schema; fields_udm.tsv: Google UDM), read in that order.
//
//go:embed fields.tsv fields_ecs.tsv fields_udm.tsv
var fieldsFS embed.FS

var fieldFiles = []string{"fields.tsv", "fields_ecs.tsv", "fields_udm.tsv"}

// Entry says that Field, read in Context, means Canonical.
type Entry struct {
	Context   string // Sigma category (may end in *), KQL table, CIM dataset
	Field     string
	Canonical string
	// NameOnly: the field holds only the file name of Canonical, so `eq x` tests `ends_with \x`.
	NameOnly bool
	Source   string
}

// Map answers field-equivalence questions.
type Map struct {
	byCtx  map[string]map[string]Entry // lower(context) -> lower(field) -> entry
	global map[string]Entry            // lower(field) -> entry, for names with one meaning everywhere
	globs  []string                    // contexts with wildcards (registry_*)
	// Entries lists all rows, for pages that show the equivalence used.
	Entries []Entry
}

var (
	defaultOnce sync.Once
	defaultMap  *Map
)

// Default returns the embedded map. It panics only if the embedded file is broken,
// which a test guards.
func Default() *Map {
	defaultOnce.Do(func() {
		tsv, err := embeddedTSV()
		if err != nil {
			panic(err)
		}
		m, err := Parse(tsv)
		if err != nil {
			panic(fmt.Errorf("fieldmap: embedded tables: %w", err))
		}
		defaultMap = m
	})
	return defaultMap
}

// embeddedTSV joins the embedded tables into one, with one header line.
func embeddedTSV() (string, error) {
	var all strings.Builder
	for i, name := range fieldFiles {
		b, err := fieldsFS.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("fieldmap: embedded %s: %w", name, err)
		}
		s := string(b)
		if i > 0 {
			// Later files repeat the header line; keep only the first.
			s = dropHeader(s)
		}
		all.WriteString(s)
		all.WriteString("\n")
	}
	return all.String(), nil
}

// dropHeader removes the first non-comment line (the column header) of a TSV table.
func dropHeader(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		return strings.Join(append(lines[:i:i], lines[i+1:]...), "\n")
	}
	return s
}

// Parse reads the TSV format of fields.tsv.
func Parse(tsv string) (*Map, error) {
	m := &Map{byCtx: map[string]map[string]Entry{}, global: map[string]Entry{}}
	ambiguous := map[string]bool{}
	header := true
	for i, line := range strings.Split(tsv, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if header {
			header = false
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: want at least 3 tab-separated columns, have %d", i+1, len(f))
		}
		e := Entry{Context: f[0], Field: f[1], Canonical: f[2]}
		if len(f) > 3 {
			e.NameOnly = f[3] == "name"
		}
		if len(f) > 4 {
			e.Source = f[4]
		}
		m.Entries = append(m.Entries, e)
		ctx := strings.ToLower(e.Context)
		if m.byCtx[ctx] == nil {
			m.byCtx[ctx] = map[string]Entry{}
			if strings.ContainsAny(ctx, "*?") {
				m.globs = append(m.globs, ctx)
			}
		}
		lf := strings.ToLower(e.Field)
		// The first row for a (context, field) wins: the table lists the primary
		// meaning first (FolderPath is TargetFilename in DeviceFileEvents, not the
		// 4663 ObjectName that maps onto it too).
		if _, dup := m.byCtx[ctx][lf]; !dup {
			m.byCtx[ctx][lf] = e
		}
		if g, ok := m.global[lf]; ok && (g.Canonical != e.Canonical || g.NameOnly != e.NameOnly) {
			ambiguous[lf] = true
		}
		m.global[lf] = e
	}
	for f := range ambiguous {
		delete(m.global, f)
	}
	return m, nil
}

// Contexts returns the lookup contexts of a rule, most specific first.
func Contexts(r *rule.Rule) []string {
	var ctx []string
	ls := r.LogSource
	ctx = append(ctx, ls.Tables...)
	ctx = append(ctx, ls.DataModels...)
	// Elastic and YARA-L name fields in one vocabulary each (ECS, UDM) whatever the
	// source; a field's meaning can still depend on the kind of event (process.name is
	// the launched image on a process start, the acting process on a file event), so
	// "ecs/<category>" comes before the plain vocabulary context.
	vocab := ""
	switch r.Language {
	case rule.Elastic:
		vocab = "ecs"
	case rule.YaraL:
		vocab = "udm"
	}
	if vocab != "" && ls.Category != "" {
		ctx = append(ctx, vocab+"/"+ls.Category)
	}
	if ls.Category != "" {
		ctx = append(ctx, ls.Category)
	}
	if vocab != "" {
		ctx = append(ctx, vocab)
	}
	return ctx
}

// Lookup returns the entry for field in the first context that knows it, else the
// context-free meaning when the name is unambiguous. ok is false for unknown fields.
func (m *Map) Lookup(contexts []string, field string) (Entry, bool) {
	lf := strings.ToLower(field)
	// CIM fields are often written with their dataset prefix (Processes.process_name).
	if i := strings.LastIndexByte(lf, '.'); i > 0 && !strings.HasPrefix(lf, "process.") {
		if e, ok := m.lookupCtx(lf[:i], lf[i+1:]); ok {
			return e, true
		}
	}
	for _, c := range contexts {
		if e, ok := m.lookupCtx(strings.ToLower(c), lf); ok {
			return e, true
		}
	}
	e, ok := m.global[lf]
	return e, ok
}

func (m *Map) lookupCtx(ctx, lf string) (Entry, bool) {
	if fm, ok := m.byCtx[ctx]; ok {
		if e, ok := fm[lf]; ok {
			return e, true
		}
	}
	for _, g := range m.globs {
		if ok, _ := path.Match(g, ctx); ok {
			if e, ok := m.byCtx[g][lf]; ok {
				return e, true
			}
		}
	}
	return Entry{}, false
}

// Canonical returns the canonical name of field in contexts (the field itself when unknown).
func (m *Map) Canonical(contexts []string, field string) string {
	if e, ok := m.Lookup(contexts, field); ok {
		return e.Canonical
	}
	return field
}

// keyTransforms are the transforms that change what an indicator matches; `cased` is
// left out because it is expressed by not folding the value. Regex flags are kept:
// a regex is never folded, so `i` is what makes it case-insensitive.
func keyTransforms(ts []string) string {
	var out []string
	for _, t := range ts {
		switch t {
		case rule.TCased:
			continue
		}
		out = append(out, t)
	}
	return strings.Join(out, "|")
}

// Key is the counting identity of a test: canonical field, kind, transforms and value,
// the value case-folded unless the test is case-sensitive. No trimming. A regex is
// never folded: folding changes what it means (`\S` would become `\s`, `\s-H\s` would
// no longer match -H); its i flag is the regex's own case rule.
//
// The term kinds (KQL has, hasprefix, hassuffix) count as contains, and in as eq: an
// indicator says who tests this string in this field, and a term occurrence is an
// occurrence. The difference matters for relations, which package neighbors keeps exact.
func Key(canonical string, kind rule.Kind, transforms []string, value string, cased bool) string {
	if !cased && kind != rule.Regex {
		value = strings.ToLower(value)
	}
	switch kind {
	case rule.Term, rule.TermPrefix, rule.TermSuffix:
		kind = rule.Match
	case rule.In: // one of several values: each value is an equality
		kind = rule.Eq
	}
	return strings.ToLower(canonical) + "\x1f" + string(kind) + "\x1f" + keyTransforms(transforms) + "\x1f" + value
}

// Normalize turns a test on a name-only field into the equivalent test on its canonical
// path field: eq "x.exe" becomes ends_with `\x.exe`, starts_with "x" becomes match `\x`.
// Other kinds are returned unchanged.
func Normalize(e Entry, kind rule.Kind, value string) (rule.Kind, string) {
	if !e.NameOnly {
		return kind, value
	}
	switch kind {
	case rule.Eq, rule.In:
		return rule.EndsW, `\` + value
	case rule.StartsW:
		return rule.Match, `\` + value
	}
	return kind, value
}

// IndicatorKey computes the key of (field, kind, value) as a user types it on the
// command line or in a URL, in the given contexts (nil for context-free).
func (m *Map) IndicatorKey(contexts []string, field string, kind rule.Kind, transforms []string, value string) (canonical, key string) {
	canonical = field
	if e, ok := m.Lookup(contexts, field); ok {
		canonical = e.Canonical
		kind, value = Normalize(e, kind, value)
	}
	cased := false
	for _, t := range transforms {
		cased = cased || t == rule.TCased
	}
	return canonical, Key(canonical, kind, transforms, value, cased)
}

// Indicators derives r's indicators: one per value of every predicate with a field or
// keyword, in stage order, duplicates (same key and polarity) removed.
func (m *Map) Indicators(r *rule.Rule) []rule.Indicator {
	ctx := Contexts(r)
	var out []rule.Indicator
	seen := map[string]bool{}
	add := func(stage int, p *rule.Pred, negated bool) {
		switch p.Kind {
		case rule.IsNull, rule.IsNotNull:
			// No value: the field itself is the indicator.
			canon := m.Canonical(ctx, p.Field)
			k := Key(canon, p.Kind, nil, "", false)
			if seen[k+fmt.Sprint(negated)] {
				return
			}
			seen[k+fmt.Sprint(negated)] = true
			out = append(out, rule.Indicator{Field: p.Field, Canonical: canon, Kind: p.Kind, Key: k, Negated: negated, Stage: stage})
			return
		}
		for _, v := range p.Values {
			if v.Type == rule.Null {
				continue
			}
			canon, kind, val := p.Field, p.Kind, v.S
			if e, ok := m.Lookup(ctx, p.Field); ok {
				canon = e.Canonical
				kind, val = Normalize(e, kind, val)
			}
			k := Key(canon, kind, p.Transforms, val, p.Cased())
			if seen[k+fmt.Sprint(negated)] {
				continue
			}
			seen[k+fmt.Sprint(negated)] = true
			out = append(out, rule.Indicator{
				Field: p.Field, Canonical: canon, Kind: p.Kind, Value: v.S, Key: k,
				Transforms: p.Transforms, Negated: negated, Stage: stage,
			})
		}
	}
	covered := false
	for _, s := range r.Stages {
		if s.Node == nil || s.Kind == rule.StageCondition {
			continue
		}
		covered = true
		for _, pp := range rule.Preds(s.Node) {
			add(s.Index, pp.Pred, pp.Negated)
		}
	}
	if !covered && r.Root != nil {
		for _, pp := range rule.Preds(r.Root) {
			add(0, pp.Pred, pp.Negated)
		}
	}
	return out
}

// envelopeFields describe where an ECS or UDM record came from and what kind of event it
// is (agent, data stream, event classification, host OS), not what happened. Rules use
// them to select the kind of event (EQL `event.type == "start"`, UDM `metadata.event_type
// = "PROCESS_LAUNCH"`), which the other languages say with a log source or table; they
// never exist on a Windows event.
var envelopeFields = map[string]bool{"event.type": true, "event.category": true, "event.action": true,
	"event.dataset": true, "event.module": true, "event.kind": true,
	"host.os.type": true, "host.os.family": true, "host.os.name": true, "host.os.platform": true,
	"data_stream.dataset": true, "data_stream.namespace": true, "agent.type": true,
	"metadata.event_type": true, "metadata.vendor_name": true, "metadata.product_name": true,
	"metadata.log_type": true, "@timestamp": true}

// Envelope reports whether field is an ECS or UDM envelope field (see envelopeFields).
func Envelope(field string) bool { return envelopeFields[strings.ToLower(field)] }

// ScopeRoot returns the rule's logic without the top-level positive tests of ECS/UDM
// envelope fields (event.type == "start", metadata.event_type = "PROCESS_LAUNCH",
// host.os.type == "windows"): the parsers already turned them into the log source, so
// they are the rule's scope, not logic that other languages lack, and no Windows event
// carries them. Other languages' rules are returned as they are.
func ScopeRoot(r *rule.Rule) *rule.Node {
	n := r.Root
	if n == nil || (r.Language != rule.Elastic && r.Language != rule.YaraL) || r.LogSource.Category == "" {
		// Without a category the envelope tests are the only statement of the kind of
		// event (an Okta rule's event.dataset): they stay logic.
		return n
	}
	if n.Op == rule.OpPred && n.Pred != nil && Envelope(n.Pred.Field) {
		return &rule.Node{Op: rule.OpTrue}
	}
	if n.Op != rule.OpAnd {
		return n
	}
	out := &rule.Node{Op: rule.OpAnd, Pos: n.Pos}
	for _, k := range n.Children {
		if k.Op == rule.OpPred && k.Pred != nil && Envelope(k.Pred.Field) {
			continue
		}
		out.Children = append(out.Children, k)
	}
	if len(out.Children) == 0 {
		return &rule.Node{Op: rule.OpTrue}
	}
	return out
}

// Exact is Lookup without the context-free fallback for vendor tables: a
// column's meaning in a Defender, ASIM or CIM table (ASIM imProcessCreate's
// TargetUsername is the process's user) says nothing about the same name elsewhere
// (SecurityEvent 4720's TargetUserName is the created account). Windows-event names
// (Sigma categories, SecurityEvent) keep their fallback: they are the events' own.
func (m *Map) Exact(ctx []string, field string) (Entry, bool) {
	e, ok := m.Lookup(ctx, field)
	if !ok {
		return e, false
	}
	ec := strings.ToLower(e.Context)
	for _, x := range ctx {
		if lx := strings.ToLower(x); lx == ec || strings.ContainsAny(ec, "*?") && globMatch(ec, lx) {
			return e, true
		}
	}
	if strings.HasPrefix(strings.ToLower(field), ec+".") { // CIM Processes.process_name
		return e, true
	}
	switch {
	case ec == "securityevent" || ec == "wineventlog" || ec == "xmleventlog" || ec == "xmlwineventlog":
		return e, true
	case e.Context == ec && strings.Contains(ec, "_"): // a Sigma category
		return e, true
	}
	return Entry{}, false
}

func globMatch(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}
