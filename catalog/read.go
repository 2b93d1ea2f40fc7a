package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Summary is a rule as listings show it, without its body and logic.
type Summary struct {
	Language    rule.Language `json:"language"`
	ID          string        `json:"id"`
	Title       string        `json:"title"`
	Status      string        `json:"status,omitempty"`
	Severity    string        `json:"severity,omitempty"`
	Class       rule.Class    `json:"class,omitempty"`
	Type        string        `json:"type,omitempty"`
	Authors     string        `json:"authors,omitempty"`
	Repo        string        `json:"repo,omitempty"`
	Path        string        `json:"path,omitempty"`
	UpstreamURL string        `json:"upstream_url,omitempty"`
	Product     string        `json:"product,omitempty"`
	Category    string        `json:"category,omitempty"`
	Service     string        `json:"service,omitempty"`
	HasErrors   bool          `json:"has_errors,omitempty"`
}

const summaryCols = `r.language, r.id, r.title, r.status, r.severity, r.class, r.type, r.authors, r.repo, r.path, r.upstream, r.product, r.category, r.service, r.has_errors`

func scanSummary(sc interface{ Scan(...any) error }, extra ...any) (Summary, error) {
	var s Summary
	var lang, class string
	var herr int
	dst := append([]any{&lang, &s.ID, &s.Title, &s.Status, &s.Severity, &class, &s.Type, &s.Authors, &s.Repo, &s.Path,
		&s.UpstreamURL, &s.Product, &s.Category, &s.Service, &herr}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return s, err
	}
	s.Language, s.Class, s.HasErrors = rule.Language(lang), rule.Class(class), herr != 0
	return s, nil
}

