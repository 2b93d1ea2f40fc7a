package engine

import (
	"fmt"
	"strings"

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
func expandValue(p *rule.Pred, v rule.Value, placeholders map[string][]string) ([]alt, error) {
	cased, encoded, expand := false, false, false
	for _, t := range p.Transforms {
		switch t {
		case rule.TCased:
			cased = true
		case rule.TWindash:
		case rule.TBase64, rule.TBase64Offset, rule.TUTF16LE, rule.TUTF16BE, rule.TUTF16, rule.TWide:
			encoded = true
		case rule.TIgnoreCase, rule.TMultiline, rule.TDotAll:
			// Regex flags; handled where the regex is compiled.
		case rule.TElem:
			// Which values are tested, not how: see cpred.elem.
		case rule.TExpand:
			expand = true
		case rule.TMinute, rule.THour, rule.TDay, rule.TWeek, rule.TMonth, rule.TYear:
			return nil, fmt.Errorf("date-part modifier %s is not supported", t)
		default:
			return nil, fmt.Errorf("unsupported modifier %q", t)
		}
	}
	in := []rule.Value{v}
	if expand {
		var err error
		if in, err = expandPlaceholders(v, placeholders); err != nil {
			return nil, err
		}
	}
	var out []alt
	for _, x := range in {
		vals, err := rule.ExpandValue(p, x)
		if err != nil {
			return nil, err
		}
		for _, y := range vals {
			out = append(out, alt{s: y.S, wild: y.Wild, cased: cased || encoded})
		}
	}
	return out, nil
}

// maxPlaceholderValues bounds the values one rule value may expand to.
const maxPlaceholderValues = 10000

// expandPlaceholders replaces each %name% of v by every value configured for name
// (every combination when a value names several). Configured values are literals.
func expandPlaceholders(v rule.Value, placeholders map[string][]string) ([]rule.Value, error) {
	out := []string{""}
	s := v.S
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		name := s[i+1 : i+1+j]
		vals, ok := placeholders[name]
		if !ok {
			return nil, fmt.Errorf("modifier expand: placeholder %%%s%% has no configured values", name)
		}
		var next []string
		for _, o := range out {
			for _, pv := range vals {
				if v.Wild {
					pv = escapeGlob(pv)
				}
				next = append(next, o+s[:i]+pv)
			}
		}
		if len(next) > maxPlaceholderValues {
			return nil, fmt.Errorf("modifier expand: %q gives more than %d values", v.S, maxPlaceholderValues)
		}
		out = next
		s = s[i+2+j:]
	}
	res := make([]rule.Value, len(out))
	for i, o := range out {
		res[i] = rule.Value{S: o + s, Type: v.Type, Wild: v.Wild}
	}
	return res, nil
}
