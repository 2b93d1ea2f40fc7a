package elastic

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/lang/elastic/eql"
	"github.com/ruledex/ruledex/lang/elastic/esql"
	"github.com/ruledex/ruledex/lang/elastic/kuery"
	"github.com/ruledex/ruledex/rule"
)

// rule reads one [rule] table (with its file's [metadata]).
func (f *file) rule(meta, rt map[string]any) *rule.Rule {
	r := &rule.Rule{
		ID:             str(rt, "rule_id"),
		Title:          str(rt, "name"),
		Description:    strings.TrimSpace(str(rt, "description")),
		Severity:       strings.ToLower(str(rt, "severity")),
		Type:           str(rt, "type"),
		Authors:        strs(rt, "author"),
		Tags:           strs(rt, "tags"),
		References:     strs(rt, "references"),
		FalsePositives: trimAll(strs(rt, "false_positives")),
		Class:          rule.Detection,
	}
	r.Source.Line = f.keyLine("rule", "")
	if meta != nil {
		r.Status = str(meta, "maturity")
		r.Date = str(meta, "creation_date")
		r.Modified = str(meta, "updated_date")
		r.LogSource.DataSources = strs(meta, "integration")
		if r.Status != "" {
			r.Settings = append(r.Settings, rule.Setting{Name: "maturity", Value: r.Status})
		}
	}
	if rs, ok := rt["risk_score"].(int64); ok {
		r.RiskScore = int(rs)
	}
	r.LogSource.Indexes = strs(rt, "index")
	if n := str(rt, "note"); n != "" {
		r.Docs = append(r.Docs, rule.Doc{Title: "Investigation guide", Markdown: n})
	}
	if s := str(rt, "setup"); s != "" {
		r.Docs = append(r.Docs, rule.Doc{Title: "Setup", Markdown: s})
	}
	if bb := str(rt, "building_block_type"); bb != "" {
		r.Class = rule.BuildingBlock
		r.Settings = append(r.Settings, rule.Setting{Name: "building_block_type", Value: bb})
	}
	for _, k := range []string{"from", "interval", "max_signals", "timestamp_override", "event_category_override"} {
		if v := str(rt, k); v != "" {
			r.Settings = append(r.Settings, rule.Setting{Name: k, Value: v})
		}
	}
	r.Frequency = str(rt, "interval")
	if from := str(rt, "from"); strings.HasPrefix(from, "now-") {
		r.Timeframe = strings.TrimPrefix(from, "now-")
	}
	f.threat(r, rt)
	if as, ok := rt["alert_suppression"].(map[string]any); ok {
		if g := strs(as, "group_by"); len(g) > 0 {
			r.Settings = append(r.Settings, rule.Setting{Name: "alert_suppression.group_by", Value: strings.Join(g, ", ")})
		}
		if d, ok := as["duration"].(map[string]any); ok {
			r.Settings = append(r.Settings, rule.Setting{Name: "alert_suppression.duration", Value: str(d, "value") + str(d, "unit")})
		}
	}
	// The fields an analyst is shown with each alert, as Sentinel's custom details are.
	if inv, ok := rt["investigation_fields"].(map[string]any); ok {
		r.Outputs = strs(inv, "field_names")
	}
	// Metadata with no IR slot, kept verbatim.
	extra := func(m map[string]any, keys ...string) {
		for _, k := range keys {
			if v := strings.Join(strs(m, k), ", "); v != "" {
				if r.Extra == nil {
					r.Extra = map[string]string{}
				}
				r.Extra[k] = v
			}
		}
	}
	extra(rt, "license", "rule_name_override", "timeline_title", "timestamp_override")
	if meta != nil {
		extra(meta, "min_stack_version", "deprecation_date", "deprecated_reason")
	}

	lang := strings.ToLower(str(rt, "language"))
	q := str(rt, "query")
	if _, has := rt["query"]; has {
		r.Body, r.BodyLang = q, lang
		at := f.valuePositions("rule", "query", 1)[0]
		f.query(r, lang, q, at)
	}
	f.filters(r, rt)
	switch r.Type {
	case "threshold":
		f.threshold(r, rt)
	case "new_terms":
		f.newTerms(r, rt)
	case "machine_learning":
		f.machineLearning(r, rt)
	case "threat_match":
		for _, k := range []string{"threat_index", "threat_query", "threat_indicator_path"} {
			if v := strings.Join(strs(rt, k), ", "); v != "" {
				r.Settings = append(r.Settings, rule.Setting{Name: k, Value: v})
			}
		}
	}
	if _, has := rt["query"]; !has && r.Type != "machine_learning" {
		r.Diagnostics = append(r.Diagnostics, f.errAt("rule", "", "elastic/rule/no-query", fmt.Sprintf("%s rule has no query", orUnknown(r.Type))))
	}
	deriveLogSource(r)
	return r
}

