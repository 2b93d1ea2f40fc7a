package catalog

// Event coverage in the catalog: which rules need which Windows events, which event
// fields they test and the indicators they test there. Coverage itself is computed
// outside the catalog (package winevent, wired by cmd/ruledex) and handed in through
// SyncRuleEvents; the catalog only stores and counts it.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// RuleEvent is one event a rule can match, with the rule's fields in the event's names.
type RuleEvent struct {
	Provider string
	EventID  int
	Via      string
	// Fields maps each field as the rule writes it to the event field it reads there.
	Fields map[string]string
}

// CoverFunc computes the events a rule can match.
type CoverFunc func(*rule.Rule) []RuleEvent

const eventsSchema = `
CREATE TABLE IF NOT EXISTS rule_events (
	rule_pk  INTEGER NOT NULL,
	provider TEXT NOT NULL,
	event_id INTEGER NOT NULL,
	via      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS rule_events_event ON rule_events (provider, event_id);
CREATE INDEX IF NOT EXISTS rule_events_rule ON rule_events (rule_pk);
-- The rule's tested fields on one event: rule_field as written (lower-cased for joins
-- with preds and indicators), event_field as the event names it.
CREATE TABLE IF NOT EXISTS rule_event_fields (
	rule_pk     INTEGER NOT NULL,
	provider    TEXT NOT NULL,
	event_id    INTEGER NOT NULL,
	rule_field  TEXT NOT NULL,
	event_field TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_event_fields_event ON rule_event_fields (provider, event_id, event_field);
CREATE INDEX IF NOT EXISTS rule_event_fields_rule ON rule_event_fields (rule_pk);
-- Which rules coverage was computed for, and from what: sig changes when the rule row
-- is replaced, so a rebuilt catalog that reuses a pk is never mistaken for done.
CREATE TABLE IF NOT EXISTS rule_events_state (
	rule_pk INTEGER PRIMARY KEY,
	sig     TEXT NOT NULL
);
-- Counts materialized by every sync that changed something; pages only read them.
CREATE TABLE IF NOT EXISTS event_rule_counts (
	provider TEXT NOT NULL,
	event_id INTEGER NOT NULL,
	language TEXT NOT NULL,
	rules    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS provider_rule_counts (
	provider TEXT PRIMARY KEY,
	rules    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS event_field_counts (
	provider    TEXT NOT NULL,
	event_id    INTEGER NOT NULL,
	event_field TEXT NOT NULL,
	language    TEXT NOT NULL,
	rules       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS event_field_counts_event ON event_field_counts (provider, event_id);
CREATE TABLE IF NOT EXISTS event_indicator_counts (
	provider    TEXT NOT NULL,
	event_id    INTEGER NOT NULL,
	event_field TEXT NOT NULL,
	key         TEXT NOT NULL,
	language    TEXT NOT NULL,
	rules       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS event_indicator_counts_event ON event_indicator_counts (provider, event_id, event_field, key);
-- All languages together, so the top of an event's list is one index range.
CREATE TABLE IF NOT EXISTS event_indicator_totals (
	provider    TEXT NOT NULL,
	event_id    INTEGER NOT NULL,
	event_field TEXT NOT NULL,
	key         TEXT NOT NULL,
	rules       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS event_indicator_totals_top ON event_indicator_totals (provider, event_id, rules DESC, event_field, key);
`

// materialize recomputes the count tables from rule_events and rule_event_fields.
var materialize = []string{
	`DELETE FROM event_rule_counts`,
	`INSERT INTO event_rule_counts(provider, event_id, language, rules)
		SELECT e.provider, e.event_id, r.language, count(DISTINCT e.rule_pk)
		FROM rule_events e JOIN rules r ON r.pk=e.rule_pk GROUP BY e.provider, e.event_id, r.language`,
	`DELETE FROM provider_rule_counts`,
	`INSERT INTO provider_rule_counts(provider, rules)
		SELECT provider, count(DISTINCT rule_pk) FROM rule_events GROUP BY provider`,
	`DELETE FROM event_field_counts`,
	`INSERT INTO event_field_counts(provider, event_id, event_field, language, rules)
		SELECT f.provider, f.event_id, f.event_field, r.language, count(DISTINCT f.rule_pk)
		FROM rule_event_fields f JOIN rules r ON r.pk=f.rule_pk GROUP BY f.provider, f.event_id, f.event_field, r.language`,
	`DELETE FROM event_indicator_counts`,
	// Positive tests only: what rules look for on the event, not what they exclude.
	`INSERT INTO event_indicator_counts(provider, event_id, event_field, key, language, rules)
		SELECT f.provider, f.event_id, f.event_field, i.key, i.language, count(DISTINCT i.rule_pk)
		FROM indicators i JOIN rule_event_fields f ON f.rule_pk=i.rule_pk AND f.rule_field=lower(i.field)
		WHERE i.negated=0
		GROUP BY f.provider, f.event_id, f.event_field, i.key, i.language`,
	`DELETE FROM event_indicator_totals`,
	`INSERT INTO event_indicator_totals(provider, event_id, event_field, key, rules)
		SELECT provider, event_id, event_field, key, sum(rules) FROM event_indicator_counts
		GROUP BY provider, event_id, event_field, key`,
}

