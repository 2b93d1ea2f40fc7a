package engine

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// KQL, SPL, Elastic and YARA-L rules are pipelines; the engine runs their Root as a
// single-event filter (and a thresholded aggregation through the Correlator), which
// is their meaning only when nothing else in the pipeline decides which events are
// reported. unrunnable says why a rule's pipeline is not that.

// rowOps keep every row that reaches them (they filter through Root, reshape or
// present): a pipeline made of them and Root is a single-event filter.
var rowOps = map[string]bool{
	"source": true, "where": true, "filter": true, "search": true, "project": true,
	"project-away": true, "project-keep": true, "project-rename": true, "project-reorder": true,
	"extend": true, "sort": true, "order": true, "render": true, "table": true, "fields": true,
	"rename": true, "eval": true, "let": true, "convert": true, "fillnull": true,
	"bin": true, "bucket": true,
	// ES|QL: from names the source; keep and drop only pick columns.
	"from": true, "keep": true, "drop": true,
}

// groupOps only group rows: alone they drop nothing, with a filter after them they
// threshold (then the parser gives the rule an aggregation stage).
var groupOps = map[string]bool{"summarize": true, "stats": true, "tstats": true}

func unrunnable(r *rule.Rule) string {
	if r.Language == rule.Sigma {
		return ""
	}
	hasAgg := false
	for _, s := range r.Stages {
		if s.Kind == rule.StageAggregation {
			hasAgg = true
		}
	}
	for i, s := range r.Stages {
		switch s.Kind {
		case rule.StageOpaque:
			return fmt.Sprintf("part of the query could not be modeled: %q", oneLine(s.Text))
		case rule.StagePipeline:
			op := strings.ToLower(s.Op)
			switch {
			case rowOps[op]:
			case groupOps[op]:
				if by := filteredAfter(r.Stages[i+1:], rootPreds(r)); !hasAgg && by != "" {
					return fmt.Sprintf("the groups of %s are filtered afterwards (%s), which the engine cannot model", op, by)
				}
			default:
				return fmt.Sprintf("pipeline operator %q decides which events are reported (joins, unions, row limits, lookups are not run)", s.Op)
			}
		}
	}
	if len(r.Computed) > 0 {
		names := map[string]string{}
		for _, c := range r.Computed {
			names[strings.ToLower(c.Name)] = c.Definition
		}
		if r.Root != nil {
			for _, p := range rule.Preds(r.Root) {
				if def, ok := names[strings.ToLower(p.Pred.Field)]; ok {
					return fmt.Sprintf("tests the computed column %s (%s), which no event carries", p.Pred.Field, oneLine(def))
				}
			}
		}
		for _, s := range r.Stages {
			if s.Node == nil || s.Kind == rule.StageAggregation {
				continue
			}
			for _, p := range rule.Preds(s.Node) {
				if def, ok := names[strings.ToLower(p.Pred.Field)]; ok {
					return fmt.Sprintf("filters on the computed column %s (%s)", p.Pred.Field, oneLine(def))
				}
			}
		}
	}
	return ""
}

// filteredAfter returns the first later stage that drops rows: one with predicates,
// or an operator that is not a row operator (ESCU's empty filter macro, `search *`,
// keeps every row); "" when none does.
//
// A stage whose predicates are all in Root (a filter on a group-by column, which the
// parser keeps as an event filter) drops nothing Root does not.
func filteredAfter(stages []rule.Stage, root map[string]bool) string {
	for _, s := range stages {
		if s.Kind == rule.StageOpaque || s.Node != nil && !inRoot(s.Node, root) {
			return oneLine(s.Text)
		}
		if s.Node != nil {
			continue
		}
		if s.Kind != rule.StagePipeline {
			continue
		}
		op := strings.ToLower(s.Op)
		if !rowOps[op] && !groupOps[op] {
			return oneLine(s.Text)
		}
		if (op == "where" || op == "search" || op == "filter") && strings.Join(strings.Fields(s.Text), " ") != "search *" {
			return oneLine(s.Text)
		}
	}
	return ""
}

// rootPreds are the identities of r's Root predicates (see predID).
func rootPreds(r *rule.Rule) map[string]bool {
	out := map[string]bool{}
	if r.Root != nil {
		for _, p := range rule.Preds(r.Root) {
			out[predID(p.Pred, p.Negated)] = true
		}
	}
	return out
}

func inRoot(n *rule.Node, root map[string]bool) bool {
	for _, p := range rule.Preds(n) {
		if !root[predID(p.Pred, p.Negated)] {
			return false
		}
	}
	return true
}

// predID identifies a predicate by what it tests, not where it is written.
func predID(p *rule.Pred, negated bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x1f%s\x1f%v\x1f%v\x1f%s", strings.ToLower(p.Field), p.Kind, p.All, negated, strings.Join(p.Transforms, "|"))
	for _, v := range p.Values {
		fmt.Fprintf(&b, "\x1f%s/%s/%v", v.S, v.Type, v.Wild)
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