func orUnknown(s string) string {
	if s == "" {
		return "untyped"
	}
	return s
}

func trimAll(ss []string) []string {
	for i := range ss {
		ss[i] = strings.Join(strings.Fields(ss[i]), " ")
	}
	return ss
}

// query reads q in its language into r's Root, Stages (Stage 0 is the query as written)
// and diagnostics.
func (f *file) query(r *rule.Rule, lang, q string, at rule.Pos) {
	r.Condition = strings.TrimSpace(q)
	r.Stages = []rule.Stage{{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: r.Condition, Pos: at}}
	add := func(st rule.Stage) {
		st.Index = len(r.Stages)
		r.Stages = append(r.Stages, st)
	}
	switch lang {
	case "eql":
		eq := eql.Parse(q, at)
		r.Root = eq.Root
		for _, st := range eq.Stages {
			add(st)
		}
		r.Diagnostics = append(r.Diagnostics, eq.Diags...)
		r.LogSource.EventTypes = append(r.LogSource.EventTypes, eq.Categories...)
		if eq.Correlation != nil {
			r.Correlation = eq.Correlation
			r.GroupBy = eq.Correlation.GroupBy
			if eq.Correlation.Timespan != "" {
				r.Timeframe = eq.Correlation.Timespan
			}
		}
	case "kuery", "lucene":
		n, diags := kuery.Parse(q, lang == "lucene", at)
		r.Diagnostics = append(r.Diagnostics, diags...)
		r.Root = n
		for _, st := range conjunctStages(q, n, at) {
			add(st)
		}
	case "esql":
		eq := esql.Parse(q, at)
		r.Diagnostics = append(r.Diagnostics, eq.Diags...)
		r.Root = eq.Root
		for _, st := range eq.Stages {
			add(st)
		}
		r.Computed = append(r.Computed, eq.Computed...)
		r.GroupBy = eq.GroupBy
		if eq.Timeframe != "" {
			r.Timeframe = eq.Timeframe
		}
		if len(r.LogSource.Indexes) == 0 {
			r.LogSource.Indexes = eq.Sources
		}
	default:
		code := "elastic/language/unknown"
		if lang == "" {
			code = "elastic/language/missing"
		}
		r.Diagnostics = append(r.Diagnostics, rule.Diagnostic{Severity: rule.Warning, Code: code, Pos: at,
			Message: fmt.Sprintf("query language %q is not read; the query is kept as text", lang)})
		add(rule.Stage{Kind: rule.StageOpaque, Label: "query", Text: r.Condition, Pos: at})
	}
}

// threshold: the rule alerts when events grouped by the threshold fields reach the value
// (and, with cardinality, when a field has that many distinct values).
func (f *file) threshold(r *rule.Rule, rt map[string]any) {
	th, _ := rt["threshold"].(map[string]any)
	if th == nil {
		r.Diagnostics = append(r.Diagnostics, f.errAt("rule", "type", "elastic/threshold/missing", "threshold rule without [rule.threshold]"))
		return
	}
	fields := strs(th, "field")
	val := str(th, "value")
	r.Settings = append(r.Settings, rule.Setting{Name: "threshold.field", Value: strings.Join(fields, ", ")},
		rule.Setting{Name: "threshold.value", Value: val})
	r.GroupBy = fields
	pos := rule.Pos{File: f.src.Path, Line: f.keyLine("rule.threshold", "")}
	agg := &rule.Aggregation{Func: "count", GroupBy: fields, Op: ">=", Value: val}
	text := fmt.Sprintf("count() by %s >= %s", strings.Join(fields, ", "), val)
	r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StageAggregation, Label: "threshold", Op: "count", Text: text, Aggregation: agg, Pos: pos})
	for _, c := range tables(th, "cardinality") {
		cf, cv := str(c, "field"), str(c, "value")
		r.Settings = append(r.Settings, rule.Setting{Name: "threshold.cardinality", Value: cf + " >= " + cv})
		agg := &rule.Aggregation{Func: "value_count", Field: cf, GroupBy: fields, Op: ">=", Value: cv}
		r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StageAggregation, Label: "cardinality", Op: "value_count",
			Text: fmt.Sprintf("dcount(%s) by %s >= %s", cf, strings.Join(fields, ", "), cv), Aggregation: agg, Pos: pos})
	}
}

