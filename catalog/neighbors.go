package catalog

// Neighbors in the catalog: equivalence classes and stricter/broader relations between
// rules. They are computed outside the catalog (package neighbors, wired by
// cmd/ruledex) over every stored rule and handed in through SyncNeighbors; the catalog
// stores them and answers the rule page, the class page and the overlap report.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/ruledex/ruledex/rule"
)

const neighborsSchema = `
CREATE TABLE IF NOT EXISTS eq_classes (
	rule_pk  INTEGER PRIMARY KEY,
	class_id TEXT NOT NULL,
	shape    TEXT NOT NULL,
	provable INTEGER NOT NULL,
	basis    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS eq_classes_class ON eq_classes (class_id);
CREATE TABLE IF NOT EXISTS neighbors (
	rule_pk    INTEGER NOT NULL,
	other_pk   INTEGER NOT NULL,
	relation   TEXT NOT NULL, -- equivalent, stricter (other is stricter), broader (other is broader)
	difference TEXT NOT NULL,
	basis      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS neighbors_rule ON neighbors (rule_pk, relation);
`

const metaNeighborsSig = "neighbors_sig"

// ensureNeighborSchema creates the neighbor tables, and adds the basis columns to
// tables an older ruledex created (their rows are recomputed by the next sync, which
// a new logic version forces).
func (c *Catalog) ensureNeighborSchema(ctx context.Context) error {
	if c.neighborSchemaOK.Load() {
		return nil
	}
	if _, err := c.db.ExecContext(ctx, neighborsSchema); err != nil {
		return fmt.Errorf("neighbors schema: %w", err)
	}
	for _, table := range []string{"eq_classes", "neighbors"} {
		has, err := c.hasColumn(ctx, table, "basis")
		if err != nil {
			return fmt.Errorf("neighbors schema: %s: %w", table, err)
		}
		if !has {
			if _, err := c.db.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN basis TEXT NOT NULL DEFAULT ''`); err != nil {
				return fmt.Errorf("neighbors schema: %s: add basis: %w", table, err)
			}
		}
	}
	c.neighborSchemaOK.Store(true)
	return nil
}

func (c *Catalog) hasColumn(ctx context.Context, table, column string) (bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, err
		}
		if name == column {
			return true, nil
		}
	}
	return false, rows.Err()
}

// StoredRule is a rule with its catalog key.
type StoredRule struct {
	PK   int64
	Rule *rule.Rule
}

// NeighborInput is what a neighbors computation hands back for storage.
type NeighborInput struct {
	// Classes maps rule pk to its equivalence class id and shape.
	Classes map[int64]ClassOf
	// Relations are directed: Rule's page lists Other under Relation.
	Relations []Relation
}

// ClassOf is a rule's equivalence class.
type ClassOf struct {
	ID       string
	Shape    string
	Provable bool
	// Basis is "field-map" when the class holds rules equivalent only through the
	// field map (it may then span languages), else "same-telemetry".
	Basis string
}

// Relation is one row of a rule's Neighbors section.
type Relation struct {
	Rule, Other int64
	Relation    string // "equivalent", "stricter", "broader"
	Difference  string
	Basis       string // "same-telemetry" or "field-map"
}

// NeighborFunc computes neighbors over all rules.
type NeighborFunc func(rules []StoredRule) NeighborInput

// rulesSig fingerprints the stored rule set; neighbors are recomputed only when it or
// the caller's fingerprint (the logic's version, the event data) changes.
func rulesSig(ctx context.Context, tx *sql.Tx, extra string) (string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT pk, `+ruleSig+` FROM rules r ORDER BY pk`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	h := sha256.New()
	h.Write([]byte(extra))
	for rows.Next() {
		var pk int64
		var sig string
		if err := rows.Scan(&pk, &sig); err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d %s\n", pk, sig)
	}
	return hex.EncodeToString(h.Sum(nil)), rows.Err()
}

// SyncNeighbors recomputes neighbors when the rules (or fingerprint) changed since the
// last run, in one transaction; it reports whether it recomputed.
func (c *Catalog) SyncNeighbors(ctx context.Context, fingerprint string, compute NeighborFunc) (bool, error) {
	if err := c.ensureNeighborSchema(ctx); err != nil {
		return false, err
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("neighbors: begin: %w", err)
	}
	defer tx.Rollback()
	sig, err := rulesSig(ctx, tx, fingerprint)
	if err != nil {
		return false, fmt.Errorf("neighbors: %w", err)
	}
	var old string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key=?`, metaNeighborsSig).Scan(&old); err != nil && err != sql.ErrNoRows {
		return false, err
	}
	if old == sig {
		return false, nil
	}
	rules, err := allRules(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("neighbors: %w", err)
	}
	in := compute(rules)
	for _, q := range []string{`DELETE FROM eq_classes`, `DELETE FROM neighbors`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return false, err
		}
	}
	insC, err := tx.PrepareContext(ctx, `INSERT INTO eq_classes(rule_pk, class_id, shape, provable, basis) VALUES(?,?,?,?,?)`)
	if err != nil {
		return false, err
	}
	defer insC.Close()
	for pk, cl := range in.Classes {
		if _, err := insC.ExecContext(ctx, pk, cl.ID, cl.Shape, b2i(cl.Provable), cl.Basis); err != nil {
			return false, err
		}
	}
	insN, err := tx.PrepareContext(ctx, `INSERT INTO neighbors(rule_pk, other_pk, relation, difference, basis) VALUES(?,?,?,?,?)`)
	if err != nil {
		return false, err
	}
	defer insN.Close()
	for _, r := range in.Relations {
		if _, err := insN.ExecContext(ctx, r.Rule, r.Other, r.Relation, r.Difference, r.Basis); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)`, metaNeighborsSig, sig); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("neighbors: commit: %w", err)
	}
	return true, nil
}

