package rule

// Op is a node type of the boolean tree.
type Op string

const (
	OpAnd    Op = "and"    // all Children hold
	OpOr     Op = "or"     // at least one Child holds
	OpNot    Op = "not"    // Children[0] does not hold
	OpPred   Op = "pred"   // Pred holds
	OpRef    Op = "ref"    // a named selection (Name); Children[0] is its body. Kept so pages show names.
	OpQuant  Op = "quant"  // `1 of` / `all of` (Quant) over the Refs matching Name (a pattern or "them")
	OpOpaque Op = "opaque" // something the parser could not model; Text is its source. Never true or false for sure.
	OpTrue   Op = "true"   // always holds (an empty selection, an unconditioned source)
)

// Node is one node of a rule's boolean tree. It is a concrete struct rather than an
// interface so the tree round-trips through JSON and the catalog unchanged.
type Node struct {
	Op       Op      `json:"op"`
	Children []*Node `json:"children,omitempty"`
	Pred     *Pred   `json:"pred,omitempty"`
	// Name is the selection name for OpRef, the pattern ("selection_*", "them") for OpQuant.
	Name string `json:"name,omitempty"`
	// Quant is "1" (any) or "all" for OpQuant.
	Quant string `json:"quant,omitempty"`
	// Text is the source text of an OpOpaque node.
	Text string `json:"text,omitempty"`
	Pos  Pos    `json:"pos,omitzero"`
}

// Constructors keep parser code short and the tree shape uniform.
func And(children ...*Node) *Node { return &Node{Op: OpAnd, Children: children} }
func Or(children ...*Node) *Node  { return &Node{Op: OpOr, Children: children} }
func Not(child *Node) *Node       { return &Node{Op: OpNot, Children: []*Node{child}} }
func Leaf(p *Pred) *Node          { return &Node{Op: OpPred, Pred: p, Pos: p.Pos} }
func Ref(name string, body *Node) *Node {
	return &Node{Op: OpRef, Name: name, Children: []*Node{body}}
}

// Walk calls fn for n and every descendant, depth first, with negated true when an odd
// number of OpNot nodes lie between the root and the node. fn returning false prunes.
func Walk(n *Node, fn func(n *Node, negated bool) bool) {
	walk(n, false, fn)
}

func walk(n *Node, neg bool, fn func(*Node, bool) bool) {
	if n == nil || !fn(n, neg) {
		return
	}
	if n.Op == OpNot {
		neg = !neg
	}
	for _, c := range n.Children {
		walk(c, neg, fn)
	}
}

// Preds returns every predicate under n with its polarity.
func Preds(n *Node) []PolarPred {
	var out []PolarPred
	Walk(n, func(m *Node, neg bool) bool {
		if m.Op == OpPred && m.Pred != nil {
			out = append(out, PolarPred{Pred: m.Pred, Negated: neg})
		}
		return true
	})
	return out
}

// PolarPred is a predicate and whether it sits under an odd number of negations.
type PolarPred struct {
	Pred    *Pred
	Negated bool
}