// newTerms: the rule alerts on a value combination of the fields not seen since the
// history window start.
func (f *file) newTerms(r *rule.Rule, rt map[string]any) {
	nt, _ := rt["new_terms"].(map[string]any)
	if nt == nil {
		r.Diagnostics = append(r.Diagnostics, f.errAt("rule", "type", "elastic/new_terms/missing", "new_terms rule without [rule.new_terms]"))
		return
	}
	fields := strs(nt, "value")
	window := ""
	for _, h := range tables(nt, "history_window_start") {
		window = str(h, "value")
	}
	r.Settings = append(r.Settings, rule.Setting{Name: "new_terms.fields", Value: strings.Join(fields, ", ")})
	if window != "" {
		r.Settings = append(r.Settings, rule.Setting{Name: "new_terms.history_window_start", Value: window})
	}
	r.GroupBy = fields
	agg := &rule.Aggregation{Func: "new_terms", GroupBy: fields, Timespan: strings.TrimPrefix(window, "now-")}
	text := "new terms of " + strings.Join(fields, ", ")
	if window != "" {
		text += " since " + window
	}
	r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StageAggregation, Label: "new terms", Op: "new_terms",
		Text: text, Aggregation: agg, Pos: rule.Pos{File: f.src.Path, Line: f.keyLine("rule.new_terms", "")}})
}

// machineLearning: the rule's logic is an anomaly-detection job; it has no query and is
// one opaque stage naming the job.
func (f *file) machineLearning(r *rule.Rule, rt map[string]any) {
	jobs := strs(rt, "machine_learning_job_id")
	th := str(rt, "anomaly_threshold")
	r.Settings = append(r.Settings, rule.Setting{Name: "machine_learning_job_id", Value: strings.Join(jobs, ", ")})
	if th != "" {
		r.Settings = append(r.Settings, rule.Setting{Name: "anomaly_threshold", Value: th})
	}
	text := "machine learning job " + strings.Join(jobs, ", ")
	if th != "" {
		text += " with anomaly score >= " + th
	}
	// There is no condition to show as Stage 0: the job is Stage 1.
	r.Stages = append(r.Stages, rule.Stage{Index: max(len(r.Stages), 1), Kind: rule.StageOpaque, Label: "machine learning", Op: "machine_learning",
		Text: text, Pos: rule.Pos{File: f.src.Path, Line: f.keyLine("rule", "machine_learning_job_id")}})
}

