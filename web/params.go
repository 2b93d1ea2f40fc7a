package web

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

// maxParam bounds any query parameter: nothing legitimate is longer, and a bound keeps
// hostile requests from costing work.
const maxParam = 2000

var techniqueID = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)

// languages are the rule languages URLs and filters accept (rule.Languages), whether or
// not the catalog holds rules of each yet.
var languages = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range rule.Languages {
		m[string(l)] = true
	}
	return m
}()

// param reads a single-valued query parameter, rejecting repeats, overlong and
// non-UTF-8 values.
func param(q url.Values, name string) (string, error) {
	vs := q[name]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", badRequest("parameter %q given %d times; give it once", name, len(vs))
	}
	v := vs[0]
	if len(v) > maxParam {
		return "", badRequest("parameter %q is longer than %d bytes", name, maxParam)
	}
	if !utf8.ValidString(v) {
		return "", badRequest("parameter %q is not valid UTF-8", name)
	}
	return v, nil
}

func intParam(q url.Values, name string, def, min, max int) (int, error) {
	v, err := param(q, name)
	if err != nil || v == "" {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, badRequest("parameter %q must be a whole number from %d to %d, not %q", name, min, max, v)
	}
	return n, nil
}

func languageParam(q url.Values) (string, error) {
	v, err := param(q, "language")
	if err != nil || v == "" {
		return "", err
	}
	if !languages[v] {
		return "", badRequest("unknown language %q (want one of %s)", v, rule.LanguageIDs())
	}
	return v, nil
}

// searchParams reads a browse/search request from the query string.
func searchParams(q url.Values) (catalog.SearchQuery, error) {
	var sq catalog.SearchQuery
	var err error
	if sq.Language, err = languageParam(q); err != nil {
		return sq, err
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{
		{"q", &sq.Text}, {"source", &sq.Source}, {"severity", &sq.Severity}, {"status", &sq.Status},
		{"logsource", &sq.LogSource}, {"tactic", &sq.Tactic}, {"technique", &sq.Technique}, {"field", &sq.Field}, {"class", &sq.Class},
	} {
		if *p.dst, err = param(q, p.name); err != nil {
			return sq, err
		}
	}
	if sq.Technique != "" {
		sq.Technique = strings.ToUpper(strings.TrimSpace(sq.Technique))
		if !techniqueID.MatchString(sq.Technique) {
			return sq, badRequest("technique must be an ATT&CK ID such as T1197 or T1558.004, not %q", sq.Technique)
		}
	}
	if sq.Page, err = intParam(q, "page", 1, 1, 10000); err != nil {
		return sq, err
	}
	if sq.PerPage, err = intParam(q, "per_page", 50, 1, 200); err != nil {
		return sq, err
	}
	return sq, nil
}

// coverageParams reads the matrix filter.
func coverageParams(q url.Values) (CoverageFilter, error) {
	var f CoverageFilter
	var err error
	if f.Language, err = languageParam(q); err != nil {
		return f, err
	}
	if f.Source, err = param(q, "source"); err != nil {
		return f, err
	}
	if f.Severity, err = param(q, "severity"); err != nil {
		return f, err
	}
	return f, nil
}
