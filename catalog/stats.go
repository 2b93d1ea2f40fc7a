package catalog

import (
	"context"
	"fmt"
)

// Stats summarizes the catalog.
type Stats struct {
	// Files is every file the ingests walked; RuleFiles those a parser recognized,
	// Skipped the others.
	Files     int `json:"files"`
	RuleFiles int `json:"rule_files"`
	Skipped   int `json:"skipped"`
	Rules     int `json:"rules"`
	// Errors is the number of rules with at least one error diagnostic; FileErrors the
	// number of recognized files with an error that belongs to no rule (e.g. YAML syntax).
	Errors     int `json:"errors"`
	FileErrors int `json:"file_errors"`
	// ErrorsByCode counts, per diagnostic code, the rules (or files, for file-level
	// diagnostics) having an error with that code. WarningsByCode likewise for warnings.
	ErrorsByCode   map[string]int `json:"errors_by_code"`
	Warnings       int            `json:"warnings"`
	WarningsByCode map[string]int `json:"warnings_by_code"`
	// ByLanguage and BySource break the same numbers down.
	ByLanguage map[string]*GroupStats `json:"by_language"`
	BySource   map[string]*GroupStats `json:"by_source"`
	// ByFolder splits sources by the top-level folder of the rule paths
	// ("github.com/SigmaHQ/sigma/rules-emerging-threats"): rules, errors only.
	ByFolder   map[string]*GroupStats `json:"by_folder"`
	Techniques int                    `json:"techniques"` // ATT&CK techniques named in the catalog
	// WarningDiagnostics counts every warning diagnostic (as ingest reports them);
	// WarningRules the rules and rule-less files having at least one. Warnings above
	// counts one per rule and code.
	WarningDiagnostics int `json:"warning_diagnostics"`
	WarningRules       int `json:"warning_rules"`
	// Roots are the folders and files given to ingests, with what the catalog holds
	// under each (see Catalog.Roots).
	Roots []Root `json:"roots"`
}

// GroupStats is the part of Stats belonging to one language or source.
type GroupStats struct {
	Files        int            `json:"files"`
	Rules        int            `json:"rules"`
	Errors       int            `json:"errors"`
	FileErrors   int            `json:"file_errors,omitempty"`
	ErrorsByCode map[string]int `json:"errors_by_code,omitempty"`
	Languages    []string       `json:"languages,omitempty"` // for sources
	RepoURL      string         `json:"repo_url,omitempty"`  // for sources
}

