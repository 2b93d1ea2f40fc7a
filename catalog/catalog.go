// Package catalog is ruledex's embedded store: rules in their IR form, their stages,
// predicates, indicators, ATT&CK links and diagnostics, the files and sources they came
// from, corpus-wide indicator counts and a full-text index, all in one SQLite file
// (modernc.org/sqlite, pure Go) in WAL mode.
//
// Writes happen only through an ingest transaction (Begin ... Commit): readers on other
// connections keep seeing the previous catalog until the commit, and an ingest that fails
// or is cancelled rolls back to it. Everything else in this package reads.
//
// The catalog never parses rule text: it stores what parsers produced (package rule).
//
// Read API (all safe for concurrent use, each call reads one consistent snapshot):
//
//	Rule(ctx, lang, id)              the IR of one rule (catalog id; ErrNotFound)
//	RuleByRef(ctx, ref)              what a user typed: lang/id, /rules/lang/id/, id, title,
//	                                 file stem, path (*LookupError: ambiguous or not found)
//	RuleIndicatorCounts(ctx, r)      corpus counts of r's positive indicators, by key
//	IndicatorCounts(ctx, keys, neg)  corpus counts of any keys (fieldmap.Key)
//	RulesByIndicatorKey(ctx, key, n) the rules testing (or excluding) one indicator
//	Tactics(ctx), Techniques(ctx, ids...)  ATT&CK names stored by an ingest with --data
//	Diagnostics(ctx, DiagFilter)     located diagnostics with their rules
//	Stats(ctx)                       files, rules, errors by code, per language/source/folder
//	Search(ctx, SearchQuery)         browse and full-text search with facets (web_search.go)
//	Roots(ctx)                       the paths given to ingests, with their files and rules
//	Distinct(ctx, column)            the values of a filterable column (severity, repo, ...)
//	NearIndicators(ctx, field, v, n) existing keys near one that matched nothing
//
// Besides ingest, Remove(ctx, path, source) writes: it drops the files under a path (or of
// a source) in one transaction. Plain(err) turns database errors into sentences for users.
//
// Queries of one's own that need several statements to agree must run in a read-only
// transaction: c.DB().BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) (other transactions
// take the write lock).
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Catalog is an open catalog file. It is safe for concurrent use; any number of
// readers may run while one ingest writes.
type Catalog struct {
	db   *sql.DB
	path string
	// stmts holds the read statements prepared once (see prepared).
	stmts sync.Map // query text -> *sql.Stmt
	// neighborSchemaOK is set once ensureNeighborSchema succeeded: the schema only
	// grows, so it need not be checked again on every rule page.
	neighborSchemaOK atomic.Bool
}

// Open opens (creating when missing) the catalog at path. A catalog written with an
// older schema is emptied and recreated: it is a cache of the rule sources, rebuilt by
// the next ingest.
func Open(path string) (*Catalog, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "cache_size(-16384)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns())
	db.SetMaxIdleConns(4)
	c := &Catalog{db: db, path: path}
	if err := c.init(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

func (c *Catalog) init(ctx context.Context) error {
	// Larger pages: a first ingest writes tens of MB, and each page is one write call.
	// page_size only takes effect on a new file and before WAL is enabled (the driver
	// would sort DSN pragmas and enable WAL first), so both are set here, in order.
	// WAL is persistent: every later connection uses it.
	for _, q := range []string{`PRAGMA page_size=16384`, `PRAGMA journal_mode=WAL`} {
		if _, err := c.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key='schema'`).Scan(&v)
	switch {
	case err == nil && v == schemaVersion:
		return nil
	case err == nil:
		// An older layout: drop everything we own, then recreate.
		if err := c.dropAll(ctx); err != nil {
			return err
		}
	}
	if _, err := c.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	_, err = c.db.ExecContext(ctx, `INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ?)`, schemaVersion)
	return err
}

func (c *Catalog) dropAll(ctx context.Context) error {
	rows, err := c.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type IN ('table') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'rules_fts_%'`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := c.db.ExecContext(ctx, `DROP TABLE IF EXISTS "`+n+`"`); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	return nil
}

// maxOpenConns sizes the connection pool to the cores: more connections than cores only
// queue CPU work inside SQLite, and each holds its own page cache.
func maxOpenConns() int { return max(4, runtime.GOMAXPROCS(0)+2) }

// Close closes the catalog.
func (c *Catalog) Close() error {
	c.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return c.db.Close()
}

// Path is the catalog file.
func (c *Catalog) Path() string { return c.path }

// DB exposes the underlying database for read-only reports that live in other
// packages' files of this package family (tests, benchmarks). Writers must use Begin.
func (c *Catalog) DB() *sql.DB { return c.db }

// ErrNotFound is returned (wrapped) by lookups that find nothing.
var ErrNotFound = errors.New("not found")

// Meta returns a value stored with Tx.SetMeta ("" when unset).
func (c *Catalog) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key=?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}
