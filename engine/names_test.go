package engine

import (
	"testing"

	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// TestFieldNamesAcrossEvents: the per-position name cache must follow the event, not the
// previous one: names change at a position, differ only by case or spaces, or are
// longer than the cache's first buffer.
func TestFieldNamesAcrossEvents(t *testing.T) {
	det := "  sel:\n    Image|endswith: '\\x.exe'\n    ThreatName: evil\n  condition: sel\n"
	rs, _ := sigma.Parser{}.Parse(rule.Source{Repo: "test", Path: "n.yml"}, []byte(ruleText(det)))
	m, skipped := Compile(rs, Options{})
	if len(rs) != 1 || len(skipped) > 0 {
		t.Fatalf("%d rules, %d skipped", len(rs), len(skipped))
	}
	long := "AVeryLongFieldNameThatIsLongerThanThirtyTwoBytes"
	steps := []struct {
		kv   []string
		want int
	}{
		{[]string{"Image", `C:\x.exe`, "ThreatName", "evil"}, 1},
		{[]string{"Imagf", `C:\x.exe`, "ThreatName", "evil"}, 0},
		{[]string{"Image", `C:\x.exe`, "Threat Name", "EVIL"}, 1},
		{[]string{"IMAGE", `C:\x.exe`, "threatname", "evil"}, 1},
		{[]string{long, `C:\x.exe`, "ThreatName", "evil"}, 0},
		{[]string{long, "x", "Image", `C:\x.exe`, "ThreatName", "evil"}, 1},
		{[]string{"Image", `C:\x.exe`, "ThreatNam", "evil"}, 0},
		{[]string{"Image", `C:\x.exe`, "ThreatName", "evil"}, 1},
	}
	for round := 0; round < 2; round++ {
		for i, s := range steps {
			if got := len(m.Match(ev(s.kv...), nil)); got != s.want {
				t.Errorf("round %d, step %d %q: %d matches, want %d", round, i, s.kv, got, s.want)
			}
		}
	}
}
