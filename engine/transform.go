package engine

import (
	"fmt"

	"github.com/ruledex/ruledex/rule"
)

// alt is one concrete value a rule value stands for after its transforms: the windash
// variants, the base64 encodings, ... A predicate value matches when any alt does.
type alt struct {
	s     string
	wild  bool // s is a ruledex glob pattern, else a literal
	cased bool // compare case-sensitively
}

// expandValue applies a predicate's transforms to one value. The encodings themselves
// are the IR's (rule.ExpandValue, pySigma's semantics); this decides how the results
// compare. Encoded values (base64, UTF-16) compare case-sensitively: they are bytes,
// and folding their letters would match different text.
func expandValue(p *rule.Pred, v rule.Value) ([]alt, error) {
	cased, encoded := false, false
	for _, t := range p.Transforms {
		switch t {
		case rule.TCased:
			cased = true
		case rule.TWindash:
		case rule.TBase64, rule.TBase64Offset, rule.TUTF16LE, rule.TUTF16BE, rule.TUTF16, rule.TWide:
			encoded = true
		case rule.TIgnoreCase, rule.TMultiline, rule.TDotAll:
			// Regex flags; handled where the regex is compiled.
		case rule.TExpand:
			return nil, fmt.Errorf("modifier expand needs placeholder values from configuration (%q)", v.S)
		case rule.TMinute, rule.THour, rule.TDay, rule.TWeek, rule.TMonth, rule.TYear:
			return nil, fmt.Errorf("date-part modifier %s is not supported", t)
		default:
			return nil, fmt.Errorf("unsupported modifier %q", t)
		}
	}
	vals, err := rule.ExpandValue(p, v)
	if err != nil {
		return nil, err
	}
	out := make([]alt, 0, len(vals))
	for _, x := range vals {
		out = append(out, alt{s: x.S, wild: x.Wild, cased: cased || encoded})
	}
	return out, nil
}
