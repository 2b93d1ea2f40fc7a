package spl

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// ctx carries one search's expansion, position mapping and diagnostics.
type ctx struct {
	exp          *expansion
	loc          *locator
	file         string
	diags        []rule.Diagnostic
	warned       map[string]bool
	textOverride func(off, end int) string
}

// pos maps an offset of the expanded search to the file.
func (c *ctx) pos(off int) rule.Pos {
	orig, _ := c.exp.origin(off)
	return c.loc.pos(orig)
}

// text is the expanded search between two offsets.
func (c *ctx) text(off, end int) string {
	if c.textOverride != nil {
		return c.textOverride(off, end)
	}
	if off < 0 {
		off = 0
	}
	if end > len(c.exp.text) {
		end = len(c.exp.text)
	}
	if off >= end {
		return ""
	}
	return strings.TrimSpace(c.exp.text[off:end])
}

func (c *ctx) warn(code string, off int, msg string) {
	key := code + "\x00" + msg
	if c.warned == nil {
		c.warned = map[string]bool{}
	}
	if c.warned[key] {
		return
	}
	c.warned[key] = true
	c.diags = append(c.diags, rule.Diagnostic{Severity: rule.Warning, Code: code, Pos: c.pos(off), Message: msg})
}

// opaque keeps source text the parser did not model as an opaque node; a non-empty code
// also reports it.
func (c *ctx) opaque(off, end int, code string) *rule.Node {
	text := c.text(off, end)
	if code != "" {
		c.warn(code, off, "kept as text, not modeled: "+clip(text))
	}
	return &rule.Node{Op: rule.OpOpaque, Text: text, Pos: c.pos(off)}
}

