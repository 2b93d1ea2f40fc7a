package main

import (
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
)

// parsers are the languages ruledex reads, asked in this order whether they recognize a
// file (the first that says yes parses it). Put stricter detectors first.
func parsers() []ingest.Parser {
	return []ingest.Parser{
		sigma.Parser{},
		&spl.Parser{},
		kql.Parser{},
		yaral.Parser{},
		elastic.Parser{},
	}
}