func (c *Catalog) summaries(ctx context.Context, q string, args ...any) ([]Summary, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Summary
	for rows.Next() {
		s, err := scanSummary(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Rule returns the rule with catalog id id in language lang. The returned IR carries the
// catalog id (which differs from the upstream id for duplicates, see Tx.Finish) and the
// catalog's own diagnostics after the parser's. Not found wraps ErrNotFound.
func (c *Catalog) Rule(ctx context.Context, lang rule.Language, id string) (*rule.Rule, error) {
	var pk int64
	var ir []byte
	err := c.queryRow(ctx, `SELECT pk, ir FROM rules WHERE language=? AND id=?`, string(lang), id).Scan(&pk, &ir)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rule %s/%s: %w", lang, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("rule %s/%s: %w", lang, id, err)
	}
	return c.decode(ctx, pk, id, ir)
}

func (c *Catalog) decode(ctx context.Context, pk int64, id string, ir []byte) (*rule.Rule, error) {
	var r rule.Rule
	js, err := decodeIR(ir)
	if err != nil {
		return nil, fmt.Errorf("rule %s: stored IR: %w", id, err)
	}
	if err := json.Unmarshal(js, &r); err != nil {
		return nil, fmt.Errorf("rule %s: stored IR: %w", id, err)
	}
	r.ID = id
	rows, err := c.query(ctx, `SELECT severity, code, file, line, col, message FROM diagnostics WHERE rule_pk=? AND derived=1`, pk)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var d rule.Diagnostic
		var sev string
		if err := rows.Scan(&sev, &d.Code, &d.Pos.File, &d.Pos.Line, &d.Pos.Col, &d.Message); err != nil {
			return nil, err
		}
		d.Severity = rule.Severity(sev)
		r.Diagnostics = append(r.Diagnostics, d)
	}
	return &r, rows.Err()
}

// LookupError is returned by RuleByRef when a reference names no rule (Candidates
// empty, Suggestions holds the closest titles) or several (Candidates lists them).
type LookupError struct {
	Ref         string
	Candidates  []Summary
	Suggestions []Summary
}

func (e *LookupError) Error() string {
	var b strings.Builder
	if len(e.Candidates) > 1 {
		fmt.Fprintf(&b, "%q is ambiguous: %d rules match; use one of these ids:", e.Ref, len(e.Candidates))
		for _, s := range e.Candidates {
			fmt.Fprintf(&b, "\n  %s/%s  %s  (%s)", s.Language, s.ID, s.Title, s.Path)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "no rule matches %q (by id, title, file name or path)", e.Ref)
	if len(e.Suggestions) > 0 {
		b.WriteString("; closest titles:")
		for _, s := range e.Suggestions {
			fmt.Fprintf(&b, "\n  %s  (%s/%s)", s.Title, s.Language, s.ID)
		}
	}
	return b.String()
}

// Unwrap makes a not-found LookupError match ErrNotFound.
func (e *LookupError) Unwrap() error {
	if len(e.Candidates) > 1 {
		return nil
	}
	return ErrNotFound
}

// Ambiguous reports whether the reference matched several rules.
func (e *LookupError) Ambiguous() bool { return len(e.Candidates) > 1 }

// RuleByRef resolves what a user typed: "<lang>/<id>" or a page URL "/rules/<lang>/<id>/",
// an id, an exact title (case-insensitive), a file stem ("win-os-bits abuse ...") or a
// file path (absolute, relative to the working directory, or relative to the source
// repository). The first of these forms that matches anything decides; several matches
// give a *LookupError listing them, none a *LookupError with suggestions.
func (c *Catalog) RuleByRef(ctx context.Context, ref string) (*rule.Rule, error) {
	return c.ruleByRef(ctx, ref, true)
}

// RuleByName resolves a reference as RuleByRef does, except that it never asks the
// filesystem: for references from the network (an MCP client, a web request), whose
// paths must not reach the filesystem. Paths still match as recorded in the catalog.
func (c *Catalog) RuleByName(ctx context.Context, ref string) (*rule.Rule, error) {
	return c.ruleByRef(ctx, ref, false)
}

func (c *Catalog) ruleByRef(ctx context.Context, ref string, local bool) (*rule.Rule, error) {
	ref = strings.TrimSpace(ref)
	type try struct {
		q    string
		args []any
	}
	var tries []try
	if s := strings.Trim(strings.TrimPrefix(ref, "/rules/"), "/"); strings.Count(s, "/") == 1 {
		lang, id, _ := strings.Cut(s, "/")
		tries = append(tries, try{`language=? AND id=?`, []any{lang, id}})
	}
	tries = append(tries,
		try{`id=?`, []any{ref}},
		try{`uid=?`, []any{ref}},
		try{`title_fold=?`, []any{strings.ToLower(ref)}},
		try{`stem_fold=?`, []any{strings.ToLower(ref)}},
	)
	if abs, err := filepath.Abs(ref); local && err == nil {
		// Ingest records paths with symlinks resolved (../shared is often a link).
		if ev, err := filepath.EvalSymlinks(abs); err == nil {
			abs = ev
		}
		tries = append(tries, try{`file_id IN (SELECT id FROM files WHERE path=?)`, []any{abs}})
	}
	rel := strings.TrimPrefix(filepath.ToSlash(ref), "./")
	tries = append(tries, try{`path=? OR (repo || '/' || path)=? OR path LIKE ? ESCAPE '\'`, []any{rel, rel, "%/" + likeEscape(rel)}})
	for _, t := range tries {
		cands, err := c.summaries(ctx, `SELECT `+summaryCols+` FROM rules r WHERE `+t.q+` ORDER BY r.language, r.id LIMIT 50`, t.args...)
		if err != nil {
			return nil, fmt.Errorf("lookup %q: %w", ref, err)
		}
		switch len(cands) {
		case 0:
			continue
		case 1:
			return c.Rule(ctx, cands[0].Language, cands[0].ID)
		default:
			return nil, &LookupError{Ref: ref, Candidates: cands}
		}
	}
	sugg, err := c.closest(ctx, ref, 5)
	if err != nil {
		return nil, err
	}
	return nil, &LookupError{Ref: ref, Suggestions: sugg}
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// closest finds titles near ref: full-text matches on its words first, ranked by bm25.
func (c *Catalog) closest(ctx context.Context, ref string, n int) ([]Summary, error) {
	q := ftsTerms(ref, "OR")
	if q == "" {
		return nil, nil
	}
	out, err := c.summaries(ctx, `SELECT `+summaryCols+` FROM rules_fts f JOIN rules r ON r.pk=f.rowid
		WHERE rules_fts MATCH ? ORDER BY bm25(rules_fts, 10.0, 1.0, 1.0, 1.0, 1.0) LIMIT ?`, "title: ("+q+")", n)
	if err != nil {
		return nil, fmt.Errorf("suggestions for %q: %w", ref, err)
	}
	return out, nil
}

// ftsTerms turns free text into an FTS5 query of quoted terms joined by op.
func ftsTerms(s, op string) string {
	var terms []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r == '_' || r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127)
	}) {
		terms = append(terms, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
	}
	return strings.Join(terms, " "+op+" ")
}

// LangCount is a number of rules in one language.
type LangCount struct {
	Language rule.Language `json:"language"`
	Rules    int           `json:"rules"`
}

// Count is how many rules of the catalog test one indicator key.
type Count struct {
	Key   string `json:"key"`
	Total int    `json:"total"`
	// ByLanguage is sorted by descending count, then in rule.Languages order, others by name.
	ByLanguage []LangCount `json:"by_language"`
}

// IndicatorCounts returns the corpus counts of keys, from the table materialized by the
// last ingest. negated selects counts among exclusions instead of positive tests. Keys
// no rule has are absent from the map.
func (c *Catalog) IndicatorCounts(ctx context.Context, keys []string, negated bool) (map[string]Count, error) {
	out := map[string]Count{}
	const batch = 400
	for i := 0; i < len(keys); i += batch {
		part := keys[i:min(i+batch, len(keys))]
		// The list is padded to one of a few lengths with its last key (a repeat
		// changes nothing in IN), so a handful of statements serve every rule page
		// prepared.
		n := batch
		for _, size := range []int{8, 32, 128} {
			if len(part) <= size {
				n = size
				break
			}
		}
		args := make([]any, 0, n+1)
		args = append(args, b2i(negated))
		for _, k := range part {
			args = append(args, k)
		}
		for len(args) < n+1 {
			args = append(args, part[len(part)-1])
		}
		rows, err := c.query(ctx, `SELECT key, language, rules FROM indicator_counts WHERE negated=? AND key IN (?`+
			strings.Repeat(",?", n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("indicator counts: %w", err)
		}
		for rows.Next() {
			var k, lang string
			var n int
			if err := rows.Scan(&k, &lang, &n); err != nil {
				rows.Close()
				return nil, err
			}
			cnt := out[k]
			cnt.Key = k
			cnt.Total += n
			cnt.ByLanguage = append(cnt.ByLanguage, LangCount{rule.Language(lang), n})
			out[k] = cnt
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for k, cnt := range out {
		SortLangCounts(cnt.ByLanguage)
		out[k] = cnt
	}
	return out, nil
}

// langOrder breaks ties between languages as the reference pages do ("sigma 1, kusto 1").
var langOrder = func() map[rule.Language]int {
	m := map[rule.Language]int{}
	for i, l := range rule.Languages {
		m[l] = i + 1
	}
	return m
}()

// SortLangCounts orders counts as pages show them: descending, ties in rule.Languages order, then by name.
func SortLangCounts(xs []LangCount) {
	rank := func(l rule.Language) int {
		if r, ok := langOrder[l]; ok {
			return r
		}
		return len(langOrder) + 1
	}
	sort.Slice(xs, func(i, j int) bool {
		if xs[i].Rules != xs[j].Rules {
			return xs[i].Rules > xs[j].Rules
		}
		if ri, rj := rank(xs[i].Language), rank(xs[j].Language); ri != rj {
			return ri < rj
		}
		return xs[i].Language < xs[j].Language
	})
}

// RuleIndicatorCounts returns the positive-test counts of every indicator of r.
func (c *Catalog) RuleIndicatorCounts(ctx context.Context, r *rule.Rule) (map[string]Count, error) {
	keys := make([]string, 0, len(r.Indicators))
	for _, in := range r.Indicators {
		if !in.Negated {
			keys = append(keys, in.Key)
		}
	}
	return c.IndicatorCounts(ctx, keys, false)
}

// IndicatorUse is one rule testing an indicator key, with the field and value as that
// rule writes them.
type IndicatorUse struct {
	Summary
	Field   string    `json:"field"`
	Kind    rule.Kind `json:"kind"`
	Value   string    `json:"value"`
	Negated bool      `json:"negated,omitempty"`
	Stage   int       `json:"stage"`
}

// RulesByIndicatorKey lists the rules having indicator key, positive tests first, then
// by language and title. limit <= 0 means no limit.
func (c *Catalog) RulesByIndicatorKey(ctx context.Context, key string, limit int) ([]IndicatorUse, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := c.query(ctx, `SELECT `+summaryCols+`, i.field, i.kind, i.value, i.negated, i.stage
		FROM indicators i JOIN rules r ON r.pk=i.rule_pk WHERE i.key=?
		ORDER BY i.negated, r.language, r.title_fold, r.id LIMIT ?`, key, limit)
	if err != nil {
		return nil, fmt.Errorf("rules by indicator: %w", err)
	}
	defer rows.Close()
	var out []IndicatorUse
	for rows.Next() {
		var u IndicatorUse
		var kind string
		var neg int
		s, err := scanSummary(rows, &u.Field, &kind, &u.Value, &neg, &u.Stage)
		if err != nil {
			return nil, err
		}
		u.Summary, u.Kind, u.Negated = s, rule.Kind(kind), neg != 0
		out = append(out, u)
	}
	return out, rows.Err()
}

// Tactics returns the ATT&CK tactics stored by the last ingest with reference data, in
// matrix order (empty when no ingest had --data).
func (c *Catalog) Tactics(ctx context.Context) ([]Tactic, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT short, id, name, url, ord FROM tactics ORDER BY ord, short`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tactic
	for rows.Next() {
		var t Tactic
		if err := rows.Scan(&t.Short, &t.ID, &t.Name, &t.URL, &t.Order); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Techniques returns stored ATT&CK techniques: those with the given ids, or all of them
// when ids is empty, by id.
func (c *Catalog) Techniques(ctx context.Context, ids ...string) ([]Technique, error) {
	q := `SELECT id, name, parent, tactics, revoked, revoked_by, deprecated, url FROM techniques`
	var args []any
	if len(ids) > 0 {
		q += ` WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, strings.ToUpper(id))
		}
	}
	rows, err := c.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Technique
	for rows.Next() {
		var t Technique
		var tac string
		var rev, dep int
		if err := rows.Scan(&t.ID, &t.Name, &t.Parent, &tac, &rev, &t.RevokedBy, &dep, &t.URL); err != nil {
			return nil, err
		}
		if tac != "" {
			t.Tactics = strings.Split(tac, ",")
		}
		t.Revoked, t.Deprecated = rev != 0, dep != 0
		out = append(out, t)
	}
	return out, rows.Err()
}

// Diag is a stored diagnostic with the rule it belongs to (Rule nil for file-level ones).
type Diag struct {
	rule.Diagnostic
	Rule *Summary `json:"rule,omitempty"`
	// Path is the absolute file path as ingested.
	Path string `json:"path"`
}

// DiagFilter selects diagnostics; zero fields match everything.
type DiagFilter struct {
	Language rule.Language
	Severity rule.Severity
	Code     string
	Limit    int
}

// Diagnostics lists stored diagnostics, errors first, then by file and line.
func (c *Catalog) Diagnostics(ctx context.Context, f DiagFilter) ([]Diag, error) {
	q := `SELECT d.severity, d.code, d.file, d.line, d.col, d.message, fi.path, r.pk IS NOT NULL,
		coalesce(r.language,''), coalesce(r.id,''), coalesce(r.title,''), coalesce(r.repo,''), coalesce(r.path,'')
		FROM diagnostics d JOIN files fi ON fi.id=d.file_id LEFT JOIN rules r ON r.pk=d.rule_pk WHERE 1=1`
	var args []any
	if f.Language != "" {
		q += ` AND fi.language=?`
		args = append(args, string(f.Language))
	}
	if f.Severity != "" {
		q += ` AND d.severity=?`
		args = append(args, string(f.Severity))
	}
	if f.Code != "" {
		q += ` AND d.code=?`
		args = append(args, f.Code)
	}
	q += ` ORDER BY d.severity='error' DESC, fi.path, d.line, d.col LIMIT ?`
	lim := f.Limit
	if lim <= 0 {
		lim = -1
	}
	args = append(args, lim)
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("diagnostics: %w", err)
	}
	defer rows.Close()
	var out []Diag
	for rows.Next() {
		var d Diag
		var sev, lang string
		var hasRule bool
		var s Summary
		if err := rows.Scan(&sev, &d.Code, &d.Pos.File, &d.Pos.Line, &d.Pos.Col, &d.Message, &d.Path, &hasRule,
			&lang, &s.ID, &s.Title, &s.Repo, &s.Path); err != nil {
			return nil, err
		}
		d.Severity = rule.Severity(sev)
		if hasRule {
			s.Language = rule.Language(lang)
			d.Rule = &s
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// sortLangCounts is SortLangCounts (kept for callers inside the package).
func sortLangCounts(xs []LangCount) { SortLangCounts(xs) }
