package kuery

import (
	"testing"

	"github.com/ruledex/ruledex/internal/elasticq"
)

// corpusQuery is one query of an Elastic rule or hunting TOML (see internal/elasticq).
type corpusQuery struct {
	file string // relative to elastic/detection-rules
	lang string // kuery, lucene, esql, eql, sql, ...
	text string
	line int // 1-based line of the query's first character
}

func loadCorpusQueries(tb testing.TB) []corpusQuery {
	tb.Helper()
	var out []corpusQuery
	for _, q := range elasticq.Load(tb) {
		out = append(out, corpusQuery{file: q.File, lang: q.Lang, text: q.Text, line: q.Line})
	}
	return out
}
