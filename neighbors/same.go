package neighbors

import (
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// SameLogic reports whether a and b, possibly in different languages, match exactly the
// same events under the field map: the same kind of event (log source class, with
// tables and data models placed on Sigma categories) and the same canonical logic.
// It is the check a translation must pass before it is shown. When they differ, why
// says how, for the translation's error.
func SameLogic(fm *fieldmap.Map, a, b *rule.Rule) (same bool, why string) {
	fa, fb := NewForm(fm, securityEventScope(a), Options{}), NewForm(fm, securityEventScope(b), Options{})
	if fa.Shape != ShapeSingle || fb.Shape != ShapeSingle {
		return false, "not both single-event rules (" + fa.Shape + ", " + fb.Shape + ")"
	}
	if fa.root == nil || fb.root == nil {
		return false, "a rule without logic ruledex can read"
	}
	if ca, cb := category(fa.Class), category(fb.Class); ca != cb {
		return false, "different kinds of event: " + fa.Class + " and " + fb.Class
	}
	if fa.root.str != fb.root.str {
		return false, "different logic:\n  " + fa.root.str + "\n  " + fb.root.str
	}
	return true, ""
}

// category is the event-kind part of a class ("windows/process_creation" →
// "process_creation"); a class naming several tables stays whole.
func category(class string) string {
	if strings.Contains(class, "+") {
		return class
	}
	if i := strings.LastIndexByte(class, '/'); i >= 0 {
		return class[i+1:]
	}
	return class
}

// securityEventIDs are the Security events a Sentinel SecurityEvent query selects by
// EventID for a Sigma category; Sentinel's Windows Security table holds no Sysmon events,
// so such a query is the category as Security auditing logs it.
var securityEventIDs = map[string]string{"4688": "process_creation"}

// securityEventScope reads `SecurityEvent | where EventID == 4688 and ...` as a
// process_creation rule without the EventID test, so a Sentinel translation compares
// with the Sigma rule it came from; any other rule is returned as it is.
func securityEventScope(r *rule.Rule) *rule.Rule {
	if len(r.LogSource.Tables) != 1 || !strings.EqualFold(r.LogSource.Tables[0], "SecurityEvent") || r.Root == nil || r.Root.Op != rule.OpAnd {
		return r
	}
	for i, k := range r.Root.Children {
		p := k.Pred
		if k.Op != rule.OpPred || p == nil || !strings.EqualFold(p.Field, "EventID") || (p.Kind != rule.Eq && p.Kind != rule.In) || len(p.Values) != 1 {
			continue
		}
		cat, ok := securityEventIDs[p.Values[0].S]
		if !ok {
			return r
		}
		out := *r
		out.LogSource = rule.LogSource{Product: "windows", Category: cat}
		kids := append(append([]*rule.Node{}, r.Root.Children[:i]...), r.Root.Children[i+1:]...)
		out.Root = &rule.Node{Op: rule.OpAnd, Children: kids}
		return &out
	}
	return r
}