// allRules decodes every stored rule's IR, with the catalog's (deduplicated) id.
func allRules(ctx context.Context, tx *sql.Tx) ([]StoredRule, error) {
	rows, err := tx.QueryContext(ctx, `SELECT pk, id, ir FROM rules ORDER BY pk`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredRule
	for rows.Next() {
		var pk int64
		var id string
		var ir []byte
		if err := rows.Scan(&pk, &id, &ir); err != nil {
			return nil, err
		}
		js, err := decodeIR(ir)
		if err != nil {
			continue // a row that no longer decodes has no neighbors, not a failed sync
		}
		r := new(rule.Rule)
		if json.Unmarshal(js, r) != nil {
			continue
		}
		r.ID = id
		out = append(out, StoredRule{PK: pk, Rule: r})
	}
	return out, rows.Err()
}

// hasNeighborTables reports whether SyncNeighbors ever ran.
func (c *Catalog) hasNeighborTables(ctx context.Context) bool {
	var n int
	err := c.queryRow(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='neighbors'`).Scan(&n)
	return err == nil && n > 0
}

// Neighbor is one related rule as a rule page lists it.
type Neighbor struct {
	Summary
	// Basis is "same-telemetry" (proved on the same fields and events) or "field-map"
	// (proved through field and telemetry mappings, which Difference names).
	Basis      string `json:"basis"`
	Difference string `json:"difference"`
}

// NeighborSet is a rule's Neighbors section. ClassID is empty unless the rule's
// equivalence class has two or more members.
type NeighborSet struct {
	ClassID    string     `json:"class_id,omitempty"`
	ClassSize  int        `json:"class_size,omitempty"`
	ClassBasis string     `json:"class_basis,omitempty"`
	Shape      string     `json:"shape,omitempty"`
	Equivalent []Neighbor `json:"equivalent"`
	Stricter   []Neighbor `json:"stricter"`
	Broader    []Neighbor `json:"broader"`
}

func (c *Catalog) rulePK(ctx context.Context, lang rule.Language, id string) (int64, error) {
	var pk int64
	err := c.queryRow(ctx, `SELECT pk FROM rules WHERE language=? AND id=?`, string(lang), id).Scan(&pk)
	if err == sql.ErrNoRows {
		return 0, &LookupError{Ref: string(lang) + "/" + id}
	}
	return pk, err
}

// Neighbors returns a rule's equivalent, stricter and broader rules. Empty (not an
// error) before neighbors were ever computed.
func (c *Catalog) Neighbors(ctx context.Context, lang rule.Language, id string) (*NeighborSet, error) {
	pk, err := c.rulePK(ctx, lang, id)
	if err != nil {
		return nil, err
	}
	out := &NeighborSet{Equivalent: []Neighbor{}, Stricter: []Neighbor{}, Broader: []Neighbor{}}
	if !c.hasNeighborTables(ctx) {
		return out, nil
	}
	if err := c.ensureNeighborSchema(ctx); err != nil {
		return nil, err
	}
	err = c.queryRow(ctx, `SELECT e.class_id, e.shape, e.basis, (SELECT count(*) FROM eq_classes x WHERE x.class_id=e.class_id)
		FROM eq_classes e WHERE e.rule_pk=?`, pk).Scan(&out.ClassID, &out.Shape, &out.ClassBasis, &out.ClassSize)
	if err != nil && err != sql.ErrNoRows {
		return nil, err
	}
	if out.ClassSize < 2 {
		// A rule alone is no class: pages never show "1 rules".
		out.ClassID, out.ClassSize, out.ClassBasis = "", 0, ""
	}
	rows, err := c.query(ctx, `SELECT `+summaryCols+`, n.relation, n.difference, n.basis
		FROM neighbors n JOIN rules r ON r.pk = n.other_pk WHERE n.rule_pk=? ORDER BY n.relation, r.language, r.title`, pk)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var rel, diff, basis string
		s, err := scanSummary(rows, &rel, &diff, &basis)
		if err != nil {
			return nil, err
		}
		n := Neighbor{Summary: s, Basis: basis, Difference: diff}
		switch rel {
		case "equivalent":
			out.Equivalent = append(out.Equivalent, n)
		case "stricter":
			out.Stricter = append(out.Stricter, n)
		case "broader":
			out.Broader = append(out.Broader, n)
		}
	}
	return out, rows.Err()
}

// EqClass is an equivalence class page.
type EqClass struct {
	ID    string `json:"id"`
	Shape string `json:"shape"`
	// Basis is "field-map" when members are equivalent only through field and
	// telemetry mappings (the class may then span languages), else "same-telemetry".
	Basis   string         `json:"basis"`
	Members []*rule.Rule   `json:"members"`
	ByLang  map[string]int `json:"by_language"`
}

// EqClassByID returns the members of an equivalence class (full IR, for their stages).
func (c *Catalog) EqClassByID(ctx context.Context, id string) (*EqClass, error) {
	if !c.hasNeighborTables(ctx) {
		return nil, &LookupError{Ref: "eq/" + id}
	}
	if err := c.ensureNeighborSchema(ctx); err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT r.pk, r.id, r.ir, e.shape, e.basis FROM eq_classes e JOIN rules r ON r.pk = e.rule_pk
		WHERE e.class_id=? ORDER BY r.language, r.title`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &EqClass{ID: id, ByLang: map[string]int{}}
	for rows.Next() {
		var pk int64
		var rid string
		var ir []byte
		if err := rows.Scan(&pk, &rid, &ir, &out.Shape, &out.Basis); err != nil {
			return nil, err
		}
		js, err := decodeIR(ir)
		if err != nil {
			return nil, err
		}
		r := new(rule.Rule)
		if err := json.Unmarshal(js, r); err != nil {
			return nil, err
		}
		r.ID = rid
		out.Members = append(out.Members, r)
		out.ByLang[string(r.Language)]++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out.Members) < 2 {
		// A class of one is no class (see Neighbors).
		return nil, &LookupError{Ref: "eq/" + id}
	}
	return out, nil
}

// OverlapReport summarizes duplication across the corpus.
type OverlapReport struct {
	Rules          int            `json:"rules"`
	Classes        int            `json:"classes"`
	SharedClasses  int            `json:"shared_classes"` // classes with two or more members
	LargestClasses []ClassSummary `json:"largest_classes"`
	// SizeHistogram maps a class size to how many classes have it.
	SizeHistogram map[int]int `json:"size_histogram"`
	// CrossSource counts equivalent rule pairs between two sources ("a ⇄ b").
	CrossSource map[string]int `json:"cross_source"`
	// CrossLanguage counts classes whose members span several languages.
	CrossLanguage int `json:"cross_language_classes"`
	// CrossLanguageRelations counts related rule pairs (equivalent, stricter or
	// broader) whose rules are in different languages, each pair once.
	CrossLanguageRelations int `json:"cross_language_relations"`
	// ByLanguagePair counts related pairs per pair of languages ("kusto ⇄ sigma") and
	// tier ("same-telemetry", "field-map"), each pair once.
	ByLanguagePair map[string]map[string]int `json:"by_language_pair"`
	StricterPairs  int                       `json:"stricter_pairs"`
	LongestChains  [][]Summary               `json:"longest_chains"`
	MostBroadened  []ChainSummary            `json:"most_stricter_alternatives"`
}

// ClassSummary is one equivalence class in the overlap report.
type ClassSummary struct {
	ID        string         `json:"id"`
	Size      int            `json:"size"`
	Languages map[string]int `json:"languages"`
	Example   string         `json:"example"`
}

// ChainSummary is a rule with many stricter alternatives.
type ChainSummary struct {
	Summary
	Stricter int `json:"stricter"`
}

// Overlap computes the overlap report from the stored neighbors.
func (c *Catalog) Overlap(ctx context.Context, largest int) (*OverlapReport, error) {
	out := &OverlapReport{SizeHistogram: map[int]int{}, CrossSource: map[string]int{}, LargestClasses: []ClassSummary{},
		LongestChains: [][]Summary{}, MostBroadened: []ChainSummary{}, ByLanguagePair: map[string]map[string]int{}}
	if !c.hasNeighborTables(ctx) {
		return out, nil
	}
	if err := c.ensureNeighborSchema(ctx); err != nil {
		return nil, err
	}
	if err := c.languagePairs(ctx, out); err != nil {
		return nil, err
	}
	type member struct {
		pk         int64
		lang, repo string
		title, rid string
	}
	classes := map[string][]member{}
	rows, err := c.db.QueryContext(ctx, `SELECT e.class_id, r.pk, r.language, r.repo, r.title, r.id FROM eq_classes e JOIN rules r ON r.pk=e.rule_pk`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var m member
		if err := rows.Scan(&id, &m.pk, &m.lang, &m.repo, &m.title, &m.rid); err != nil {
			rows.Close()
			return nil, err
		}
		classes[id] = append(classes[id], m)
		out.Rules++
	}
	rows.Close()
	out.Classes = len(classes)
	var sums []ClassSummary
	for id, ms := range classes {
		out.SizeHistogram[len(ms)]++
		if len(ms) < 2 {
			continue
		}
		out.SharedClasses++
		cs := ClassSummary{ID: id, Size: len(ms), Languages: map[string]int{}, Example: ms[0].title}
		for _, m := range ms {
			cs.Languages[m.lang]++
		}
		if len(cs.Languages) > 1 {
			out.CrossLanguage++
		}
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				a, b := ms[i].repo, ms[j].repo
				if a > b {
					a, b = b, a
				}
				out.CrossSource[a+" ⇄ "+b]++
			}
		}
		sums = append(sums, cs)
	}
	sort.Slice(sums, func(i, j int) bool {
		if sums[i].Size != sums[j].Size {
			return sums[i].Size > sums[j].Size
		}
		return sums[i].ID < sums[j].ID
	})
	if len(sums) > largest {
		sums = sums[:largest]
	}
	out.LargestClasses = append(out.LargestClasses, sums...)

	// Stricter edges: rule_pk's page lists other_pk as stricter.
	stricter := map[int64][]int64{}
	rows, err = c.db.QueryContext(ctx, `SELECT rule_pk, other_pk FROM neighbors WHERE relation='stricter'`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var a, b int64
		if err := rows.Scan(&a, &b); err != nil {
			rows.Close()
			return nil, err
		}
		stricter[a] = append(stricter[a], b)
		out.StricterPairs++
	}
	rows.Close()
	// Longest chains broad → strict (the relation is a partial order, so no cycles;
	// memoized depth-first search).
	memo := map[int64][]int64{}
	var longest func(pk int64, depth int) []int64
	longest = func(pk int64, depth int) []int64 {
		if p, ok := memo[pk]; ok {
			return p
		}
		best := []int64{pk}
		if depth < 64 {
			for _, s := range stricter[pk] {
				if p := longest(s, depth+1); len(p)+1 > len(best) {
					best = append([]int64{pk}, p...)
				}
			}
		}
		memo[pk] = best
		return best
	}
	var chains [][]int64
	for pk := range stricter {
		chains = append(chains, longest(pk, 0))
	}
	sort.Slice(chains, func(i, j int) bool {
		if len(chains[i]) != len(chains[j]) {
			return len(chains[i]) > len(chains[j])
		}
		return chains[i][0] < chains[j][0]
	})
	for i := 0; i < len(chains) && i < 5; i++ {
		var ch []Summary
		for _, pk := range chains[i] {
			s, err := c.summaryByPK(ctx, pk)
			if err != nil {
				return nil, err
			}
			ch = append(ch, s)
		}
		out.LongestChains = append(out.LongestChains, ch)
	}
	var most []int64
	for pk := range stricter {
		most = append(most, pk)
	}
	sort.Slice(most, func(i, j int) bool {
		if len(stricter[most[i]]) != len(stricter[most[j]]) {
			return len(stricter[most[i]]) > len(stricter[most[j]])
		}
		return most[i] < most[j]
	})
	for i := 0; i < len(most) && i < 10; i++ {
		s, err := c.summaryByPK(ctx, most[i])
		if err != nil {
			return nil, err
		}
		out.MostBroadened = append(out.MostBroadened, ChainSummary{Summary: s, Stricter: len(stricter[most[i]])})
	}
	return out, nil
}

