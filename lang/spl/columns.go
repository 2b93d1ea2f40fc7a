package spl

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Which filters are event filters. A search reads events; commands after the first
// change what a row is:
//
//   - stats, tstats and their kin turn events into one row per group. A later filter
//     on a group-by field is still a test on the events' own values (a group passes
//     exactly when its key does), so it joins Root under the field's original name.
//     A filter on anything else (an aggregate, a value computed before) keeps only
//     some groups: that is a threshold, and the aggregating stage becomes an
//     aggregation. Without such a filter the stats only groups, the stage stays a
//     pipeline stage and the rule remains an event filter.
//   - eval, rex, lookup, spath, iplocation and the stats family compute columns. They
//     are listed in Rule.Computed; a filter on one stays in its stage. When that
//     filter comes before any aggregation, Root gets one opaque node standing for it,
//     so Root never passes for the rule's whole logic.
//   - rename (and drop_dm_object_name, which expands to `rename Obj.* AS *`) only
//     renames: predicates on a renamed field are written back to the original name
//     (process_name after `rename Processes.* AS *` is Processes.process_name).
//   - join, append, dedup, head, transaction... combine or drop rows: filters after
//     them are not event filters either.

// renameRule is one `rename from AS to`; one `*` on each side is a wildcard.
type renameRule struct{ from, to string }

// rowCommands change which rows exist without aggregating them.
var rowCommands = map[string]bool{
	"dedup": true, "head": true, "tail": true, "transaction": true, "append": true, "appendpipe": true,
	"appendcols": true, "union": true, "map": true, "multisearch": true, "join": true, "selfjoin": true,
	"sort": false, "uniq": true, "xyseries": true, "untable": true, "transpose": true, "top": true, "rare": true,
	"anomalydetection": true, "outlier": true, "apply": true, "fit": true, "predict": true,
}

// resolve maps a field name as a later command sees it back to the name the events
// carry, undoing renames from the last to the first.
func (pl *pipeline) resolve(name string) string {
	if _, ok := pl.computed[name]; ok {
		return name
	}
	for i := len(pl.renames) - 1; i >= 0; i-- {
		r := pl.renames[i]
		ti := strings.IndexByte(r.to, '*')
		fi := strings.IndexByte(r.from, '*')
		if ti < 0 {
			if name == r.to && fi < 0 {
				name = r.from
			}
			continue
		}
		pre, suf := r.to[:ti], r.to[ti+1:]
		if len(name) < len(pre)+len(suf) || !strings.HasPrefix(name, pre) || !strings.HasSuffix(name, suf) {
			continue
		}
		mid := name[len(pre) : len(name)-len(suf)]
		if fi >= 0 {
			name = r.from[:fi] + mid + r.from[fi+1:]
		}
	}
	return name
}

// compute records a column a command derives.
func (pl *pipeline) compute(name, def string) {
	name = strings.TrimSpace(name)
	if name == "" {
		return
	}
	if pl.computed == nil {
		pl.computed = map[string]string{}
	}
	pl.computed[name] = def
	pl.computedList = append(pl.computedList, rule.Computed{Name: name, Definition: strings.Join(strings.Fields(def), " "), Stage: len(pl.stages) + 1 + pl.base})
}

// filter places a filtering stage's node: every conjunct stays in the stage; those that
// test events join Root (see the comment at the top of this file).
func (pl *pipeline) filter(st *rule.Stage, node *rule.Node) {
	if node == nil {
		return
	}
	rule.Walk(node, func(n *rule.Node, _ bool) bool {
		if n.Op == rule.OpPred && n.Pred != nil {
			if n.Pred.Field != "" {
				n.Pred.Field = pl.resolve(n.Pred.Field)
			}
			if n.Pred.Kind == rule.FieldRef {
				for i := range n.Pred.Values {
					n.Pred.Values[i].S = pl.resolve(n.Pred.Values[i].S)
				}
			}
		}
		return true
	})
	conj := []*rule.Node{node}
	if node.Op == rule.OpAnd {
		conj = node.Children
	}
	var stand []string
	needStand := false
	for _, c := range conj {
		switch pl.classify(c) {
		case condEvent:
			pl.filters = append(pl.filters, c)
		case condComputed:
			stand = append(stand, pl.columnsOf(c)...)
			needStand = true
		case condRows:
			if pl.aggAt > 0 {
				pl.stages[pl.aggAt-1].Kind = rule.StageAggregation
			} else {
				stand = append(stand, pl.columnsOf(c)...)
				needStand = true
			}
		}
	}
	if needStand {
		text := fmt.Sprintf("filter on computed columns or rows (stage %d)", len(pl.stages)+1+pl.base)
		if cs := dedupeStrings(stand); len(cs) > 0 {
			text = fmt.Sprintf("filter on computed column %s (stage %d)", strings.Join(cs, ", "), len(pl.stages)+1+pl.base)
		}
		pl.filters = append(pl.filters, &rule.Node{Op: rule.OpOpaque, Text: text, Pos: node.Pos})
	}
}

type condClass int

const (
	condEvent    condClass = iota // a test on the events' own fields
	condComputed                  // reads a column the search computed, before any aggregation
	condRows                      // tests aggregated or recombined rows
)

func (pl *pipeline) classify(c *rule.Node) condClass {
	fields, opaque := nodeFields(c)
	computed := false
	for _, f := range fields {
		if f == "" {
			continue
		}
		if _, ok := pl.computed[f]; ok {
			computed = true
		}
	}
	if pl.aggAt > 0 {
		if computed || opaque || pl.unknownCols {
			return condRows
		}
		for _, f := range fields {
			if f == "" || !pl.byField[f] {
				return condRows
			}
		}
		if pl.rowLevel {
			return condRows
		}
		return condEvent
	}
	if computed || pl.unknownCols {
		return condComputed
	}
	if pl.rowLevel {
		return condRows
	}
	return condEvent
}

