package catalog

import (
	"context"
	"fmt"
	"strings"
)

// TechniqueTag is one (rule, technique) link of a detection rule.
type TechniqueTag struct {
	RulePK    int64
	Language  string
	Technique string
}

// TechniqueTags returns every technique tag of detection rules (class detection), the
// input of the ATT&CK coverage matrix. Empty filter values do not filter.
func (c *Catalog) TechniqueTags(ctx context.Context, language, source, severity string) ([]TechniqueTag, error) {
	q := `SELECT r.pk, r.language, t.technique FROM rule_techniques t JOIN rules r ON r.pk = t.rule_pk
		WHERE r.class IN ('detection', '')`
	var args []any
	for _, f := range []struct{ col, v string }{{"r.language", language}, {"r.repo", source}, {"r.severity", severity}} {
		if f.v != "" {
			q += " AND " + f.col + " = ?"
			args = append(args, f.v)
		}
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("technique tags: %w", err)
	}
	defer rows.Close()
	var out []TechniqueTag
	for rows.Next() {
		var t TechniqueTag
		if err := rows.Scan(&t.RulePK, &t.Language, &t.Technique); err != nil {
			return nil, fmt.Errorf("technique tags: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RuleRef is a rule as listed on technique, tactic and indicator pages.
type RuleRef struct {
	ID       string `json:"id"`
	Language string `json:"language"`
	Title    string `json:"title"`
	Severity string `json:"severity,omitempty"`
	Status   string `json:"status,omitempty"`
	Class    string `json:"class"`
	Source   string `json:"source"`
	Path     string `json:"path"`
	// Via is what linked the rule to the page: the exact technique ID it tags (a
	// sub-technique on its parent's page).
	Via string `json:"via,omitempty"`
}

func (c *Catalog) ruleRefs(ctx context.Context, q string, args ...any) ([]RuleRef, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []RuleRef{}
	for rows.Next() {
		var r RuleRef
		if err := rows.Scan(&r.ID, &r.Language, &r.Title, &r.Severity, &r.Status, &r.Class, &r.Source, &r.Path, &r.Via); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const ruleRefCols = `r.id, r.language, r.title, r.severity, r.status, r.class, r.repo, r.path`

// RulesWithTechnique lists the rules tagging technique id or, for a parent, any of its
// sub-techniques; every class, detections first, then by language and title. A rule
// tagging several matching IDs appears once (Via is the smallest ID). Sub-techniques
// are the range [id".", id"/") ('/' follows '.'), which the technique index serves; a
// LIKE pattern made SQLite scan every rule (ids are stored upper-case).
func (c *Catalog) RulesWithTechnique(ctx context.Context, id string) ([]RuleRef, error) {
	id = strings.ToUpper(id)
	out, err := c.ruleRefs(ctx, `SELECT `+ruleRefCols+`, min(t.technique) FROM rule_techniques t JOIN rules r ON r.pk = t.rule_pk
		WHERE t.technique = ? OR (t.technique >= ? AND t.technique < ?)
		GROUP BY r.pk
		ORDER BY r.class NOT IN ('detection', ''), r.language, r.title_fold, r.id`, id, id+".", id+"/")
	if err != nil {
		return nil, fmt.Errorf("rules with technique %s: %w", id, err)
	}
	return out, nil
}

// RulesWithTactic lists the rules naming tactic (short name), like RulesWithTechnique.
func (c *Catalog) RulesWithTactic(ctx context.Context, short string) ([]RuleRef, error) {
	out, err := c.ruleRefs(ctx, `SELECT `+ruleRefCols+`, '' FROM rule_tactics t JOIN rules r ON r.pk = t.rule_pk
		WHERE t.tactic = ?
		GROUP BY r.pk
		ORDER BY r.class NOT IN ('detection', ''), r.language, r.title_fold, r.id`, short)
	if err != nil {
		return nil, fmt.Errorf("rules with tactic %s: %w", short, err)
	}
	return out, nil
}
