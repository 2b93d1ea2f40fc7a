package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	sqlite "modernc.org/sqlite"
)

// metaRoots holds the folders and files given to ingests, as a JSON array of absolute
// paths. It is what `ruledex stats` lists and what `ruledex remove PATH` forgets.
const metaRoots = "ingest.roots"

// AddRoots records ingested roots (absolute paths) with the catalog, except those in
// gone (roots that no longer exist), which are forgotten with any root inside them. A
// root inside an already recorded one adds nothing; a recorded root inside a new one
// is replaced by it.
func (t *Tx) AddRoots(roots, gone []string) error {
	cur, err := t.roots()
	if err != nil {
		return err
	}
	cur = append(cur, roots...)
	var keep []string
next:
	for _, r := range cur {
		r = filepath.Clean(r)
		for _, g := range gone {
			if within(r, g) {
				continue next
			}
		}
		keep = append(keep, r)
	}
	return t.setRoots(keep)
}

// KnownRoots are the ingested roots recorded so far.
func (t *Tx) KnownRoots() ([]string, error) { return t.roots() }

func (t *Tx) roots() ([]string, error) {
	v, err := t.Meta(metaRoots)
	if err != nil || v == "" {
		return nil, err
	}
	var rs []string
	if err := json.Unmarshal([]byte(v), &rs); err != nil {
		return nil, nil // a damaged list is rebuilt by the next ingests
	}
	return rs, nil
}

func (t *Tx) setRoots(rs []string) error {
	b, err := json.Marshal(minimalRoots(rs))
	if err != nil {
		return err
	}
	return t.SetMeta(metaRoots, string(b))
}

// minimalRoots sorts rs and drops duplicates and paths inside another root.
func minimalRoots(rs []string) []string {
	sort.Strings(rs)
	out := []string{}
	for _, r := range rs {
		if len(out) > 0 && within(r, out[len(out)-1]) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// within reports whether path is root or lies under it.
func within(path, root string) bool {
	sep := string(filepath.Separator)
	return path == root || strings.HasPrefix(path, strings.TrimSuffix(root, sep)+sep)
}

// Root is one ingested root with what the catalog holds from it.
type Root struct {
	Path   string `json:"path"`
	Files  int    `json:"files"`
	Rules  int    `json:"rules"`
	Exists bool   `json:"exists"` // false: moved or deleted since; `ruledex remove` forgets it
}

// Roots lists the ingested roots, by path.
func (c *Catalog) Roots(ctx context.Context) ([]Root, error) {
	v, err := c.Meta(ctx, metaRoots)
	if err != nil {
		return nil, fmt.Errorf("roots: %w", err)
	}
	var paths []string
	if v != "" {
		_ = json.Unmarshal([]byte(v), &paths) // damaged: listed as none
	}
	out := []Root{}
	for _, p := range paths {
		r := Root{Path: p}
		_, err := os.Stat(p)
		r.Exists = err == nil
		prefix := strings.TrimSuffix(p, string(filepath.Separator)) + string(filepath.Separator)
		err = c.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(rules), 0) FROM files WHERE path = ? OR (path >= ? AND path < ?)`,
			p, prefix, prefix+"\xff").Scan(&r.Files, &r.Rules)
		if err != nil {
			return nil, fmt.Errorf("roots: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Removed is what Remove took out of the catalog.
type Removed struct {
	Target string   `json:"target"`
	By     string   `json:"by"` // "path" or "source"
	Files  int      `json:"files"`
	Rules  int      `json:"rules"`
	Roots  []string `json:"roots,omitempty"` // ingested roots forgotten
}

// ErrNothingToRemove is returned (wrapped) when Remove's target names nothing stored.
var ErrNothingToRemove = errors.New("nothing in the catalog under that path or source")

// Remove deletes from the catalog the files under path (a file or folder, absolute;
// it need not exist any more) with their rules, or, when no stored file lies there and
// target names a source repository (as stats lists it, or its URL), every file of that
// source. Ingested roots at or under a removed path are forgotten too. Derived data
// (event coverage, neighbors) is left for the next derive run to bring up to date.
func (c *Catalog) Remove(ctx context.Context, path, target string) (*Removed, error) {
	t, err := c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer t.Rollback()
	res := &Removed{Target: target}
	var states map[string]FileState
	if path != "" {
		if states, err = t.Files(path, string(filepath.Separator)); err != nil {
			return nil, fmt.Errorf("remove: %w", err)
		}
		res.By = "path"
	}
	if len(states) == 0 {
		if states, err = t.sourceFiles(target); err != nil {
			return nil, fmt.Errorf("remove: %w", err)
		}
		res.By = "source"
	}
	roots, err := t.roots()
	if err != nil {
		return nil, fmt.Errorf("remove: %w", err)
	}
	var keep []string
	for _, r := range roots {
		if path != "" && within(r, path) {
			res.Roots = append(res.Roots, r)
			continue
		}
		keep = append(keep, r)
	}
	if len(states) == 0 && len(res.Roots) == 0 {
		return nil, fmt.Errorf("remove %s: %w", target, ErrNothingToRemove)
	}
	for _, f := range states {
		if err := t.DeleteFile(f.ID); err != nil {
			return nil, fmt.Errorf("remove: %w", err)
		}
		res.Files++
		res.Rules += f.Rules
	}
	if err := t.setRoots(keep); err != nil {
		return nil, fmt.Errorf("remove: %w", err)
	}
	if err := t.Finish(false); err != nil {
		return nil, fmt.Errorf("remove: %w", err)
	}
	if err := t.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// sourceFiles are the files whose rules come from the source repository named repo
// (or with that URL).
func (t *Tx) sourceFiles(repo string) (map[string]FileState, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT f.id, f.path, f.rules FROM files f JOIN sources s ON s.id = f.source_id
		WHERE s.repo = ? OR (s.repo_url <> '' AND s.repo_url = ?)`, repo, strings.TrimSuffix(repo, "/"))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]FileState{}
	for rows.Next() {
		var f FileState
		if err := rows.Scan(&f.ID, &f.Path, &f.Rules); err != nil {
			return nil, err
		}
		out[f.Path] = f
	}
	return out, rows.Err()
}