// languagePairs fills the cross-language counts. Relations are stored on both sides,
// so each pair is counted from its smaller pk.
func (c *Catalog) languagePairs(ctx context.Context, out *OverlapReport) error {
	rows, err := c.db.QueryContext(ctx, `SELECT ra.language, rb.language, n.basis FROM neighbors n
		JOIN rules ra ON ra.pk = n.rule_pk JOIN rules rb ON rb.pk = n.other_pk WHERE n.rule_pk < n.other_pk`)
	if err != nil {
		return fmt.Errorf("overlap: language pairs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, b, basis string
		if err := rows.Scan(&a, &b, &basis); err != nil {
			return fmt.Errorf("overlap: language pairs: %w", err)
		}
		if a > b {
			a, b = b, a
		}
		if a != b {
			out.CrossLanguageRelations++
		}
		k := a + " ⇄ " + b
		if out.ByLanguagePair[k] == nil {
			out.ByLanguagePair[k] = map[string]int{}
		}
		out.ByLanguagePair[k][basis]++
	}
	return rows.Err()
}

func (c *Catalog) summaryByPK(ctx context.Context, pk int64) (Summary, error) {
	return scanSummary(c.db.QueryRowContext(ctx, `SELECT `+summaryCols+` FROM rules r WHERE r.pk=?`, pk))
}
