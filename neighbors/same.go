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
	fa, fb := NewForm(fm, a, Options{}), NewForm(fm, b, Options{})
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
