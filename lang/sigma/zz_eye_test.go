package sigma

import (
	"fmt"
	"os"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

func TestEye(t *testing.T) {
	for _, p := range []string{os.Getenv("EYE")} {
		data, _ := os.ReadFile(p)
		rs, ds := Parser{}.Parse(rule.Source{Path: p}, data)
		for _, r := range rs {
			fmt.Println("ROOT", show(r.Root))
			for _, s := range r.Stages {
				fmt.Printf("--- Stage %d alt %d %s %q neg=%v\n%s\n", s.Index, s.Alt, s.Kind, s.Label, s.Negated, s.Text)
			}
			fmt.Println(r.Diagnostics)
		}
		fmt.Println(ds)
	}
}
