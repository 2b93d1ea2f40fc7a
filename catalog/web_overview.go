package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Overview is the corpus summary the home page shows.
type Overview struct {
	Rules      int           `json:"rules"`
	Detections int           `json:"detections"`
	Files      int           `json:"files"`
	ByLanguage []CountBy     `json:"by_language"`
	BySource   []SourceCount `json:"by_source"`
	ByClass    []CountBy     `json:"by_class"`
	Shared     []SharedValue `json:"most_shared_indicators"`
	Diags      DiagSummary   `json:"diagnostics"`
	Techniques int           `json:"techniques_covered"`
}

// CountBy is a name with a count.
type CountBy struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// SourceCount is the rules of one source repository in one language.
type SourceCount struct {
	Source   string `json:"source"`
	RepoURL  string `json:"repo_url,omitempty"`
	Language string `json:"language"`
	Rules    int    `json:"rules"`
}

// SharedValue is an indicator tested by many rules.
type SharedValue struct {
	Field      string         `json:"field"` // canonical
	Kind       string         `json:"kind"`
	Value      string         `json:"value"` // as one rule writes it
	Transforms []string       `json:"transforms,omitempty"`
	Key        string         `json:"key"`
	Rules      int            `json:"rules"`
	ByLanguage map[string]int `json:"by_language"`
}

// DiagSummary counts diagnostics.
type DiagSummary struct {
	RulesWithErrors int       `json:"rules_with_errors"`
	Errors          int       `json:"errors"`
	Warnings        int       `json:"warnings"`
	TopCodes        []CodeSum `json:"top_codes"`
}

// CodeSum is the count of one diagnostic code.
type CodeSum struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Count    int    `json:"count"`
}

// Overview computes the home page summary from one snapshot.
func (c *Catalog) Overview(ctx context.Context, shared int) (*Overview, error) {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	defer tx.Rollback()
	o := &Overview{ByLanguage: []CountBy{}, BySource: []SourceCount{}, ByClass: []CountBy{}, Shared: []SharedValue{}}
	o.Diags.TopCodes = []CodeSum{}
	if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(class IN ('detection','')), 0), coalesce(sum(has_errors), 0) FROM rules`).
		Scan(&o.Rules, &o.Detections, &o.Diags.RulesWithErrors); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE language <> ''`).Scan(&o.Files); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT substr(t.technique, 1, 5)) FROM rule_techniques t JOIN rules r ON r.pk = t.rule_pk WHERE r.class IN ('detection','')`).
		Scan(&o.Techniques); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	counts := func(q string, dst *[]CountBy) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var cb CountBy
			if err := rows.Scan(&cb.Name, &cb.Count); err != nil {
				return err
			}
			*dst = append(*dst, cb)
		}
		return rows.Err()
	}
	if err := counts(`SELECT language, count(*) FROM rules GROUP BY 1 ORDER BY 2 DESC, 1`, &o.ByLanguage); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	if err := counts(`SELECT CASE class WHEN '' THEN 'detection' ELSE class END, count(*) FROM rules GROUP BY 1 ORDER BY 2 DESC, 1`, &o.ByClass); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT r.repo, coalesce(s.repo_url, ''), r.language, count(*) FROM rules r LEFT JOIN sources s ON s.id = r.source_id
		GROUP BY r.repo, r.language ORDER BY 4 DESC, 1`)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	for rows.Next() {
		var s SourceCount
		if err := rows.Scan(&s.Source, &s.RepoURL, &s.Language, &s.Rules); err != nil {
			rows.Close()
			return nil, fmt.Errorf("overview: %w", err)
		}
		o.BySource = append(o.BySource, s)
	}
	rows.Close()

	// Most shared: the keys with the most rules over all languages (positive tests only,
	// exclusions are a different question).
	rows, err = tx.QueryContext(ctx, `SELECT key, sum(rules) FROM indicator_counts WHERE negated = 0
		GROUP BY key ORDER BY 2 DESC, 1 LIMIT ?`, shared)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	for rows.Next() {
		var s SharedValue
		if err := rows.Scan(&s.Key, &s.Rules); err != nil {
			rows.Close()
			return nil, fmt.Errorf("overview: %w", err)
		}
		o.Shared = append(o.Shared, s)
	}
	rows.Close()
	for i := range o.Shared {
		s := &o.Shared[i]
		var tr string
		if err := tx.QueryRowContext(ctx, `SELECT canonical, kind, value, transforms FROM indicators WHERE key = ? AND negated = 0 LIMIT 1`, s.Key).
			Scan(&s.Field, &s.Kind, &s.Value, &tr); err != nil {
			return nil, fmt.Errorf("overview: %w", err)
		}
		if tr != "" {
			s.Transforms = strings.Split(tr, "|")
		}
		s.ByLanguage, err = langCounts(ctx, tx, s.Key, false)
		if err != nil {
			return nil, fmt.Errorf("overview: %w", err)
		}
	}

	rows, err = tx.QueryContext(ctx, `SELECT code, severity, count(*) FROM diagnostics GROUP BY 1, 2 ORDER BY 3 DESC, 1`)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	for rows.Next() {
		var d CodeSum
		if err := rows.Scan(&d.Code, &d.Severity, &d.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("overview: %w", err)
		}
		switch d.Severity {
		case "error":
			o.Diags.Errors += d.Count
		default:
			o.Diags.Warnings += d.Count
		}
		if len(o.Diags.TopCodes) < 15 {
			o.Diags.TopCodes = append(o.Diags.TopCodes, d)
		}
	}
	rows.Close()
	return o, rows.Err()
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func langCounts(ctx context.Context, db querier, key string, negated bool) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT language, rules FROM indicator_counts WHERE key = ? AND negated = ?`, key, negated)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var l string
		var n int
		if err := rows.Scan(&l, &n); err != nil {
			return nil, err
		}
		out[l] = n
	}
	return out, rows.Err()
}

// IndicatorRule is a rule that tests an indicator, with the field as it writes it.
type IndicatorRule struct {
	RuleRef
	Field      string   `json:"field"`
	Kind       string   `json:"kind"`
	Value      string   `json:"value"`
	Transforms []string `json:"transforms,omitempty"`
	Negated    bool     `json:"negated,omitempty"`
	Stage      int      `json:"stage"`
}

// IndicatorRules lists every rule with an indicator of the given key (both positive
// tests and exclusions), by language then title.
func (c *Catalog) IndicatorRules(ctx context.Context, key string) ([]IndicatorRule, error) {
	rows, err := c.query(ctx, `SELECT `+ruleRefCols+`, i.field, i.kind, i.value, i.transforms, i.negated, i.stage
		FROM indicators i JOIN rules r ON r.pk = i.rule_pk WHERE i.key = ?
		ORDER BY r.language, i.negated, r.title_fold, r.id`, key)
	if err != nil {
		return nil, fmt.Errorf("indicator rules: %w", err)
	}
	defer rows.Close()
	out := []IndicatorRule{}
	for rows.Next() {
		var ir IndicatorRule
		var tr string
		if err := rows.Scan(&ir.ID, &ir.Language, &ir.Title, &ir.Severity, &ir.Status, &ir.Class, &ir.Source, &ir.Path,
			&ir.Field, &ir.Kind, &ir.Value, &tr, &ir.Negated, &ir.Stage); err != nil {
			return nil, fmt.Errorf("indicator rules: %w", err)
		}
		if tr != "" {
			ir.Transforms = strings.Split(tr, "|")
		}
		out = append(out, ir)
	}
	return out, rows.Err()
}