const metaEventsFingerprint = "events.fingerprint"

// eventsLayout changes whenever eventsSchema or materialize change.
const eventsLayout = "3"

// eventsTables are the tables eventsSchema creates.
var eventsTables = []string{"rule_events", "rule_event_fields", "rule_events_state", "event_rule_counts",
	"provider_rule_counts", "event_field_counts", "event_indicator_counts", "event_indicator_totals"}

// ruleSig identifies a stored rule row's content cheaply.
const ruleSig = `r.language || ':' || r.uid || ':' || r.file_id || ':' || length(r.ir)`

// SyncRuleEvents brings the stored event coverage up to date with the rules: rules
// added or replaced since the last sync get cover's answer, deleted rules lose theirs.
// fingerprint names the event data and coverage logic (e.g. the data folder's files
// and sizes); when it differs from the stored one every rule is recomputed. It returns
// how many rules were (re)computed. Call it after each ingest; it is cheap when nothing
// changed.
func (c *Catalog) SyncRuleEvents(ctx context.Context, fingerprint string, cover CoverFunc) (int, error) {
	var stored string
	if err := c.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key=?`, metaEventsFingerprint).Scan(&stored); err != nil && err != sql.ErrNoRows {
		return 0, err
	}
	if !strings.HasSuffix(stored, "/"+eventsLayout) {
		// Another layout (or none): start the tables over, indexes included.
		for _, t := range eventsTables {
			if _, err := c.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
				return 0, fmt.Errorf("rule events: drop %s: %w", t, err)
			}
		}
	}
	if _, err := c.db.ExecContext(ctx, eventsSchema); err != nil {
		return 0, fmt.Errorf("rule events schema: %w", err)
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("rule events: begin: %w", err)
	}
	defer tx.Rollback()
	var old string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key=?`, metaEventsFingerprint).Scan(&old); err != nil && err != sql.ErrNoRows {
		return 0, err
	}
	// The stored value also names the layout of the tables above, so a catalog synced
	// by an older ruledex is recomputed rather than read with missing counts.
	fingerprint += "/" + eventsLayout
	changed := old != fingerprint
	if changed {
		for _, q := range []string{`DELETE FROM rule_events`, `DELETE FROM rule_event_fields`, `DELETE FROM rule_events_state`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return 0, err
			}
		}
	}
	// Drop what belongs to rules that are gone or were replaced.
	for _, q := range []string{
		`DELETE FROM rule_events_state WHERE NOT EXISTS (SELECT 1 FROM rules r
			WHERE r.pk = rule_events_state.rule_pk AND ` + ruleSig + ` = rule_events_state.sig)`,
		`DELETE FROM rule_events WHERE rule_pk NOT IN (SELECT rule_pk FROM rule_events_state)`,
		`DELETE FROM rule_event_fields WHERE rule_pk NOT IN (SELECT rule_pk FROM rule_events_state)`,
	} {
		res, err := tx.ExecContext(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("rule events: prune: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n > 0 {
			changed = true
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT r.pk, `+ruleSig+`, r.ir FROM rules r
		WHERE r.pk NOT IN (SELECT rule_pk FROM rule_events_state) ORDER BY r.pk`)
	if err != nil {
		return 0, err
	}
	type todo struct {
		pk  int64
		sig string
		ir  []byte
	}
	var work []todo
	for rows.Next() {
		var w todo
		if err := rows.Scan(&w.pk, &w.sig, &w.ir); err != nil {
			rows.Close()
			return 0, err
		}
		work = append(work, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	insEv, err := tx.PrepareContext(ctx, `INSERT INTO rule_events(rule_pk, provider, event_id, via) VALUES(?,?,?,?)`)
	if err != nil {
		return 0, err
	}
	defer insEv.Close()
	insF, err := tx.PrepareContext(ctx, `INSERT INTO rule_event_fields(rule_pk, provider, event_id, rule_field, event_field) VALUES(?,?,?,?,?)`)
	if err != nil {
		return 0, err
	}
	defer insF.Close()
	insS, err := tx.PrepareContext(ctx, `INSERT INTO rule_events_state(rule_pk, sig) VALUES(?,?)`)
	if err != nil {
		return 0, err
	}
	defer insS.Close()
	for _, w := range work {
		var r rule.Rule
		// A rule whose stored IR no longer decodes gets no coverage, not a failed sync.
		js, err := decodeIR(w.ir)
		if err == nil {
			err = json.Unmarshal(js, &r)
		}
		if err == nil {
			for _, ev := range cover(&r) {
				if _, err := insEv.ExecContext(ctx, w.pk, ev.Provider, ev.EventID, ev.Via); err != nil {
					return 0, err
				}
				for rf, ef := range ev.Fields {
					if _, err := insF.ExecContext(ctx, w.pk, ev.Provider, ev.EventID, strings.ToLower(rf), ef); err != nil {
						return 0, err
					}
				}
			}
		}
		if _, err := insS.ExecContext(ctx, w.pk, w.sig); err != nil {
			return 0, err
		}
	}
	if changed || len(work) > 0 {
		for _, q := range materialize {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return 0, fmt.Errorf("rule events: counts: %w", err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)`, metaEventsFingerprint, fingerprint); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("rule events: commit: %w", err)
	}
	return len(work), nil
}