// threat reads [[rule.threat]] (framework, tactic, technique, subtechnique).
func (f *file) threat(r *rule.Rule, rt map[string]any) {
	for _, t := range tables(rt, "threat") {
		if fw := str(t, "framework"); fw != "" && !strings.Contains(strings.ToUpper(fw), "ATT&CK") {
			continue
		}
		if ta, ok := t["tactic"].(map[string]any); ok {
			if name := tacticName(str(ta, "id"), str(ta, "name")); name != "" {
				r.Tactics = appendNew(r.Tactics, name)
			}
		}
		for _, te := range tables(t, "technique") {
			if id := strings.ToUpper(strings.TrimSpace(str(te, "id"))); id != "" {
				r.Techniques = appendNew(r.Techniques, id)
			}
			for _, st := range tables(te, "subtechnique") {
				if id := strings.ToUpper(strings.TrimSpace(str(st, "id"))); id != "" {
					r.Techniques = appendNew(r.Techniques, id)
				}
			}
		}
	}
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// tacticShort are the ATT&CK enterprise tactics' short names by id, as other parsers store them.
var tacticShort = map[string]string{
	"TA0043": "reconnaissance", "TA0042": "resource-development", "TA0001": "initial-access", "TA0002": "execution",
	"TA0003": "persistence", "TA0004": "privilege-escalation", "TA0005": "defense-evasion", "TA0006": "credential-access",
	"TA0007": "discovery", "TA0008": "lateral-movement", "TA0009": "collection", "TA0011": "command-and-control",
	"TA0010": "exfiltration", "TA0040": "impact",
}

// tacticName gives the short name of a tactic from its id, else from its display name
// ("Command and Control" → command-and-control).
func tacticName(id, name string) string {
	if s, ok := tacticShort[strings.ToUpper(strings.TrimSpace(id))]; ok {
		return s
	}
	return strings.ToLower(strings.Join(strings.Fields(name), "-"))
}

// hunt reads a [hunt] table: each query is a rule of its own.
func (f *file) hunt(ht map[string]any) []*rule.Rule {
	queries := strs(ht, "query")
	langs := strs(ht, "language")
	uuid := str(ht, "uuid")
	name := str(ht, "name")
	base := rule.Rule{
		Title:       name,
		Description: strings.TrimSpace(str(ht, "description")),
		Class:       rule.Hunting,
		Type:        "hunting",
		Authors:     strs(ht, "author"),
		References:  strs(ht, "references"),
	}
	base.LogSource.DataSources = strs(ht, "integration")
	for _, t := range strs(ht, "mitre") {
		t = strings.ToUpper(strings.TrimSpace(t))
		if strings.HasPrefix(t, "TA") {
			if n := tacticName(t, ""); n != "" {
				base.Tactics = appendNew(base.Tactics, n)
			}
			continue
		}
		base.Techniques = appendNew(base.Techniques, t)
	}
	if notes := strs(ht, "notes"); len(notes) > 0 {
		var b strings.Builder
		for _, n := range notes {
			b.WriteString("- " + strings.TrimSpace(n) + "\n")
		}
		base.Docs = append(base.Docs, rule.Doc{Title: "Notes", Markdown: b.String()})
	}
	line := f.keyLine("hunt", "")
	if len(queries) == 0 {
		r := base
		r.ID = uuid
		r.Source.Line = line
		r.Diagnostics = append(r.Diagnostics, f.errAt("hunt", "", "elastic/hunt/no-query", "hunt has no query"))
		return []*rule.Rule{&r}
	}
	pos := f.valuePositions("hunt", "query", len(queries))
	var out []*rule.Rule
	for i, q := range queries {
		r := base
		r.Authors = append([]string(nil), base.Authors...)
		r.Techniques = append([]string(nil), base.Techniques...)
		r.Tactics = append([]string(nil), base.Tactics...)
		r.ID = uuid
		if i > 0 && uuid != "" {
			r.ID = fmt.Sprintf("%s-%d", uuid, i+1)
		}
		if len(queries) > 1 {
			r.Title = fmt.Sprintf("%s (query %d)", name, i+1)
		}
		r.Source.Line = pos[i].Line
		lang := huntLang(langs, i, len(queries), q)
		r.Body, r.BodyLang = q, lang
		if lang == "sql" {
			// Osquery SQL runs on the endpoint, outside the rule languages ruledex reads.
			r.Condition = strings.TrimSpace(q)
			r.Stages = []rule.Stage{{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: r.Condition, Pos: pos[i]},
				{Index: 1, Kind: rule.StageOpaque, Label: "osquery", Op: "sql", Text: r.Condition, Pos: pos[i]}}
			r.Diagnostics = append(r.Diagnostics, rule.Diagnostic{Severity: rule.Warning, Code: "elastic/hunt/sql", Pos: pos[i],
				Message: "osquery SQL is kept as text"})
		} else {
			f.query(&r, lang, q, pos[i])
		}
		deriveLogSource(&r)
		out = append(out, &r)
	}
	return out
}

// huntLang names the language of query i: the file's language list when it gives one per
// query or only one, else what the query looks like (hunting files list ["ES|QL", "SQL"]
// for a mix of ES|QL and osquery queries).
func huntLang(langs []string, i, n int, q string) string {
	if len(langs) == 1 {
		return normLang(langs[0])
	}
	t := strings.ToLower(strings.TrimSpace(q))
	switch {
	case strings.HasPrefix(t, "from ") || strings.HasPrefix(t, "from\n"):
		return "esql"
	case strings.HasPrefix(t, "select") || strings.HasPrefix(t, "with "):
		return "sql"
	case strings.HasPrefix(t, "sequence") || strings.Contains(strings.SplitN(t, "\n", 2)[0], " where "):
		return "eql"
	}
	if len(langs) == n {
		return normLang(langs[i])
	}
	if len(langs) > 0 {
		return normLang(langs[0])
	}
	return ""
}

func normLang(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "es|ql", "esql":
		return "esql"
	case "eql":
		return "eql"
	case "kql", "kuery":
		return "kuery"
	case "lucene":
		return "lucene"
	case "sql", "osquery":
		return "sql"
	}
	return strings.ToLower(s)
}