func clip(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// aggOut describes one aggregate output column (count, dc(user), an alias).
type aggOut struct{ fn, field string }

// pipeline turns the commands of one expanded search into stages.
type pipeline struct {
	*ctx
	stages     []rule.Stage
	filters    []*rule.Node
	outputs    []string
	aggNames   map[string]aggOut
	groupBy    []string
	lastBy     []string
	dataModels []string
	// span is the time bucket of the aggregations that follow (bin/bucket span=, by _time span=).
	span      string
	timeframe string

	// Column tracking (columns.go).
	renames      []renameRule
	computed     map[string]string // computed column -> definition
	computedList []rule.Computed
	aggAt        int             // 1 + index in stages of the last aggregating command, 0 before any
	byField      map[string]bool // its group-by fields, original names
	rowLevel     bool            // rows were combined or dropped (join, dedup, head...)
	unknownCols  bool            // a lookup or spath added columns the search does not name
	base         int             // stages shown before the pipeline's own (the macro list)
}

// knownCommands are SPL commands the parser understands as not filtering events (or
// as filtering in ways it models elsewhere); anything else becomes an opaque stage.
var knownCommands = map[string]bool{
	"abstract": true, "accum": true, "addcoltotals": true, "addinfo": true, "addtotals": true,
	"analyzefields": true, "anomalies": true, "anomalydetection": true, "append": true,
	"appendcols": true, "appendpipe": true, "apply": true, "arules": true, "associate": true,
	"autoregress": true, "bin": true, "bucket": true, "bucketdir": true, "chart": true,
	"cluster": true, "collect": true, "concurrency": true, "contingency": true, "convert": true,
	"correlate": true, "datamodel": true, "dbinspect": true, "dedup": true, "delta": true,
	"eval": true, "eventcount": true, "eventstats": true, "extract": true, "kv": true,
	"fieldformat": true, "fields": true, "fieldsummary": true, "filldown": true, "fillnull": true,
	"findtypes": true, "fit": true, "foreach": true, "format": true, "from": true, "gauge": true,
	"geom": true, "geostats": true, "head": true, "highlight": true, "history": true,
	"inputcsv": true, "inputlookup": true, "iplocation": true, "join": true, "kmeans": true,
	"loadjob": true, "localize": true, "lookup": true, "makecontinuous": true, "makemv": true,
	"makeresults": true, "map": true, "mcollect": true, "metadata": true, "metasearch": true,
	"mstats": true, "multikv": true, "multisearch": true, "mvcombine": true, "mvexpand": true,
	"nomv": true, "outlier": true, "outputcsv": true, "outputlookup": true, "outputtext": true,
	"predict": true, "rangemap": true, "rare": true, "regex": true, "reltime": true, "rename": true,
	"replace": true, "require": true, "rest": true, "return": true, "reverse": true, "rex": true,
	"savedsearch": true, "script": true, "search": true, "sendemail": true, "set": true,
	"setfields": true, "sichart": true, "sirare": true, "sistats": true, "sitimechart": true,
	"sitop": true, "sort": true, "spath": true, "stats": true, "strcat": true, "streamstats": true,
	"table": true, "tags": true, "tail": true, "timechart": true, "timewrap": true, "top": true,
	"transaction": true, "transpose": true, "trendline": true, "tscollect": true, "tstats": true,
	"typeahead": true, "typer": true, "union": true, "uniq": true, "untable": true, "where": true,
	"x11": true, "xmlkv": true, "xmlunescape": true, "xpath": true, "xyseries": true,
	"makejson": true, "summary": true, "score": true, "cofilter": true, "selfjoin": true,
	"erex": true, "iconify": true, "input": true, "walklex": true, "pivot": true, "ldapsearch": true,
	"ldapfilter": true, "ldapgroup": true, "dnslookup": true, "mvzip": true, "stats2": true,
}

// aggregatingCommands compute aggregate columns (stats-like syntax).
var aggregatingCommands = map[string]bool{
	"stats": true, "eventstats": true, "streamstats": true, "chart": true, "timechart": true,
	"sistats": true, "geostats": true, "mstats": true,
}

// run processes the expanded search.
func (pl *pipeline) run() { pl.runRange(0, len(pl.exp.text)) }

// runRange processes the commands in [lo,hi) of the expanded search (all of it, or a
// subsearch's inside).
func (pl *pipeline) runRange(lo, hi int) {
	text := pl.exp.text
	segs := splitPipes(text[lo:hi])
	generating := false
	for si, seg := range segs {
		a, b := lo+seg.Start, lo+seg.End
		for a < b && isSpace(text[a]) {
			a++
		}
		for b > a && isSpace(text[b-1]) {
			b--
		}
		if a == b {
			if si == 0 && len(segs) > 1 {
				generating = true
			} else if si < len(segs)-1 || si > 0 {
				pl.warn("spl/pipeline/empty-command", a, "empty command between pipes")
			}
			continue
		}
		toks := lex(text[a:b], a, searchMode)
		if len(toks) == 0 {
			continue // only a comment
		}
		if si == 0 && !generating {
			pl.searchCmd("search", toks, toks, a, b, true)
			continue
		}
		pl.command(toks, a, b)
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// stage starts a stage for the command at [a,b) of the expanded search. A command that
// lies wholly inside one macro's expansion shows the expansion and names the macro.
func (pl *pipeline) stage(op string, a, b int) rule.Stage {
	st := rule.Stage{Kind: rule.StagePipeline, Label: op, Op: op, Pos: pl.pos(a)}
	o1, r1 := pl.exp.origin(a)
	_, r2 := pl.exp.origin(b - 1)
	if r1 >= 0 && r1 == r2 {
		st.Text = strings.TrimSpace(pl.exp.text[a:b])
		st.Label = op + " (macro `" + pl.exp.refs[r1].Call + "`)"
		return st
	}
	o2 := pl.exp.originEnd(b)
	if o2 < o1 {
		o2 = o1
	}
	st.Text = strings.TrimSpace(pl.exp.orig[o1:o2])
	return st
}

func (pl *pipeline) add(st rule.Stage) {
	st.Index = len(pl.stages) + 1 // stage 0 (the condition) is prepended later
	pl.stages = append(pl.stages, st)
}

func (pl *pipeline) command(toks []token, a, b int) {
	first := toks[0]
	if first.kind == tMacro {
		// An undefined macro standing for a whole command: nothing to model.
		st := pl.stage("macro", a, b)
		st.Kind = rule.StageOpaque
		st.Label = first.text
		pl.add(st)
		return
	}
	if first.kind != tWord {
		st := pl.stage("?", a, b)
		st.Kind = rule.StageOpaque
		pl.warn("spl/command/unexpected", first.off, "command does not start with a name: "+clip(st.Text))
		pl.add(st)
		return
	}
	name := strings.ToLower(first.text)
	args := toks[1:]
	switch name {
	case "search":
		pl.searchCmd(name, toks, args, a, b, false)
	case "where":
		pl.whereCmd(toks, a, b)
	case "tstats":
		pl.tstatsCmd(args, a, b)
	case "regex":
		pl.regexCmd(args, a, b)
	case "eval":
		pl.evalCmd(first, a, b)
	case "rename":
		pl.renameCmd(args, a, b)
	case "table", "fields":
		pl.fieldsCmd(name, args, a, b)
	case "datamodel", "from":
		pl.datamodelCmd(name, args, a, b)
	case "join":
		pl.joinCmd(args, a, b)
	default:
		if aggregatingCommands[name] {
			pl.statsCmd(name, args, a, b)
			return
		}
		if name == "bin" || name == "bucket" {
			if v := optValue(args, "span"); v != "" {
				pl.span = v
			}
		}
		st := pl.stage(name, a, b)
		if !knownCommands[name] {
			st.Kind = rule.StageOpaque
			pl.warn("spl/command/unknown", first.off, "unknown command "+name+", kept as text")
		}
		pl.scanSubsearches(args)
		switch name {
		case "rex":
			pl.rexColumns(args, a, b)
		case "lookup":
			pl.lookupColumns(args, a, b)
		case "inputlookup", "inputcsv", "rest", "makeresults", "ldapsearch", "metadata":
			pl.unknownCols = true // rows that are not events
		case "spath":
			if v := optValue(args, "output"); v != "" {
				pl.compute(v, pl.text(a, b))
			} else {
				pl.unknownCols = true
			}
		case "iplocation":
			prefix := optValue(args, "prefix")
			for _, f := range iplocationFields {
				pl.compute(prefix+f, pl.text(a, b))
			}
		case "strcat":
			if len(args) > 0 {
				pl.compute(args[len(args)-1].val(), pl.text(a, b))
			}
		}
		if rowCommands[name] {
			pl.rowLevel = true
		}
		pl.add(st)
	}
}

// searchCmd handles the implicit leading search and explicit `search` commands.
func (pl *pipeline) searchCmd(name string, all, args []token, a, b int, implicit bool) {
	st := pl.stage(name, a, b)
	if implicit {
		st.Label = "search"
	}
	if !implicit && len(args) > 0 && args[0].is("search") {
		// `search `x_filter`` expands to "search search *": the macro's own command
		// word is not a search term.
		if _, ref := pl.exp.origin(args[0].off); ref >= 0 {
			args = args[1:]
		}
	}
	node := pl.parseSearch(args)
	node, agg := pl.splitAggregates(node)
	if agg != nil {
		st.Kind = rule.StageAggregation
		st.Aggregation = agg
	}
	st.Node = node
	pl.filter(&st, node)
	pl.add(st)
}

// splitAggregates moves top-level comparisons of aggregate columns (count > 5 after a
// stats) out of the predicates and into the stage's aggregation.
func (pl *pipeline) splitAggregates(n *rule.Node) (*rule.Node, *rule.Aggregation) {
	if n == nil || len(pl.aggNames) == 0 {
		return n, nil
	}
	conj := []*rule.Node{n}
	if n.Op == rule.OpAnd {
		conj = n.Children
	}
	var keep []*rule.Node
	var agg *rule.Aggregation
	for _, c := range conj {
		if c.Op == rule.OpPred && agg == nil {
			p := c.Pred
			if out, ok := pl.aggNames[p.Field]; ok && len(p.Values) == 1 && p.Values[0].Type == rule.Number {
				if op := kindOp(p.Kind); op != "" {
					agg = &rule.Aggregation{Func: out.fn, Field: out.field, GroupBy: pl.lastBy, Op: op, Value: p.Values[0].S, Timespan: pl.span}
					if pl.timeframe == "" {
						pl.timeframe = pl.span
					}
					continue
				}
			}
		}
		keep = append(keep, c)
	}
	return and(keep...), agg
}

func kindOp(k rule.Kind) string {
	switch k {
	case rule.Gt:
		return ">"
	case rule.Ge:
		return ">="
	case rule.Lt:
		return "<"
	case rule.Le:
		return "<="
	case rule.Eq:
		return "=="
	case rule.Ne:
		return "!="
	}
	return ""
}

func (pl *pipeline) whereCmd(toks []token, a, b int) {
	st := pl.stage("where", a, b)
	argStart := toks[0].end
	etoks := lex(pl.exp.text[argStart:b], argStart, evalMode)
	e, rest := pl.parseEval(etoks)
	node := pl.lowerEval(e)
	if rest != nil {
		pl.warn("spl/where/trailing", rest.off, "text after the expression kept opaque: "+clip(pl.text(rest.off, rest.end)))
		node = and(node, &rule.Node{Op: rule.OpOpaque, Text: pl.text(rest.off, rest.end), Pos: pl.pos(rest.off)})
	}
	node, agg := pl.splitAggregates(node)
	if agg != nil {
		st.Kind = rule.StageAggregation
		st.Aggregation = agg
	}
	st.Node = node
	pl.filter(&st, node)
	pl.add(st)
}

func (pl *pipeline) regexCmd(args []token, a, b int) {
	st := pl.stage("regex", a, b)
	field, neg := "_raw", false
	var re *token
	for i := 0; i < len(args); i++ {
		t := args[i]
		if t.kind == tWord && i+2 < len(args) && args[i+1].kind == tOp && (args[i+1].text == "=" || args[i+1].text == "!=") {
			field, neg = t.val(), args[i+1].text == "!="
			re = &args[i+2]
			break
		}
		if t.kind == tString {
			re = &args[i]
			break
		}
	}
	if re == nil {
		st.Node = pl.opaque(a, b, "spl/regex/unexpected")
		pl.filter(&st, st.Node)
		pl.add(st)
		return
	}
	ts := []string{rule.TCased}
	if strings.HasPrefix(re.val(), "(?i)") {
		ts = append(ts, rule.TIgnoreCase)
	}
	n := rule.Leaf(&rule.Pred{Field: field, Kind: rule.Regex, Values: []rule.Value{{S: re.val()}}, Transforms: ts,
		Native: pl.text(args[0].off, re.end), Pos: pl.pos(args[0].off)})
	if neg {
		n = rule.Not(n)
	}
	st.Node = n
	pl.filter(&st, n)
	pl.add(st)
}

// aggFuncs reads stats-style function lists: `count min(_time) as firstTime dc(x)` up to
// a `by` (returned as the index of the token after it, or -1), skipping name=value
// options. stop names extra words that end the list (tstats: from, where).
func aggFuncs(args []token, stop ...string) (outs []string, funcs []aggOut, byAt int, next int) {
	byAt = -1
	i := 0
	for i < len(args) {
		t := args[i]
		if t.is("by") || t.is("groupby") {
			return outs, funcs, i + 1, i + 1
		}
		for _, s := range stop {
			if t.is(s) {
				return outs, funcs, -1, i
			}
		}
		if t.kind == tWord && i+1 < len(args) && args[i+1].kind == tOp {
			i += 3 // name=value option
			continue
		}
		if t.kind != tWord {
			i++
			continue
		}
		fn := strings.ToLower(t.text)
		name := t.text
		field := ""
		i++
		if i < len(args) && args[i].kind == tLParen {
			depth := 0
			start := i
			for ; i < len(args); i++ {
				if args[i].kind == tLParen {
					depth++
				} else if args[i].kind == tRParen {
					depth--
					if depth == 0 {
						i++
						break
					}
				}
			}
			var parts []string
			for _, x := range args[start+1 : max(start+1, i-1)] {
				parts = append(parts, x.text)
			}
			field = strings.Join(parts, "")
			name = t.text + "(" + field + ")"
		}
		if i+1 < len(args) && args[i].is("as") && args[i+1].kind != tEOF {
			name = args[i+1].val()
			i += 2
		}
		outs = append(outs, name)
		funcs = append(funcs, aggOut{fn: fn, field: field})
	}
	return outs, funcs, byAt, i
}

// byFields reads group-by fields, skipping options such as span=1h.
func byFields(args []token) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		t := args[i]
		if (t.kind == tWord || t.kind == tString) && i+1 < len(args) && args[i+1].kind == tOp {
			i += 2
			continue
		}
		if t.kind == tWord || t.kind == tString {
			out = append(out, t.val())
		}
	}
	return out
}

// primary picks the aggregation worth naming: the first that is not the ubiquitous
// min/max(_time) bookkeeping.
func primary(funcs []aggOut) aggOut {
	for _, f := range funcs {
		if f.field == "_time" && (f.fn == "min" || f.fn == "max" || f.fn == "earliest" || f.fn == "latest") {
			continue
		}
		return f
	}
	if len(funcs) > 0 {
		return funcs[0]
	}
	return aggOut{}
}

func (pl *pipeline) recordAgg(name string, outs []string, funcs []aggOut, by []string) *rule.Aggregation {
	if pl.aggNames == nil {
		pl.aggNames = map[string]aggOut{}
	}
	for i, o := range outs {
		pl.aggNames[o] = funcs[i]
	}
	pl.lastBy = by
	p := primary(funcs)
	switch name {
	case "stats", "tstats", "chart", "timechart", "sistats", "mstats":
		if pl.groupBy == nil {
			pl.groupBy = by
		}
		pl.outputs = append(append([]string(nil), outs...), by...)
	default:
		pl.addOutputs(outs...)
	}
	return &rule.Aggregation{Func: p.fn, Field: p.field, GroupBy: by, Timespan: pl.span}
}

// optValue finds `name=value` among a command's arguments.
func optValue(args []token, name string) string {
	for i := 0; i+2 < len(args); i++ {
		if args[i].is(name) && args[i+1].kind == tOp && args[i+1].text == "=" {
			return args[i+2].val()
		}
	}
	return ""
}

func (pl *pipeline) statsCmd(name string, args []token, a, b int) {
	st := pl.stage(name, a, b)
	outs, funcs, byAt, _ := aggFuncs(args)
	var by []string
	if byAt >= 0 {
		by = byFields(args[byAt:])
	}
	if v := optValue(args, "span"); v != "" {
		pl.span = v
	}
	st.Aggregation = pl.recordAgg(name, outs, funcs, by)
	if name == "eventstats" || name == "streamstats" {
		// Events stay; each gains the aggregate columns.
		for i, o := range outs {
			pl.compute(o, aggDef(funcs[i], by))
		}
	} else {
		pl.startAggregation(by, outs, funcs)
	}
	pl.add(st)
}

func (pl *pipeline) tstatsCmd(args []token, a, b int) {
	st := pl.stage("tstats", a, b)
	outs, funcs, byAt, i := aggFuncs(args, "from", "where")
	var node *rule.Node
	for byAt < 0 && i < len(args) {
		t := args[i]
		switch {
		case t.is("from"):
			i++
			// from datamodel=X | from datamodel X | from datamodel:X
			if i < len(args) && args[i].kind == tWord && strings.HasPrefix(strings.ToLower(args[i].text), "datamodel") {
				w := args[i].text
				i++
				if rest := strings.TrimLeft(w[len("datamodel"):], ":"); rest != "" {
					pl.addDataModel(rest)
				} else {
					if i < len(args) && args[i].kind == tOp {
						i++
					}
					if i < len(args) && (args[i].kind == tWord || args[i].kind == tString) {
						pl.addDataModel(args[i].val())
						i++
					}
				}
			} else if i < len(args) {
				i++ // from <namespace>
			}
		case t.is("where"):
			j := i + 1
			depth := 0
			for ; j < len(args); j++ {
				switch args[j].kind {
				case tLParen:
					depth++
				case tRParen:
					depth--
				}
				if depth <= 0 && (args[j].is("by") || args[j].is("groupby")) {
					break
				}
			}
			node = pl.parseSearch(args[i+1 : j])
			i = j
			if j < len(args) {
				byAt = j + 1
			}
		case t.is("by") || t.is("groupby"):
			byAt = i + 1
		case t.kind == tWord && i+2 < len(args) && args[i+1].kind == tOp:
			if strings.EqualFold(t.text, "datamodel") {
				pl.addDataModel(args[i+2].val())
			}
			i += 3
		default:
			i++
		}
	}
	var by []string
	if byAt >= 0 && byAt <= len(args) {
		by = byFields(args[byAt:])
		if v := optValue(args[byAt:], "span"); v != "" {
			pl.span = v
		}
	}
	st.Aggregation = pl.recordAgg("tstats", outs, funcs, by)
	st.Node = node
	// tstats filters events before it groups them.
	if node != nil {
		pl.filters = append(pl.filters, node)
	}
	pl.startAggregation(by, outs, funcs)
	pl.add(st)
}

// addDataModel records "Model.Dataset" and the dataset name alone, the context CIM
// field names are looked up in.
func (pl *pipeline) addDataModel(dm string) {
	dm = strings.Trim(dm, `"' `)
	if dm == "" {
		return
	}
	names := []string{dm}
	if i := strings.IndexByte(dm, '.'); i > 0 && i < len(dm)-1 {
		ds := dm[i+1:]
		if j := strings.IndexByte(ds, '.'); j > 0 {
			ds = ds[:j]
		}
		names = append(names, ds)
	}
	for _, n := range names {
		dup := false
		for _, have := range pl.dataModels {
			dup = dup || have == n
		}
		if !dup {
			pl.dataModels = append(pl.dataModels, n)
		}
	}
}

func (pl *pipeline) datamodelCmd(name string, args []token, a, b int) {
	st := pl.stage(name, a, b)
	switch name {
	case "datamodel": // | datamodel Endpoint Processes search
		var words []string
		for _, t := range args {
			if t.kind == tWord && !t.is("search") && !t.is("flat") && !t.is("acceleration_search") {
				words = append(words, t.val())
			}
			if len(words) == 2 {
				break
			}
		}
		if len(words) == 2 {
			pl.addDataModel(words[0] + "." + words[1])
		} else if len(words) == 1 {
			pl.addDataModel(words[0])
		}
	case "from": // | from datamodel:Endpoint.Processes, | from datamodel Risk.All_Risk
		for i, t := range args {
			lw := strings.ToLower(t.text)
			if t.kind == tWord && strings.HasPrefix(lw, "datamodel") {
				if rest := strings.TrimLeft(t.text[len("datamodel"):], ":"); rest != "" {
					pl.addDataModel(rest)
				} else if i+1 < len(args) {
					pl.addDataModel(args[i+1].val())
				}
				break
			}
		}
	}
	pl.add(st)
}

// scanSubsearches records data models named by tstats inside subsearches
// (`append [| tstats ... from datamodel=X ...]`); their predicates stay opaque.
func (pl *pipeline) scanSubsearches(args []token) {
	for _, t := range args {
		if t.kind != tSubsearch {
			continue
		}
		inner := lex(strings.TrimSuffix(strings.TrimPrefix(t.text, "["), "]"), t.off+1, searchMode)
		for i := 0; i+2 < len(inner); i++ {
			if inner[i].is("datamodel") && inner[i+1].kind == tOp {
				pl.addDataModel(inner[i+2].val())
			}
		}
	}
}

// joinCmd: an inner join (the default type) keeps only events whose key the subsearch
// also returns, so the subsearch's filters hold for the rule's results too; they join
// the stage's node. Outer and left joins filter nothing.
func (pl *pipeline) joinCmd(args []token, a, b int) {
	st := pl.stage("join", a, b)
	inner := true
	var sub *token
	for i := range args {
		t := args[i]
		if t.is("type") && i+2 < len(args) && args[i+1].kind == tOp {
			v := strings.ToLower(args[i+2].val())
			inner = v == "inner"
		}
		if t.kind == tSubsearch {
			sub = &args[i]
		}
	}
	if sub != nil {
		sp := &pipeline{ctx: pl.ctx}
		lo, hi := sub.off+1, sub.end
		if hi > lo && pl.exp.text[hi-1] == ']' {
			hi--
		}
		sp.runRange(lo, hi)
		for _, dm := range sp.dataModels {
			pl.addDataModel(dm)
		}
		if inner {
			// The subsearch's filters hold for the joined rows, not for the events the
			// main search reads: they stay in the join stage.
			st.Node = and(sp.filters...)
		}
	}
	pl.rowLevel = true
	pl.add(st)
}

func (pl *pipeline) evalCmd(first token, a, b int) {
	st := pl.stage("eval", a, b)
	toks := lex(pl.exp.text[first.end:b], first.end, evalMode)
	pl.evalColumns(toks)
	depth := 0
	for i, t := range toks {
		switch t.kind {
		case tLParen:
			depth++
		case tRParen:
			depth--
		case tWord, tQField:
			if depth == 0 && i+1 < len(toks) && toks[i+1].kind == tOp && toks[i+1].text == "=" &&
				(i == 0 || toks[i-1].kind == tComma) {
				pl.addOutputs(t.val())
			}
		}
	}
	pl.add(st)
}

func (pl *pipeline) addOutputs(names ...string) {
	for _, n := range names {
		dup := false
		for _, have := range pl.outputs {
			dup = dup || have == n
		}
		if !dup {
			pl.outputs = append(pl.outputs, n)
		}
	}
}

func (pl *pipeline) renameCmd(args []token, a, b int) {
	st := pl.stage("rename", a, b)
	args = joinAdjacent(args)
	for i := 0; i+2 < len(args); i++ {
		if args[i+1].is("as") {
			pl.rename(args[i].val(), args[i+2].val())
			pl.renames = append(pl.renames, renameRule{from: pl.resolve(args[i].val()), to: args[i+2].val()})
			i += 2
		}
	}
	pl.add(st)
}

// rename applies `rename from AS to` to the tracked outputs; one `*` in each side is a
// wildcard (drop_dm_object_name's `Processes.* AS *`).
func (pl *pipeline) rename(from, to string) {
	fi, ti := strings.IndexByte(from, '*'), strings.IndexByte(to, '*')
	for k, o := range pl.outputs {
		if fi < 0 {
			if o == from {
				pl.outputs[k] = to
			}
			continue
		}
		pre, suf := from[:fi], from[fi+1:]
		if strings.HasPrefix(o, pre) && strings.HasSuffix(o, suf) && len(o) >= len(pre)+len(suf) {
			mid := o[len(pre) : len(o)-len(suf)]
			if ti >= 0 {
				pl.outputs[k] = to[:ti] + mid + to[ti+1:]
			} else {
				pl.outputs[k] = to
			}
		}
	}
}

func (pl *pipeline) fieldsCmd(name string, args []token, a, b int) {
	st := pl.stage(name, a, b)
	remove := len(args) > 0 && args[0].kind == tWord && args[0].text == "-"
	var names []string
	for _, t := range args {
		if (t.kind == tWord || t.kind == tString) && t.text != "-" && t.text != "+" {
			names = append(names, t.val())
		}
	}
	if remove {
		var keep []string
		for _, o := range pl.outputs {
			drop := false
			for _, n := range names {
				drop = drop || o == n
			}
			if !drop {
				keep = append(keep, o)
			}
		}
		pl.outputs = keep
	} else if len(names) > 0 {
		pl.outputs = names
	}
	pl.add(st)
}

// macroStage lists the macro calls written in the search and what they expand to.
func macroStage(e *expansion) (*rule.Stage, []rule.Param) {
	var lines []string
	var params []rule.Param
	seen := map[string]bool{}
	for _, r := range e.refs {
		if r.Depth != 0 || seen[r.Call] {
			continue
		}
		seen[r.Call] = true
		exp := r.Expansion
		switch r.Status {
		case RefUndefined:
			exp = "(undefined)"
		case RefCycle:
			exp = "(recursive, not expanded)"
		case RefTooDeep:
			exp = "(too deeply nested, not expanded)"
		}
		lines = append(lines, fmt.Sprintf("`%s` = %s", r.Call, exp))
		params = append(params, rule.Param{Name: "`" + r.Call + "`", Value: exp})
	}
	if len(lines) == 0 {
		return nil, nil
	}
	return &rule.Stage{Kind: rule.StageParameter, Label: "macros", Op: "macros", Text: strings.Join(lines, "\n")}, params
}
