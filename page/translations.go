package page

import (
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/translate"
)

// Translation is one entry of the rule page's "In other languages" section: the rule
// written in another language, proved by reading it back, or why it cannot be.
type Translation struct {
	Target string `json:"target"` // sigma, kql, spl, eql, esql, yaral
	Name   string `json:"name"`   // Sigma, KQL, SPL, EQL, ES|QL, YARA-L
	Schema string `json:"schema,omitempty"`
	Query  string `json:"query,omitempty"`
	File   string `json:"file,omitempty"`
	// Assumptions are the field-map equivalences the translation rests on.
	Assumptions []string `json:"assumptions,omitempty"`
	// Unavailable says why there is no translation ("" when there is one).
	Unavailable string `json:"unavailable,omitempty"`
}

// Translator computes a rule's translations; the CLI provides it (it holds the parsers
// that verify them), so the page and the web server never parse rule text.
type Translator func(*rule.Rule) []Translation

// Translations turns translate's outcomes into the page section, leaving out the rule's
// own language written as itself unless it is Sigma (a Sigma rule rewritten in SigmaHQ
// conventions is still worth showing; a KQL query rewritten as KQL is not).
func Translations(r *rule.Rule, outs []translate.Outcome) []Translation {
	var out []Translation
	for _, o := range outs {
		if o.Target.Language() == r.Language && r.Language != rule.Sigma && o.Target != translate.ESQL {
			continue
		}
		t := Translation{Target: string(o.Target), Name: o.Target.Display()}
		if o.Err != nil {
			t.Unavailable = reason(o.Err)
		} else {
			t.Schema, t.Query, t.File, t.Assumptions = o.Result.Schema, o.Result.Query, o.Result.File, o.Result.Assumptions
		}
		out = append(out, t)
	}
	return out
}

func reason(err error) string {
	if te, ok := err.(*translate.Error); ok {
		return te.Reason
	}
	return err.Error()
}
