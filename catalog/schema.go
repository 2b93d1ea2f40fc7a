package catalog

// schemaVersion changes whenever the tables below change incompatibly; a catalog
// written by another version is rebuilt from scratch on the next ingest (see Open).
const schemaVersion = "4"

// schema is the catalog's layout. Rows of one rule are keyed by rules.pk (an integer),
// never by the rule id, so that the deduplication pass can rename ids cheaply.
//
// Rule-derived tables (stages, preds, indicators, rule_techniques, rule_tactics,
// diagnostics, rules_fts) are written only by an ingest, inside its single transaction.
const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- One upstream repository (or plain folder) rules come from.
CREATE TABLE IF NOT EXISTS sources (
	id       INTEGER PRIMARY KEY,
	repo     TEXT NOT NULL,
	repo_url TEXT NOT NULL DEFAULT '',
	commit_  TEXT NOT NULL DEFAULT '',
	UNIQUE (repo, repo_url, commit_)
);

-- Every regular file an ingest walked, recognized or not: size, mtime and hash make
-- re-ingest incremental. language is '' for files no parser recognized (skipped).
CREATE TABLE IF NOT EXISTS files (
	id        INTEGER PRIMARY KEY,
	path      TEXT NOT NULL UNIQUE, -- absolute, OS separators
	source_id INTEGER,
	rel       TEXT NOT NULL DEFAULT '', -- path inside the source repository, forward slashes
	size      INTEGER NOT NULL,
	mtime     INTEGER NOT NULL, -- UnixNano
	hash      TEXT NOT NULL,
	language  TEXT NOT NULL DEFAULT '',
	rules     INTEGER NOT NULL DEFAULT 0,
	errors    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS rules (
	pk          INTEGER PRIMARY KEY,
	file_id     INTEGER NOT NULL,
	language    TEXT NOT NULL,
	id          TEXT NOT NULL, -- unique per language after deduplication
	uid         TEXT NOT NULL, -- the id the parser gave (upstream id or stable hash)
	idx         INTEGER NOT NULL,
	title       TEXT NOT NULL,
	title_fold  TEXT NOT NULL,
	stem_fold   TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL DEFAULT '',
	severity    TEXT NOT NULL DEFAULT '',
	class       TEXT NOT NULL DEFAULT '',
	type        TEXT NOT NULL DEFAULT '',
	authors     TEXT NOT NULL DEFAULT '', -- joined with ", "
	date        TEXT NOT NULL DEFAULT '',
	modified    TEXT NOT NULL DEFAULT '',
	source_id   INTEGER,
	repo        TEXT NOT NULL DEFAULT '',
	path        TEXT NOT NULL DEFAULT '',
	line        INTEGER NOT NULL DEFAULT 0,
	upstream    TEXT NOT NULL DEFAULT '',
	product     TEXT NOT NULL DEFAULT '',
	category    TEXT NOT NULL DEFAULT '',
	service     TEXT NOT NULL DEFAULT '',
	has_errors  INTEGER NOT NULL DEFAULT 0,
	ir          BLOB NOT NULL -- the rule's IR (rule.Rule) as JSON, deflated (see Entry.Encode); id as the parser gave it
);
CREATE INDEX IF NOT EXISTS rules_lang_id ON rules (language, id);
CREATE INDEX IF NOT EXISTS rules_id ON rules (id);
CREATE INDEX IF NOT EXISTS rules_title ON rules (title_fold);
CREATE INDEX IF NOT EXISTS rules_stem ON rules (stem_fold);
CREATE INDEX IF NOT EXISTS rules_file ON rules (file_id);

CREATE TABLE IF NOT EXISTS stages (
	rule_pk INTEGER NOT NULL,
	idx     INTEGER NOT NULL,
	alt     INTEGER NOT NULL DEFAULT 0,
	kind    TEXT NOT NULL,
	label   TEXT NOT NULL,
	negated INTEGER NOT NULL DEFAULT 0,
	op      TEXT NOT NULL DEFAULT '',
	text    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS stages_rule ON stages (rule_pk);

-- One row per predicate value (a value-less predicate such as exists has one row, value '').
CREATE TABLE IF NOT EXISTS preds (
	rule_pk    INTEGER NOT NULL,
	stage      INTEGER NOT NULL,
	field      TEXT NOT NULL,
	canonical  TEXT NOT NULL,
	kind       TEXT NOT NULL,
	value      TEXT NOT NULL,
	negated    INTEGER NOT NULL DEFAULT 0,
	transforms TEXT NOT NULL DEFAULT '' -- joined with "|"
);
CREATE INDEX IF NOT EXISTS preds_rule ON preds (rule_pk);

CREATE TABLE IF NOT EXISTS indicators (
	rule_pk    INTEGER NOT NULL,
	field      TEXT NOT NULL,
	canonical  TEXT NOT NULL,
	kind       TEXT NOT NULL,
	value      TEXT NOT NULL,
	key        TEXT NOT NULL,
	negated    INTEGER NOT NULL DEFAULT 0,
	stage      INTEGER NOT NULL DEFAULT 0,
	transforms TEXT NOT NULL DEFAULT '',
	language   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS indicators_rule ON indicators (rule_pk);
CREATE INDEX IF NOT EXISTS indicators_key ON indicators (key);

-- Materialized after every ingest that changed something: how many rules test each
-- indicator key, per language and polarity. Pages read it, never count on the fly.
CREATE TABLE IF NOT EXISTS indicator_counts (
	key      TEXT NOT NULL,
	language TEXT NOT NULL,
	negated  INTEGER NOT NULL,
	rules    INTEGER NOT NULL,
	PRIMARY KEY (key, language, negated)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tactics (
	short  TEXT PRIMARY KEY,
	id     TEXT NOT NULL DEFAULT '',
	name   TEXT NOT NULL DEFAULT '',
	url    TEXT NOT NULL DEFAULT '',
	ord    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS techniques (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	parent     TEXT NOT NULL DEFAULT '',
	tactics    TEXT NOT NULL DEFAULT '', -- short names joined with ","
	revoked    INTEGER NOT NULL DEFAULT 0,
	revoked_by TEXT NOT NULL DEFAULT '',
	deprecated INTEGER NOT NULL DEFAULT 0,
	url        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS rule_techniques (
	rule_pk   INTEGER NOT NULL,
	technique TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_techniques_rule ON rule_techniques (rule_pk);
CREATE INDEX IF NOT EXISTS rule_techniques_tech ON rule_techniques (technique);

CREATE TABLE IF NOT EXISTS rule_tactics (
	rule_pk INTEGER NOT NULL,
	tactic  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_tactics_rule ON rule_tactics (rule_pk);
CREATE INDEX IF NOT EXISTS rule_tactics_tactic ON rule_tactics (tactic);

-- Diagnostics of rules (rule_pk set) and of files (rule_pk NULL). derived marks those the
-- catalog itself adds (duplicate ids); they are recomputed by every ingest.
CREATE TABLE IF NOT EXISTS diagnostics (
	rule_pk  INTEGER,
	file_id  INTEGER NOT NULL,
	severity TEXT NOT NULL,
	code     TEXT NOT NULL,
	file     TEXT NOT NULL DEFAULT '',
	line     INTEGER NOT NULL DEFAULT 0,
	col      INTEGER NOT NULL DEFAULT 0,
	message  TEXT NOT NULL,
	derived  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS diagnostics_rule ON diagnostics (rule_pk);
CREATE INDEX IF NOT EXISTS diagnostics_file ON diagnostics (file_id);
CREATE INDEX IF NOT EXISTS diagnostics_code ON diagnostics (code);

CREATE VIRTUAL TABLE IF NOT EXISTS rules_fts USING fts5 (
	title, description, tags, fields, vals,
	tokenize = 'unicode61 remove_diacritics 2'
);
`