// conjunctStages makes one stage per top-level conjunct of a Kibana or Lucene query, as
// for EQL, when the query's text splits at its top-level `and`s into as many parts as the
// tree has conjuncts; otherwise the query is one stage.
func conjunctStages(q string, n *rule.Node, at rule.Pos) []rule.Stage {
	whole := []rule.Stage{{Kind: rule.StageSelection, Label: "query", Text: strings.TrimSpace(q), Node: n, Pos: at}}
	if n == nil || n.Op == rule.OpOpaque {
		whole[0].Kind = rule.StageOpaque
		return whole
	}
	if n.Op != rule.OpAnd {
		return whole
	}
	parts := splitTopAnd(q)
	if len(parts) != len(n.Children) {
		return whole
	}
	var out []rule.Stage
	for i, c := range n.Children {
		txt := strings.TrimSpace(q[parts[i][0]:parts[i][1]])
		st := rule.Stage{Kind: rule.StageSelection, Label: shorten(strings.Join(strings.Fields(txt), " "), 60), Text: txt, Node: c, Pos: offsetPos(q, parts[i][0], at)}
		switch c.Op {
		case rule.OpNot:
			st.Negated = true
		case rule.OpOpaque:
			st.Kind = rule.StageOpaque
		}
		out = append(out, st)
	}
	return out
}

// splitTopAnd returns the [start, end) spans of q between its `and` / `AND` / `&&`
// operators outside parentheses, brackets, braces and quotes.
func splitTopAnd(q string) [][2]int {
	var out [][2]int
	depth, start := 0, 0
	isWord := func(c byte) bool {
		return c == '_' || c == '.' || c == '*' || c == '\\' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '"':
			for i++; i < len(q) && q[i] != '"'; i++ {
				if q[i] == '\\' {
					i++
				}
			}
		case '\\':
			i++
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case '&':
			if depth == 0 && i+1 < len(q) && q[i+1] == '&' {
				out = append(out, [2]int{start, i})
				start = i + 2
				i++
			}
		case 'a', 'A':
			if depth == 0 && i+3 <= len(q) && strings.EqualFold(q[i:i+3], "and") &&
				(i == 0 || !isWord(q[i-1])) && (i+3 == len(q) || !isWord(q[i+3])) {
				out = append(out, [2]int{start, i})
				start = i + 3
				i += 2
			}
		}
	}
	return append(out, [2]int{start, len(q)})
}

