package rule

// StageKind classifies a stage.
type StageKind string

const (
	StageCondition   StageKind = "condition"   // Stage 0: the condition as written
	StageSelection   StageKind = "selection"   // a named selection (possibly negated: a filter)
	StageQuantified  StageKind = "quantified"  // `1 of x*` / `all of them`, or an anonymous group
	StageAggregation StageKind = "aggregation" // Sigma `| count() by`, `near`, KQL summarize with a threshold
	StageCorrelation StageKind = "correlation" // a Sigma correlation over other rules
	StagePipeline    StageKind = "pipeline"    // a KQL/SPL pipeline operator (source, where, summarize, join, ...)
	StageParameter   StageKind = "parameter"   // KQL `let` parameters, SPL macro arguments
	StageOpaque      StageKind = "opaque"      // something the parser kept as text only
)

// Stage is one step of a rule as its page shows it (REFERENCE §1.7). Stages are a view
// of Root for Sigma, and the pipeline itself for KQL/SPL.
type Stage struct {
	// Index is the number shown ("Stage 1"); 0 is the condition as written.
	Index int `json:"index"`
	// Alt is the 1-based alternative of a top-level OR this stage belongs to, or 0 when
	// the rule is one conjunction. Stages with the same Alt are AND-ed; alternatives are OR-ed.
	Alt  int       `json:"alt,omitempty"`
	Kind StageKind `json:"kind"`
	// Label is the stage title after "Stage N: " ("selection", "not filter", "1 of selection_*", "where").
	Label   string `json:"label"`
	Negated bool   `json:"negated,omitempty"`
	// Op is the pipeline operator or aggregation function ("where", "summarize", "count").
	Op string `json:"op,omitempty"`
	// Text is the stage's content in the rule's native syntax, ready to display verbatim
	// (a Sigma selection as YAML, a KQL operator's text). OR-groups render under "or:".
	Text string `json:"text"`
	// Node is the stage's logic: the conjunct as it stands in Root, including the OpNot of a
	// negated stage, so rule.Preds(Node) gives each predicate's true polarity. Nil for
	// stages without predicates (Stage 0, pipeline operators that do not filter).
	Node        *Node        `json:"node,omitempty"`
	Aggregation *Aggregation `json:"aggregation,omitempty"`
	Pos         Pos          `json:"pos,omitzero"`
}

// Aggregation is a stage that counts or correlates events.
type Aggregation struct {
	Func     string   `json:"func"`            // count, value_count, event_count, temporal, near, dcount, ...
	Field    string   `json:"field,omitempty"` // counted field
	GroupBy  []string `json:"group_by,omitempty"`
	Op       string   `json:"op,omitempty"` // >, >=, <, <=, ==, != as written
	Value    string   `json:"value,omitempty"`
	Timespan string   `json:"timespan,omitempty"`
}

// Exclusions returns the predicates of top-level negated stages, the rule's filters.
func (r *Rule) Exclusions() []StagePred {
	var out []StagePred
	for i := range r.Stages {
		s := &r.Stages[i]
		if !s.Negated || s.Node == nil {
			continue
		}
		for _, p := range Preds(s.Node) {
			out = append(out, StagePred{Stage: s, Pred: p.Pred})
		}
	}
	return out
}

// StagePred is a predicate and the stage that holds it.
type StagePred struct {
	Stage *Stage
	Pred  *Pred
}
