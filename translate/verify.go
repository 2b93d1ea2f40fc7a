package translate

import (
	"fmt"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/neighbors"
	"github.com/ruledex/ruledex/rule"
)

// Reader parses a translation back: name is a file name with the target's extension.
// The CLI passes the ingest parsers; translate itself parses nothing.
type Reader func(lang rule.Language, name string, data []byte) ([]*rule.Rule, error)

// Verify parses res back with read and checks that it is the same rule as src: exactly
// one rule, no error diagnostics, and the same canonical logic and kind of event
// (neighbors.SameLogic). On success it sets res.Verified.
func Verify(fm *fieldmap.Map, src *rule.Rule, res *Result, read Reader) error {
	name := slug(src.Title) + res.Ext
	rs, err := read(res.Target.Language(), name, []byte(res.File))
	if err != nil {
		return fmt.Errorf("round trip: %w", err)
	}
	if len(rs) != 1 {
		return fmt.Errorf("round trip: reading the %s back gave %d rules", res.Target.Display(), len(rs))
	}
	back := rs[0]
	for _, d := range back.Diagnostics {
		if d.Severity == rule.Error {
			return fmt.Errorf("round trip: the %s does not parse: %s", res.Target.Display(), d.Message)
		}
	}
	if len(res.Dropped) > 0 {
		// A lossy translation is not the same rule by construction; it is shown with
		// what it dropped and never called verified.
		return nil
	}
	if same, why := neighbors.SameLogic(fm, src, back); !same {
		return fmt.Errorf("round trip: the %s reads back as a different rule: %s", res.Target.Display(), why)
	}
	res.Verified = true
	return nil
}

// Convert translates and verifies: the result is returned only when it round-trips.
func Convert(fm *fieldmap.Map, r *rule.Rule, t Target, opts Options, read Reader) (*Result, error) {
	res, err := Translate(fm, r, t, opts)
	if err != nil {
		return nil, err
	}
	if err := Verify(fm, r, res, read); err != nil {
		return nil, err
	}
	return res, nil
}