// offsetPos is the file position of byte off of q, q starting at at.
func offsetPos(q string, off int, at rule.Pos) rule.Pos {
	for off < len(q) && (q[off] == ' ' || q[off] == '\n' || q[off] == '\t' || q[off] == '\r') {
		off++
	}
	line := strings.Count(q[:off], "\n")
	col := off - (strings.LastIndexByte(q[:off], '\n') + 1) + 1
	if line == 0 && at.Col > 0 {
		col += at.Col - 1
	}
	if at.Line == 0 {
		return rule.Pos{File: at.File}
	}
	return rule.Pos{File: at.File, Line: at.Line + line, Col: col}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// filters reads [[rule.filters]], Kibana filters saved with the rule: Elasticsearch
// wildcard and exists queries, negated when meta.negate is set. Each is AND-ed with the
// query, as Kibana does, and shown as a stage of its own.
func (f *file) filters(r *rule.Rule, rt map[string]any) {
	for i, fl := range tables(rt, "filters") {
		meta, _ := fl["meta"].(map[string]any)
		if meta != nil && meta["disabled"] == true {
			continue
		}
		pos := rule.Pos{File: f.src.Path, Line: f.headerLine("rule.filters", i)}
		q, _ := fl["query"].(map[string]any)
		if q == nil {
			q = fl // older filters keep the query at the top level
		}
		var n *rule.Node
		var text string
		if wc, ok := q["wildcard"].(map[string]any); ok && len(wc) == 1 {
			for field, v := range wc {
				spec, _ := v.(map[string]any)
				val := str(spec, "value")
				if spec == nil {
					val = fmt.Sprint(v)
				}
				kind, value := wildcardQuery(val)
				var tr []string
				if spec == nil || spec["case_insensitive"] != true {
					tr = []string{rule.TCased}
				}
				if kind == rule.IsNotNull {
					tr = nil
				}
				p := &rule.Pred{Field: field, Kind: kind, Transforms: tr, Native: field + " wildcard", Pos: pos}
				if kind != rule.IsNotNull {
					p.Values = []rule.Value{value}
				}
				n = rule.Leaf(p)
				text = fmt.Sprintf("%s: wildcard %q", field, val)
			}
		} else if ex, ok := q["exists"].(map[string]any); ok && str(ex, "field") != "" {
			field := str(ex, "field")
			n = rule.Leaf(&rule.Pred{Field: field, Kind: rule.IsNotNull, Native: field + " exists", Pos: pos})
			text = field + ": exists"
		} else {
			r.Diagnostics = append(r.Diagnostics, rule.Diagnostic{Severity: rule.Warning, Code: "elastic/filter/unsupported", Pos: pos,
				Message: "Kibana filter is not a wildcard or exists query; kept as text"})
			n = &rule.Node{Op: rule.OpOpaque, Text: fmt.Sprint(q), Pos: pos}
			text = fmt.Sprint(q)
		}
		st := rule.Stage{Index: len(r.Stages), Kind: rule.StageSelection, Label: "filter " + shorten(text, 60), Text: text, Node: n, Pos: pos}
		if meta != nil && meta["negate"] == true {
			st.Node = rule.Not(n)
			st.Negated = true
			st.Label = "filter not " + shorten(text, 60)
		}
		if n.Op == rule.OpOpaque {
			st.Kind = rule.StageOpaque
		}
		r.Stages = append(r.Stages, st)
		if r.Root != nil {
			r.Root = rule.And(append(andChildren(r.Root), st.Node)...)
		}
	}
}

func andChildren(n *rule.Node) []*rule.Node {
	if n.Op == rule.OpAnd {
		return append([]*rule.Node(nil), n.Children...)
	}
	return []*rule.Node{n}
}

// wildcardQuery reads the pattern of an Elasticsearch wildcard query (`*` any run, `?`
// one character, backslash escapes the next character) as a kind and value.
func wildcardQuery(s string) (rule.Kind, rule.Value) {
	type seg struct {
		lit  string
		wild byte // '*' or '?' when not a literal
	}
	var segs []seg
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, seg{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			lit.WriteByte(s[i])
		case c == '*' || c == '?':
			flush()
			segs = append(segs, seg{wild: c})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	// Leading and trailing stars around one literal are the simple kinds.
	inner := segs
	lead, trail := false, false
	for len(inner) > 0 && inner[0].wild == '*' {
		inner, lead = inner[1:], true
	}
	for len(inner) > 0 && inner[len(inner)-1].wild == '*' {
		inner, trail = inner[:len(inner)-1], true
	}
	switch {
	case len(inner) == 0 && (lead || trail):
		return rule.IsNotNull, rule.Value{}
	case len(inner) == 0:
		return rule.Eq, rule.Value{S: ""}
	case len(inner) == 1 && inner[0].wild == 0:
		v := rule.Value{S: inner[0].lit}
		switch {
		case lead && trail:
			return rule.Match, v
		case lead:
			return rule.EndsW, v
		case trail:
			return rule.StartsW, v
		}
		return rule.Eq, v
	}
	// In ruledex glob syntax a backslash is literal unless it precedes *, ? or \, so only
	// those backslashes are doubled; literal * and ? are escaped.
	type out struct {
		c    byte
		wild bool
	}
	var cs []out
	for _, sg := range segs {
		if sg.wild != 0 {
			cs = append(cs, out{sg.wild, true})
			continue
		}
		for i := 0; i < len(sg.lit); i++ {
			cs = append(cs, out{sg.lit[i], false})
		}
	}
	var b strings.Builder
	for i, c := range cs {
		switch {
		case c.wild:
			b.WriteByte(c.c)
		case c.c == '*' || c.c == '?':
			b.WriteByte('\\')
			b.WriteByte(c.c)
		case c.c == '\\' && i+1 < len(cs) && (cs[i+1].c == '*' || cs[i+1].c == '?' || cs[i+1].c == '\\'):
			b.WriteString(`\\`)
		default:
			b.WriteByte(c.c)
		}
	}
	return rule.Glob, rule.Value{S: b.String(), Wild: true}
}

// headerLine returns the line of the n-th (from 0) `[[table]]` header, or 1.
func (f *file) headerLine(table string, n int) int {
	seen := 0
	for i, start := range f.lines {
		end := len(f.text)
		if i+1 < len(f.lines) {
			end = f.lines[i+1]
		}
		if strings.TrimSpace(f.text[start:end]) == "[["+table+"]]" {
			if seen == n {
				return i + 1
			}
			seen++
		}
	}
	return 1
}
