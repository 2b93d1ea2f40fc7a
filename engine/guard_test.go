package engine

import (
	"slices"
	"testing"

	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// TestEventIDGuard: which EventID tests become a bucket guard, and that a guarded rule
// matches exactly what evaluating it on every event matches, on event IDs written as
// Windows and JSON exporters write them.
func TestEventIDGuard(t *testing.T) {
	cases := []struct {
		name      string
		detection string
		guard     []int
	}{
		{"one id", "  sel:\n    EventID: 4728\n    TargetUserName: x\n  condition: sel\n", []int{4728}},
		{"list", "  sel:\n    EventID:\n      - 4728\n      - 4732\n  condition: sel\n", []int{4728, 4732}},
		{"and of selections", "  a:\n    EventID: 4728\n  b:\n    Foo: x\n  condition: a and b\n", []int{4728}},
		{"quoted id compares as text", "  sel:\n    EventID: '4728'\n  condition: sel\n", nil},
		{"modifier", "  sel:\n    EventID|startswith: 47\n  condition: sel\n", nil},
		{"or with another test", "  a:\n    EventID: 4728\n  b:\n    Foo: x\n  condition: a or b\n", nil},
		{"negated", "  a:\n    EventID: 4728\n  condition: not a\n", nil},
		{"another field", "  sel:\n    EventType: 4728\n  condition: sel\n", nil},
	}
	events := []struct{ id, note string }{
		{"4728", "plain"}, {"04728", "zero-padded"}, {" 4728", "leading space"}, {"4732", "other id"},
		{"0x1278", "hex"}, {"4728.0", "decimal point"}, {"", "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, _ := sigma.Parser{}.Parse(rule.Source{Repo: "test", Path: "g.yml"}, []byte(ruleText(c.detection)))
			if len(rs) != 1 {
				t.Fatalf("parsed %d rules", len(rs))
			}
			fast, skipped := Compile(rs, Options{})
			if len(skipped) > 0 {
				t.Fatalf("skipped: %s", skipped[0].Reason)
			}
			slow, _ := Compile(rs, Options{bruteForce: true})
			if g := fast.variants[0].guard; !slices.Equal(g, c.guard) {
				t.Errorf("guard %v, want %v", g, c.guard)
			}
			for _, e := range events {
				for _, extra := range [][]string{nil, {"EventID", "4732"}} {
					kv := append([]string{"Channel", "Security", "EventID", e.id, "TargetUserName", "x", "Foo", "x"}, extra...)
					x := ev(kv...)
					a, b := ids(fast.Match(x, nil)), ids(slow.Match(x, nil))
					if a != b {
						t.Errorf("EventID %q (%s, %d fields): guarded %q, every rule %q", e.id, e.note, len(kv)/2, a, b)
					}
				}
			}
		})
	}
	// The cases must not all agree by never matching.
	rs, _ := sigma.Parser{}.Parse(rule.Source{Repo: "test", Path: "g.yml"}, []byte(ruleText(cases[0].detection)))
	m, _ := Compile(rs, Options{})
	for _, id := range []string{"4728", "04728", " 4728"} {
		if got := m.Match(ev("Channel", "Security", "EventID", id, "TargetUserName", "x"), nil); len(got) != 1 {
			t.Errorf("EventID %q: %d matches, want 1", id, len(got))
		}
	}
	if got := m.Match(ev("Channel", "Security", "EventID", "4732", "TargetUserName", "x"), nil); len(got) != 0 {
		t.Errorf("EventID 4732: %d matches, want 0", len(got))
	}
}