// nodeFields lists the fields a tree reads (field references included) and whether it
// holds an opaque part.
func nodeFields(n *rule.Node) (fields []string, opaque bool) {
	rule.Walk(n, func(x *rule.Node, _ bool) bool {
		switch x.Op {
		case rule.OpOpaque:
			opaque = true
		case rule.OpPred:
			if x.Pred == nil {
				return true
			}
			fields = append(fields, x.Pred.Field)
			if x.Pred.Kind == rule.FieldRef {
				for _, v := range x.Pred.Values {
					fields = append(fields, v.S)
				}
			}
		}
		return true
	})
	return fields, opaque
}

func (pl *pipeline) columnsOf(c *rule.Node) []string {
	fields, _ := nodeFields(c)
	var out []string
	for _, f := range fields {
		if _, ok := pl.computed[f]; ok {
			out = append(out, f)
		}
	}
	return out
}

func dedupeStrings(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// startAggregation notes an aggregating command at the stage about to be added: its
// group-by fields (under their original names) are what later event filters may test.
func (pl *pipeline) startAggregation(by []string, outs []string, funcs []aggOut) {
	pl.aggAt = len(pl.stages) + 1
	pl.byField = map[string]bool{}
	for _, b := range by {
		pl.byField[pl.resolve(b)] = true
	}
	for i, o := range outs {
		pl.compute(o, aggDef(funcs[i], by))
	}
}

// aggDef is an aggregate column's definition: dc(user) by src.
func aggDef(f aggOut, by []string) string {
	d := f.fn
	if f.field != "" {
		d += "(" + f.field + ")"
	}
	if len(by) > 0 {
		d += " by " + strings.Join(by, ", ")
	}
	return d
}

// evalColumns records eval's assignments: `x = y` of a bare field is a rename, any
// other expression a computed column.
func (pl *pipeline) evalColumns(toks []token) {
	depth := 0
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tLParen:
			depth++
			continue
		case tRParen:
			depth--
			continue
		}
		if depth != 0 || (t.kind != tWord && t.kind != tQField) || i+1 >= len(toks) ||
			toks[i+1].kind != tOp || toks[i+1].text != "=" || (i > 0 && toks[i-1].kind != tComma) {
			continue
		}
		// The expression runs to the next comma at depth 0.
		j, d := i+2, 0
		for ; j < len(toks); j++ {
			if toks[j].kind == tLParen {
				d++
			} else if toks[j].kind == tRParen {
				d--
			} else if toks[j].kind == tComma && d == 0 {
				break
			}
		}
		name := t.val()
		if j == i+3 && (toks[i+2].kind == tWord || toks[i+2].kind == tQField) && !isNumber(toks[i+2].text) {
			src := pl.resolve(toks[i+2].val())
			delete(pl.computed, name)
			pl.renames = append(pl.renames, renameRule{from: src, to: name})
		} else if j > i+2 {
			pl.compute(name, pl.text(toks[i+2].off, toks[j-1].end))
		}
		i = j - 1
	}
}

var namedGroup = regexp.MustCompile(`\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>`)

// rexColumns records the named groups a rex extracts (or, with mode=sed, the field it
// rewrites).
func (pl *pipeline) rexColumns(args []token, a, b int) {
	field := "_raw"
	if v := optValue(args, "field"); v != "" {
		field = v
	}
	def := pl.text(a, b)
	if strings.EqualFold(optValue(args, "mode"), "sed") {
		pl.compute(field, def)
		return
	}
	for _, t := range args {
		if t.kind != tString {
			continue
		}
		for _, m := range namedGroup.FindAllStringSubmatch(t.val(), -1) {
			pl.compute(m[1], def)
		}
	}
}

// lookupColumns records the fields a lookup adds: those after OUTPUT/OUTPUTNEW (AS
// renames them), or, when it names none, every column of the table, which the search
// cannot know.
func (pl *pipeline) lookupColumns(args []token, a, b int) {
	def := pl.text(a, b)
	out := -1
	for i, t := range args {
		if t.is("OUTPUT") || t.is("OUTPUTNEW") {
			out = i
			break
		}
	}
	if out < 0 {
		pl.unknownCols = true
		return
	}
	for i := out + 1; i < len(args); i++ {
		t := args[i]
		if t.kind != tWord && t.kind != tString {
			continue
		}
		if i+2 < len(args) && args[i+1].is("AS") {
			pl.compute(args[i+2].val(), def)
			i += 2
			continue
		}
		pl.compute(t.val(), def)
	}
}

// iplocationFields are the columns iplocation adds (Splunk Search Reference).
var iplocationFields = []string{"City", "Country", "Region", "lat", "lon"}

// joinAdjacent merges tokens written with no space between them into one word:
// `drop_dm_object_name("All_Traffic")` expands to `rename "All_Traffic".* AS *`,
// whose first name is "All_Traffic" and .* together.
func joinAdjacent(toks []token) []token {
	var out []token
	for _, t := range toks {
		if n := len(out); n > 0 && out[n-1].end == t.off && t.kind != tComma && out[n-1].kind != tComma {
			prev := &out[n-1]
			prev.text = prev.val() + t.val()
			prev.kind = tWord
			prev.end = t.end
			continue
		}
		out = append(out, t)
	}
	return out
}