// Distinct returns the distinct non-empty values of one rule column users filter on
// ("severity", "repo", "language"), sorted.
func (c *Catalog) Distinct(ctx context.Context, column string) ([]string, error) {
	switch column {
	case "severity", "repo", "language", "status":
	default:
		return nil, fmt.Errorf("distinct: unknown column %q", column)
	}
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT `+column+` FROM rules WHERE `+column+` <> '' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("distinct %s: %w", column, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// NearIndicator is an indicator key that exists, suggested for one that does not. Kind,
// Value and Transforms are the key's (normalized: a FileName eq x.exe is Image
// ends_with \x.exe, values case-folded unless cased), so they can be typed back.
type NearIndicator struct {
	Field      string `json:"field"` // canonical field
	Kind       string `json:"kind"`
	Value      string `json:"value"`
	Transforms string `json:"transforms,omitempty"`
	Key        string `json:"key"`
	Rules      int    `json:"rules"`
}

// NearIndicators suggests existing positive indicators on the canonical field whose
// key value contains value (case-insensitively), most used first. It serves a lookup
// that found nothing, so a scan is fine.
func (c *Catalog) NearIndicators(ctx context.Context, canonical, value string, n int) ([]NearIndicator, error) {
	q := `SELECT max(canonical), key, count(DISTINCT rule_pk) AS n FROM indicators
		WHERE negated = 0 AND canonical = ? COLLATE NOCASE AND instr(lower(value), lower(?)) > 0
		GROUP BY key ORDER BY n DESC, key LIMIT ?`
	rows, err := c.db.QueryContext(ctx, q, canonical, value, n)
	if err != nil {
		return nil, fmt.Errorf("near indicators: %w", err)
	}
	defer rows.Close()
	var out []NearIndicator
	for rows.Next() {
		var x NearIndicator
		if err := rows.Scan(&x.Field, &x.Key, &x.Rules); err != nil {
			return nil, fmt.Errorf("near indicators: %w", err)
		}
		// A key is canonical, kind, transforms and value joined by \x1f (fieldmap.Key).
		if parts := strings.SplitN(x.Key, "\x1f", 4); len(parts) == 4 {
			x.Kind, x.Transforms, x.Value = parts[1], parts[2], parts[3]
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// Plain turns a database error into a sentence a user can act on ("not a catalog
// file", "read-only location", "disk full", "locked by another process"), naming the
// catalog file; other errors are returned unchanged. It never carries SQL text.
func (c *Catalog) Plain(err error) error { return PlainError(c.path, err) }

// PlainError is Catalog.Plain for a catalog that could not even be opened.
func PlainError(path string, err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	var msg string
	switch se.Code() & 0xff {
	case 26: // SQLITE_NOTADB
		msg = "not a catalog file (give --db the path of a ruledex catalog, or of a file to create)"
	case 8: // SQLITE_READONLY
		msg = "read-only location: the catalog cannot be written there (give --db a writable path)"
	case 13: // SQLITE_FULL
		msg = "disk full while writing the catalog; nothing was changed"
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		msg = "locked by another process (another ruledex ingest?); try again when it is done"
	case 14: // SQLITE_CANTOPEN
		msg = "cannot open the catalog file (missing folder or no permission)"
	case 11: // SQLITE_CORRUPT
		msg = "the catalog file is damaged; delete it and ingest again"
	case 10: // SQLITE_IOERR
		msg = "input/output error while using the catalog"
	default:
		msg = "database error: " + sqlite.ErrorCodeString[se.Code()]
	}
	return &plainError{msg: "catalog " + path + ": " + msg, err: err}
}

type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }
