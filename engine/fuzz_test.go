package engine

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// FuzzMatch compiles a fuzzed detection and matches a fuzzed event: nothing may panic,
// and the prefiltered matcher must agree with evaluating every rule.
func FuzzMatch(f *testing.F) {
	for _, c := range modifierCases {
		var vals []string
		for _, fl := range c.event.Fields {
			vals = append(vals, fl.Name+"="+fl.Value)
		}
		f.Add(c.detection, strings.Join(vals, "\n"))
	}
	f.Fuzz(func(t *testing.T, detection, fields string) {
		rs, _ := sigma.Parser{}.Parse(rule.Source{Repo: "fuzz", Path: "f.yml"}, []byte(ruleText(detection)))
		if len(rs) == 0 {
			return
		}
		ev := &event.Event{}
		for _, line := range strings.Split(fields, "\n") {
			name, val, _ := strings.Cut(line, "=")
			ev.Add(name, val)
		}
		fast, _ := Compile(rs, Options{})
		slow, _ := Compile(rs, Options{bruteForce: true})
		a, b := ids(fast.Match(ev, nil)), ids(slow.Match(ev, nil))
		if a != b {
			t.Errorf("prefiltered %q, every rule %q", a, b)
		}
	})
}