// hasEventTables reports whether SyncRuleEvents ever ran on this catalog; readers
// answer "no rules" rather than failing before it has.
func (c *Catalog) hasEventTables(ctx context.Context) bool {
	var n int
	err := c.queryRow(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='event_indicator_counts'`).Scan(&n)
	return err == nil && n > 0
}

// EventCount is how many rules can match one event.
type EventCount struct {
	Provider   string      `json:"provider"`
	EventID    int         `json:"event_id"`
	Rules      int         `json:"rules"`
	ByLanguage []LangCount `json:"by_language"`
}

// EventRuleCounts returns, for every event some rule covers, the number of distinct
// rules per language.
func (c *Catalog) EventRuleCounts(ctx context.Context) ([]EventCount, error) {
	if !c.hasEventTables(ctx) {
		return nil, nil
	}
	rows, err := c.query(ctx, `SELECT provider, event_id, language, rules FROM event_rule_counts`)
	if err != nil {
		return nil, fmt.Errorf("event rule counts: %w", err)
	}
	defer rows.Close()
	idx := map[string]int{}
	var out []EventCount
	for rows.Next() {
		var p, lang string
		var id, n int
		if err := rows.Scan(&p, &id, &lang, &n); err != nil {
			return nil, err
		}
		k := p + "\x00" + fmt.Sprint(id)
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, EventCount{Provider: p, EventID: id})
		}
		out[i].Rules += n
		out[i].ByLanguage = append(out[i].ByLanguage, LangCount{Language: rule.Language(lang), Rules: n})
	}
	for i := range out {
		sortLangCounts(out[i].ByLanguage)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].EventID < out[j].EventID
	})
	return out, rows.Err()
}

// ProviderRuleCounts returns, per provider, the number of distinct rules that cover
// at least one of its events.
func (c *Catalog) ProviderRuleCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	if !c.hasEventTables(ctx) {
		return out, nil
	}
	rows, err := c.query(ctx, `SELECT provider, rules FROM provider_rule_counts`)
	if err != nil {
		return nil, fmt.Errorf("provider rule counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

// FieldCount is how many rules covering an event test one of its fields.
type FieldCount struct {
	Field      string      `json:"field"` // as the event names it
	Rules      int         `json:"rules"`
	ByLanguage []LangCount `json:"by_language"`
}

// EventFieldCounts returns, per field of the event (in the event's naming), the number
// of distinct rules covering the event that test the field, in any language and under
// any of its names: 4688's NewProcessName counts Sigma rules on Image that 4688 can
// serve, KQL rules on FolderPath/FileName and rules written on NewProcessName itself.
// Fields no rule tests are absent.
func (c *Catalog) EventFieldCounts(ctx context.Context, provider string, eventID int) (map[string]FieldCount, error) {
	out := map[string]FieldCount{}
	if !c.hasEventTables(ctx) {
		return out, nil
	}
	rows, err := c.query(ctx, `SELECT event_field, language, rules FROM event_field_counts
		WHERE provider=? AND event_id=?`, provider, eventID)
	if err != nil {
		return nil, fmt.Errorf("event field counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f, lang string
		var n int
		if err := rows.Scan(&f, &lang, &n); err != nil {
			return nil, err
		}
		fc := out[f]
		fc.Field = f
		fc.Rules += n
		fc.ByLanguage = append(fc.ByLanguage, LangCount{Language: rule.Language(lang), Rules: n})
		out[f] = fc
	}
	for k, fc := range out {
		sortLangCounts(fc.ByLanguage)
		out[k] = fc
	}
	return out, rows.Err()
}

// EventIndicator is a field/kind/value combination rules test on an event.
type EventIndicator struct {
	Field string    `json:"field"` // the event's name for it
	Kind  rule.Kind `json:"kind"`
	// Value is the value as rules compare it (case-folded unless the test is cased);
	// Key the counting identity (see package fieldmap), usable with RulesByIndicatorKey
	// and the indicator pages.
	Value      string      `json:"value"`
	Key        string      `json:"key"`
	Rules      int         `json:"rules"`
	ByLanguage []LangCount `json:"by_language"`
}

// EventIndicators returns the positive tests rules covering the event make most often
// on its fields, most rules first, at most limit (0: 20).
func (c *Catalog) EventIndicators(ctx context.Context, provider string, eventID, limit int) ([]EventIndicator, error) {
	if limit <= 0 {
		limit = 20
	}
	if !c.hasEventTables(ctx) {
		return nil, nil
	}
	rows, err := c.query(ctx, `WITH top AS (
			SELECT event_field, key, rules AS n FROM event_indicator_totals
			WHERE provider=? AND event_id=? ORDER BY rules DESC, event_field, key LIMIT ?)
		SELECT t.event_field, t.key, '', '', c.language, c.rules, t.n
		FROM top t JOIN event_indicator_counts c ON c.provider=? AND c.event_id=? AND c.event_field=t.event_field AND c.key=t.key
		ORDER BY t.n DESC, t.event_field, t.key`, provider, eventID, limit, provider, eventID)
	if err != nil {
		return nil, fmt.Errorf("event indicators: %w", err)
	}
	defer rows.Close()
	var out []EventIndicator
	idx := map[string]int{}
	for rows.Next() {
		var f, key, kind, val, lang string
		var n, total int
		if err := rows.Scan(&f, &key, &kind, &val, &lang, &n, &total); err != nil {
			return nil, err
		}
		k := f + "\x00" + key
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			// The key's kind and value are the normalized ones every rule counted here
			// shares (FileName == "x.exe" is ends_with \x.exe on the image path).
			if parts := strings.Split(key, "\x1f"); len(parts) == 4 {
				kind, val = parts[1], parts[3]
			}
			out = append(out, EventIndicator{Field: f, Key: key, Kind: rule.Kind(kind), Value: val, Rules: total})
		}
		out[i].ByLanguage = append(out[i].ByLanguage, LangCount{Language: rule.Language(lang), Rules: n})
	}
	for i := range out {
		sortLangCounts(out[i].ByLanguage)
	}
	return out, rows.Err()
}

// RulesForEvent lists the rules covering an event, or, when field is set, those
// testing that field of it (the event's name, case-insensitive); limit <= 0 is no limit.
func (c *Catalog) RulesForEvent(ctx context.Context, provider string, eventID int, field string, limit int) ([]Summary, error) {
	if !c.hasEventTables(ctx) {
		return nil, nil
	}
	if limit <= 0 {
		limit = -1
	}
	if field == "" {
		return c.summaries(ctx, `SELECT `+summaryCols+` FROM rules r WHERE r.pk IN
			(SELECT rule_pk FROM rule_events WHERE provider=? AND event_id=?)
			ORDER BY r.language, r.title_fold, r.id LIMIT ?`, provider, eventID, limit)
	}
	return c.summaries(ctx, `SELECT `+summaryCols+` FROM rules r WHERE r.pk IN
		(SELECT rule_pk FROM rule_event_fields WHERE provider=? AND event_id=? AND lower(event_field)=lower(?))
		ORDER BY r.language, r.title_fold, r.id LIMIT ?`, provider, eventID, field, limit)
}
