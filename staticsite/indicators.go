package staticsite

import (
	"net/url"
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// OnlySharedIndicators is a Skip that leaves out the indicator pages of indicators
// only one rule tests (keys not in shared). Four in five indicators of the corpus are
// such: their page would list the one rule that links to it, and the rule page already
// says so (a blank corpus count). The link is then dropped, the value still shown.
func OnlySharedIndicators(shared map[string]bool) func(*url.URL) bool {
	return func(u *url.URL) bool {
		if u.Path != "/indicators/" {
			return false
		}
		return !shared[indicatorKey(u.Query())]
	}
}

// indicatorKey is the key an indicator page URL names, as the server reads it first
// (rule pages link the key's own canonical field, kind and value).
func indicatorKey(q url.Values) string {
	if k := q.Get("key"); k != "" {
		return k
	}
	var transforms []string
	if tr := q.Get("transforms"); tr != "" {
		transforms = strings.FieldsFunc(tr, func(r rune) bool { return r == '|' || r == ',' })
	}
	cased := q.Get("cased") == "1" || q.Get("cased") == "true"
	if cased {
		transforms = append(transforms, rule.TCased)
	}
	return fieldmap.Key(q.Get("field"), rule.Kind(q.Get("kind")), transforms, q.Get("value"), cased)
}