// Stats computes the catalog summary.
func (c *Catalog) Stats(ctx context.Context) (*Stats, error) {
	s := &Stats{ErrorsByCode: map[string]int{}, WarningsByCode: map[string]int{},
		ByLanguage: map[string]*GroupStats{}, BySource: map[string]*GroupStats{}, ByFolder: map[string]*GroupStats{}}
	group := func(m map[string]*GroupStats, k string) *GroupStats {
		g := m[k]
		if g == nil {
			g = &GroupStats{}
			m[k] = g
		}
		return g
	}
	err := c.each(ctx, `SELECT count(*), sum(language<>''), sum(language='') FROM files`, func(sc scanner) error {
		var rf, sk *int
		if err := sc.Scan(&s.Files, &rf, &sk); err != nil {
			return err
		}
		if rf != nil {
			s.RuleFiles, s.Skipped = *rf, *sk
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	queries := []struct {
		q  string
		fn func(sc scanner) error
	}{
		{`SELECT language, count(*) FROM files WHERE language<>'' GROUP BY language`, func(sc scanner) error {
			var k string
			var n int
			if err := sc.Scan(&k, &n); err != nil {
				return err
			}
			group(s.ByLanguage, k).Files = n
			return nil
		}},
		{`SELECT language, count(*), sum(has_errors) FROM rules GROUP BY language`, func(sc scanner) error {
			var k string
			var n, e int
			if err := sc.Scan(&k, &n, &e); err != nil {
				return err
			}
			g := group(s.ByLanguage, k)
			g.Rules, g.Errors = n, e
			s.Rules += n
			s.Errors += e
			return nil
		}},
		{`SELECT s.repo, s.repo_url, f.language, count(DISTINCT f.id), coalesce(sum(f.rules),0) FROM files f JOIN sources s ON s.id=f.source_id
			GROUP BY s.repo, s.repo_url, f.language`, func(sc scanner) error {
			var repo, url, lang string
			var nf, nr int
			if err := sc.Scan(&repo, &url, &lang, &nf, &nr); err != nil {
				return err
			}
			g := group(s.BySource, repo)
			g.Files += nf
			g.Rules += nr
			g.RepoURL = url
			g.Languages = append(g.Languages, lang)
			return nil
		}},
		{`SELECT r.repo, count(*) FROM rules r WHERE has_errors=1 GROUP BY r.repo`, func(sc scanner) error {
			var repo string
			var n int
			if err := sc.Scan(&repo, &n); err != nil {
				return err
			}
			group(s.BySource, repo).Errors = n
			return nil
		}},
		// Per code: distinct rules for rule diagnostics, distinct files for file-level ones.
		{`SELECT d.severity, d.code, f.language, coalesce(r.repo, ''), d.rule_pk IS NULL, count(DISTINCT coalesce(d.rule_pk, -d.file_id))
			FROM diagnostics d JOIN files f ON f.id=d.file_id LEFT JOIN rules r ON r.pk=d.rule_pk
			GROUP BY d.severity, d.code, f.language, r.repo, d.rule_pk IS NULL`, func(sc scanner) error {
			var sev, code, lang, repo string
			var fileLevel bool
			var n int
			if err := sc.Scan(&sev, &code, &lang, &repo, &fileLevel, &n); err != nil {
				return err
			}
			if sev != "error" {
				s.WarningsByCode[code] += n
				s.Warnings += n
				return nil
			}
			s.ErrorsByCode[code] += n
			g := group(s.ByLanguage, lang)
			if g.ErrorsByCode == nil {
				g.ErrorsByCode = map[string]int{}
			}
			g.ErrorsByCode[code] += n
			if repo != "" {
				gs := group(s.BySource, repo)
				if gs.ErrorsByCode == nil {
					gs.ErrorsByCode = map[string]int{}
				}
				gs.ErrorsByCode[code] += n
			}
			return nil
		}},
		{`SELECT f.language, count(DISTINCT f.id) FROM diagnostics d JOIN files f ON f.id=d.file_id
			WHERE d.rule_pk IS NULL AND d.severity='error' GROUP BY f.language`, func(sc scanner) error {
			var lang string
			var n int
			if err := sc.Scan(&lang, &n); err != nil {
				return err
			}
			group(s.ByLanguage, lang).FileErrors = n
			s.FileErrors += n
			return nil
		}},
		{`SELECT repo || '/' || CASE WHEN instr(path, '/') > 0 THEN substr(path, 1, instr(path, '/') - 1) ELSE '.' END AS folder,
			count(*), sum(has_errors) FROM rules GROUP BY folder`, func(sc scanner) error {
			var k string
			var n, e int
			if err := sc.Scan(&k, &n, &e); err != nil {
				return err
			}
			g := group(s.ByFolder, k)
			g.Rules, g.Errors = n, e
			return nil
		}},
		{`SELECT count(DISTINCT technique) FROM rule_techniques`, func(sc scanner) error { return sc.Scan(&s.Techniques) }},
		{`SELECT count(*), count(DISTINCT coalesce(rule_pk, -file_id)) FROM diagnostics WHERE severity <> 'error'`, func(sc scanner) error {
			return sc.Scan(&s.WarningDiagnostics, &s.WarningRules)
		}},
	}
	for _, q := range queries {
		if err := c.each(ctx, q.q, q.fn); err != nil {
			return nil, err
		}
	}
	var err2 error
	if s.Roots, err2 = c.Roots(ctx); err2 != nil {
		return nil, err2
	}
	return s, nil
}

type scanner interface{ Scan(...any) error }

func (c *Catalog) each(ctx context.Context, q string, fn func(scanner) error) error {
	rows, err := c.db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
	}
	return rows.Err()
}
