package catalog

import (
	"bytes"
	"compress/flate"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ruledex/ruledex/rule"
)

// FileState is what the catalog remembers of a file from the last ingest.
type FileState struct {
	ID       int64
	Path     string // absolute
	Size     int64
	MTime    int64 // UnixNano
	Hash     string
	Language string // "" when no parser recognized the file
	Rules    int
	// Rel and Source are where the rules of the file were said to come from (empty
	// for skipped files).
	Rel    string
	Source SourceInfo
}

// Files returns the files recorded under root (root itself when it is a file), by path.
func (c *Catalog) Files(ctx context.Context, root string, sep string) (map[string]FileState, error) {
	return files(ctx, c.db, root, sep)
}

// Files is Catalog.Files inside the transaction: an ingest plans its work under the
// write lock, so a concurrent ingest of the same files cannot invalidate the plan.
func (t *Tx) Files(root string, sep string) (map[string]FileState, error) {
	return files(t.ctx, t.tx, root, sep)
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func files(ctx context.Context, db queryer, root string, sep string) (map[string]FileState, error) {
	prefix := strings.TrimSuffix(root, sep) + sep
	rows, err := db.QueryContext(ctx,
		`SELECT f.id, f.path, f.size, f.mtime, f.hash, f.language, f.rules, f.rel,
			coalesce(s.repo, ''), coalesce(s.repo_url, ''), coalesce(s.commit_, '')
		 FROM files f LEFT JOIN sources s ON s.id = f.source_id
		 WHERE f.path = ? OR (f.path >= ? AND f.path < ?)`, root, prefix, prefix+"\xff")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]FileState{}
	for rows.Next() {
		var f FileState
		if err := rows.Scan(&f.ID, &f.Path, &f.Size, &f.MTime, &f.Hash, &f.Language, &f.Rules, &f.Rel,
			&f.Source.Repo, &f.Source.RepoURL, &f.Source.Commit); err != nil {
			return nil, err
		}
		out[f.Path] = f
	}
	return out, rows.Err()
}

// SourceInfo names the upstream a file belongs to.
type SourceInfo struct {
	Repo    string
	RepoURL string
	Commit  string
}

// FileRecord is a file as an ingest stores it.
type FileRecord struct {
	Path     string // absolute
	Rel      string // path inside its source repository
	Size     int64
	MTime    int64
	Hash     string
	Language string
	Source   SourceInfo
}

// Entry is one parsed rule ready to store. IR is the rule's JSON; Encode fills it, so
// that ingest workers can encode in parallel. When IR is nil PutFile encodes.
type Entry struct {
	Rule *rule.Rule
	IR   []byte
}

// Encode fills e.IR: the rule's JSON, deflated (IR JSON repeats itself a lot; stored
// plain it made the catalog three times larger and the first ingest disk-bound).
func (e *Entry) Encode() error {
	b, err := json.Marshal(e.Rule)
	if err != nil {
		return fmt.Errorf("encode rule %s: %w", e.Rule.ID, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 16)
	buf.WriteByte(irDeflate)
	zw := flateWriters.Get().(*flate.Writer)
	zw.Reset(&buf)
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	flateWriters.Put(zw)
	e.IR = buf.Bytes()
	return nil
}

// irDeflate marks a deflated IR; plain JSON starts with '{'.
const irDeflate = 0x01

var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// flateReaders recycle inflaters: a new one allocates its 32 KB window and tables,
// more than most IRs it reads (a static export reads every rule).
var flateReaders sync.Pool

// decodeIR returns the JSON of a stored IR.
func decodeIR(ir []byte) ([]byte, error) {
	if len(ir) == 0 || ir[0] != irDeflate {
		return ir, nil
	}
	src := bytes.NewReader(ir[1:])
	zr, _ := flateReaders.Get().(io.ReadCloser)
	if zr == nil {
		zr = flate.NewReader(src)
	} else if err := zr.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	defer flateReaders.Put(zr)
	// JSON deflates to about a fifth: one allocation for most IRs.
	out := bytes.NewBuffer(make([]byte, 0, 6*len(ir)))
	if _, err := out.ReadFrom(zr); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Tx is an ingest's single write transaction.
type Tx struct {
	c       *Catalog
	tx      *sql.Tx
	ctx     context.Context
	sources map[SourceInfo]int64
	stmts   map[string]*sql.Stmt
	changed bool
	// Inserts are buffered per table and written as multi-row INSERTs: one statement
	// per row costs more in database/sql and the VM than the row itself. Row ids of
	// files and rules are assigned here, so buffered rows can refer to them.
	batches map[string]*batch
	order   []string // tables in first-use order, flushed in that order
	nextPK  int64
	nextFID int64
	// bulk is set when the ingest starts from an empty catalog: secondary indexes are
	// dropped at Begin and built once at Finish, which is much cheaper than maintaining
	// them row by row. Readers never see the difference (one transaction).
	bulk    bool
	dropped []string // CREATE INDEX statements of the indexes dropped for bulk loading
}

// batch is the pending rows of one table.
type batch struct {
	head string // "INSERT INTO t(a, b) VALUES "
	ncol int
	args []any
	n    int
}

const batchRows = 128

// add buffers one row for table.
func (t *Tx) add(table, cols string, vals ...any) error {
	b := t.batches[table]
	if b == nil {
		b = &batch{head: "INSERT INTO " + table + "(" + cols + ") VALUES ", ncol: len(vals)}
		t.batches[table] = b
		t.order = append(t.order, table)
	}
	b.args = append(b.args, vals...)
	b.n++
	if b.n >= batchRows {
		return t.flushBatch(b)
	}
	return nil
}

func (t *Tx) flushBatch(b *batch) error {
	if b.n == 0 {
		return nil
	}
	row := "(?" + strings.Repeat(",?", b.ncol-1) + ")"
	q := b.head + row + strings.Repeat(","+row, b.n-1)
	if _, err := t.exec(q, b.args...); err != nil {
		return err
	}
	b.args, b.n = b.args[:0], 0
	return nil
}

// isBusy reports whether err is SQLite's "database is locked" (another writer).
func isBusy(err error) bool {
	m := err.Error()
	return strings.Contains(m, "SQLITE_BUSY") || strings.Contains(m, "database is locked")
}

// dropIndexes drops the secondary indexes the schema declares (CREATE INDEX ...).
func (t *Tx) dropIndexes() error {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n, q string
		if err := rows.Scan(&n, &q); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
		t.dropped = append(t.dropped, q)
	}
	rows.Close()
	for _, n := range names {
		if _, err := t.tx.ExecContext(t.ctx, `DROP INDEX "`+n+`"`); err != nil {
			return err
		}
	}
	return nil
}

// flush writes every buffered row.
func (t *Tx) flush() error {
	for _, tab := range t.order {
		if err := t.flushBatch(t.batches[tab]); err != nil {
			return err
		}
	}
	return nil
}

// Begin starts the ingest transaction. It takes the write lock at once (BEGIN
// IMMEDIATE), so two ingests serialize instead of failing halfway.
//
// While another ingest holds the lock, Begin waits (until ctx is done) rather than fail.
func (c *Catalog) Begin(ctx context.Context) (*Tx, error) {
	var tx *sql.Tx
	var err error
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		tx, err = c.db.BeginTx(ctx, nil)
		if err == nil || !isBusy(err) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("catalog: begin: waiting for another ingest: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: begin: %w", err)
	}
	t := &Tx{c: c, tx: tx, ctx: ctx, sources: map[SourceInfo]int64{}, stmts: map[string]*sql.Stmt{}, batches: map[string]*batch{}}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(pk), 0) FROM rules`).Scan(&t.nextPK); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("catalog: begin: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM files`).Scan(&t.nextFID); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("catalog: begin: %w", err)
	}
	if t.nextPK == 0 && t.nextFID == 0 {
		if err := t.dropIndexes(); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("catalog: begin: %w", err)
		}
		t.bulk = true
	}
	return t, nil
}

func (t *Tx) stmt(q string) (*sql.Stmt, error) {
	if s, ok := t.stmts[q]; ok {
		return s, nil
	}
	s, err := t.tx.PrepareContext(t.ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", stmtLabel(q), err)
	}
	t.stmts[q] = s
	return s, nil
}

func (t *Tx) exec(q string, args ...any) (sql.Result, error) {
	s, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	res, err := s.ExecContext(t.ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stmtLabel(q), err)
	}
	return res, nil
}

// stmtLabel names a statement in an error ("insert into indicators") without its text:
// a batched INSERT runs to kilobytes of placeholders, and SQL means nothing to users.
func stmtLabel(q string) string {
	w := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(q))
	for i, x := range w {
		switch strings.ToUpper(x) {
		case "INTO", "FROM", "UPDATE":
			if i+1 < len(w) {
				return strings.ToLower(w[0]) + " " + w[i+1]
			}
		}
	}
	if len(w) > 0 {
		return strings.ToLower(w[0])
	}
	return "statement"
}

// Rollback abandons the ingest; the catalog stays as it was. Safe after Commit.
func (t *Tx) Rollback() error {
	t.closeStmts()
	err := t.tx.Rollback()
	if err == sql.ErrTxDone {
		return nil
	}
	return err
}

// Commit makes the ingest visible to readers. Call Finish first.
func (t *Tx) Commit() error {
	if t.bulk {
		if err := t.Finish(true); err != nil {
			t.Rollback()
			return fmt.Errorf("catalog: commit: %w", err)
		}
	}
	if err := t.flush(); err != nil {
		t.Rollback()
		return fmt.Errorf("catalog: commit: %w", err)
	}
	t.closeStmts()
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("catalog: commit: %w", err)
	}
	return nil
}

func (t *Tx) closeStmts() {
	for _, s := range t.stmts {
		s.Close()
	}
	t.stmts = map[string]*sql.Stmt{}
}

// SetMeta stores a key/value pair (parser fingerprints, bundle versions).
func (t *Tx) SetMeta(key, value string) error {
	_, err := t.exec(`INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)`, key, value)
	return err
}

// Meta reads a meta value inside the transaction.
func (t *Tx) Meta(key string) (string, error) {
	var v string
	err := t.tx.QueryRowContext(t.ctx, `SELECT value FROM meta WHERE key=?`, key).Scan(&v)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return v, err
}

// TouchFile records a new size/mtime for a file whose content did not change.
func (t *Tx) TouchFile(id int64, size, mtime int64) error {
	_, err := t.exec(`UPDATE files SET size=?, mtime=? WHERE id=?`, size, mtime, id)
	return err
}

var ruleTables = []string{"stages", "preds", "indicators", "rule_techniques", "rule_tactics"}

// deleteRules removes the rules of file id and everything derived from them.
func (t *Tx) deleteRules(fileID int64) error {
	for _, tab := range ruleTables {
		if _, err := t.exec(`DELETE FROM `+tab+` WHERE rule_pk IN (SELECT pk FROM rules WHERE file_id=?)`, fileID); err != nil {
			return err
		}
	}
	if _, err := t.exec(`DELETE FROM rules_fts WHERE rowid IN (SELECT pk FROM rules WHERE file_id=?)`, fileID); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM diagnostics WHERE file_id=?`, fileID); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM rules WHERE file_id=?`, fileID)
	return err
}

// DeleteFile forgets a file that no longer exists, with its rules.
func (t *Tx) DeleteFile(id int64) error {
	t.changed = true
	if err := t.deleteRules(id); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM files WHERE id=?`, id)
	return err
}

func (t *Tx) sourceID(s SourceInfo) (int64, error) {
	if id, ok := t.sources[s]; ok {
		return id, nil
	}
	if _, err := t.exec(`INSERT OR IGNORE INTO sources(repo, repo_url, commit_) VALUES(?, ?, ?)`, s.Repo, s.RepoURL, s.Commit); err != nil {
		return 0, err
	}
	var id int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT id FROM sources WHERE repo=? AND repo_url=? AND commit_=?`, s.Repo, s.RepoURL, s.Commit).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("source %s: %w", s.Repo, err)
	}
	t.sources[s] = id
	return id, nil
}

// PutFile stores a new or changed file with its rules and file-level diagnostics,
// replacing whatever the catalog held for that path. prev is the file's id from
// Files, or 0 for a file the catalog has not seen.
func (t *Tx) PutFile(prev int64, f FileRecord, entries []Entry, fileDiags []rule.Diagnostic) error {
	t.changed = true
	if prev != 0 {
		if err := t.deleteRules(prev); err != nil {
			return err
		}
	}
	var srcID any
	if f.Language != "" {
		id, err := t.sourceID(f.Source)
		if err != nil {
			return err
		}
		srcID = id
	}
	nerr := 0
	for _, e := range entries {
		if e.Rule.HasErrors() {
			nerr++
		}
	}
	for _, d := range fileDiags {
		if d.Severity == rule.Error {
			nerr++
		}
	}
	var fileID int64
	if prev != 0 {
		if _, err := t.exec(`UPDATE files SET source_id=?, rel=?, size=?, mtime=?, hash=?, language=?, rules=?, errors=? WHERE id=?`,
			srcID, f.Rel, f.Size, f.MTime, f.Hash, f.Language, len(entries), nerr, prev); err != nil {
			return err
		}
		fileID = prev
	} else {
		t.nextFID++
		fileID = t.nextFID
		if err := t.add("files", "id, path, source_id, rel, size, mtime, hash, language, rules, errors",
			fileID, f.Path, srcID, f.Rel, f.Size, f.MTime, f.Hash, f.Language, len(entries), nerr); err != nil {
			return err
		}
	}
	for _, d := range fileDiags {
		if err := t.putDiag(nil, fileID, d, false); err != nil {
			return err
		}
	}
	for i := range entries {
		if err := t.putRule(fileID, srcID, &entries[i]); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	return nil
}

func (t *Tx) putDiag(rulePK any, fileID int64, d rule.Diagnostic, derived bool) error {
	return t.add("diagnostics", "rule_pk, file_id, severity, code, file, line, col, message, derived",
		rulePK, fileID, string(d.Severity), d.Code, d.Pos.File, d.Pos.Line, d.Pos.Col, d.Message, b2i(derived))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func stem(p string) string {
	b := path.Base(strings.ReplaceAll(p, `\`, "/"))
	if i := strings.LastIndexByte(b, '.'); i > 0 {
		b = b[:i]
	}
	return strings.ToLower(b)
}

func (t *Tx) putRule(fileID int64, srcID any, e *Entry) error {
	r := e.Rule
	if e.IR == nil {
		if err := e.Encode(); err != nil {
			return err
		}
	}
	ls := r.LogSource
	t.nextPK++
	pk := t.nextPK
	err := t.add("rules", `pk, file_id, language, id, uid, idx, title, title_fold, stem_fold, description, status, severity,
		class, type, authors, date, modified, source_id, repo, path, line, upstream, product, category, service, has_errors, ir`,
		pk, fileID, string(r.Language), r.ID, r.ID, r.Source.Index, r.Title, strings.ToLower(strings.TrimSpace(r.Title)), stem(r.Source.Path),
		r.Description, r.Status, r.Severity, string(r.Class), r.Type, strings.Join(r.Authors, ", "), r.Date, r.Modified,
		srcID, r.Source.Repo, r.Source.Path, r.Source.Line, r.Source.UpstreamURL, ls.Product, ls.Category, ls.Service,
		b2i(r.HasErrors()), e.IR)
	if err != nil {
		return err
	}
	for _, s := range r.Stages {
		if err := t.add("stages", "rule_pk, idx, alt, kind, label, negated, op, text",
			pk, s.Index, s.Alt, string(s.Kind), s.Label, b2i(s.Negated), s.Op, s.Text); err != nil {
			return err
		}
	}
	var fields, vals []string
	// Canonical field names come with the indicators (package fieldmap derived them).
	canon := make(map[string]string, len(r.Indicators))
	for _, in := range r.Indicators {
		canon[in.Field] = in.Canonical
	}
	for _, s := range r.Stages {
		if s.Node == nil || s.Kind == rule.StageCondition {
			continue
		}
		for _, pp := range rule.Preds(s.Node) {
			if err := t.putPred(pk, s.Index, pp, canon); err != nil {
				return err
			}
			fields = append(fields, pp.Pred.Field)
			for _, v := range pp.Pred.Values {
				vals = append(vals, v.S)
			}
		}
	}
	for _, in := range r.Indicators {
		if err := t.add("indicators", "rule_pk, field, canonical, kind, value, key, negated, stage, transforms, language",
			pk, in.Field, in.Canonical, string(in.Kind), in.Value, in.Key, b2i(in.Negated), in.Stage, strings.Join(in.Transforms, "|"), string(r.Language)); err != nil {
			return err
		}
	}
	for _, tech := range uniq(r.Techniques) {
		if err := t.add("rule_techniques", "rule_pk, technique", pk, tech); err != nil {
			return err
		}
	}
	for _, tac := range uniq(r.Tactics) {
		if err := t.add("rule_tactics", "rule_pk, tactic", pk, tac); err != nil {
			return err
		}
	}
	for _, d := range r.Diagnostics {
		if err := t.putDiag(pk, fileID, d, false); err != nil {
			return err
		}
	}
	return t.add("rules_fts", "rowid, title, description, tags, fields, vals",
		pk, r.Title, r.Description, strings.Join(r.Tags, " "), strings.Join(uniq(fields), " "), strings.Join(uniq(vals), " "))
}

func (t *Tx) putPred(pk int64, stage int, pp rule.PolarPred, canonical map[string]string) error {
	p := pp.Pred
	canon, ok := canonical[p.Field]
	if !ok {
		canon = p.Field
	}
	tr := strings.Join(p.Transforms, "|")
	if len(p.Values) == 0 {
		return t.add("preds", "rule_pk, stage, field, canonical, kind, value, negated, transforms",
			pk, stage, p.Field, canon, string(p.Kind), "", b2i(pp.Negated), tr)
	}
	for _, v := range p.Values {
		if err := t.add("preds", "rule_pk, stage, field, canonical, kind, value, negated, transforms",
			pk, stage, p.Field, canon, string(p.Kind), v.S, b2i(pp.Negated), tr); err != nil {
			return err
		}
	}
	return nil
}

func uniq(xs []string) []string {
	if len(xs) < 2 {
		return xs
	}
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Tactic is an ATT&CK tactic as the catalog stores it.
type Tactic struct {
	Short string `json:"short"` // "command-and-control"
	ID    string `json:"id"`    // "TA0011"
	Name  string `json:"name"`  // "Command and Control"
	URL   string `json:"url,omitempty"`
	Order int    `json:"order"` // matrix column, from 0
}

// Technique is an ATT&CK technique as the catalog stores it.
type Technique struct {
	ID         string   `json:"id"` // "T1197", "T1558.004"
	Name       string   `json:"name"`
	Parent     string   `json:"parent,omitempty"`
	Tactics    []string `json:"tactics"` // short names, matrix order
	Revoked    bool     `json:"revoked,omitempty"`
	RevokedBy  string   `json:"revoked_by,omitempty"`
	Deprecated bool     `json:"deprecated,omitempty"`
	URL        string   `json:"url,omitempty"`
}

// SetAttack replaces the ATT&CK tactics and techniques the catalog names rules' tags with.
func (t *Tx) SetAttack(tactics []Tactic, techniques []Technique) error {
	if _, err := t.exec(`DELETE FROM tactics`); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM techniques`); err != nil {
		return err
	}
	for _, x := range tactics {
		if _, err := t.exec(`INSERT OR REPLACE INTO tactics(short, id, name, url, ord) VALUES(?,?,?,?,?)`, x.Short, x.ID, x.Name, x.URL, x.Order); err != nil {
			return err
		}
	}
	for _, x := range techniques {
		if _, err := t.exec(`INSERT OR REPLACE INTO techniques(id, name, parent, tactics, revoked, revoked_by, deprecated, url) VALUES(?,?,?,?,?,?,?,?)`,
			x.ID, x.Name, x.Parent, strings.Join(x.Tactics, ","), b2i(x.Revoked), x.RevokedBy, b2i(x.Deprecated), x.URL); err != nil {
			return err
		}
	}
	return nil
}

// DuplicateCode is the diagnostic code of a rule whose upstream id another rule of the
// same language already has.
const DuplicateCode = "catalog/duplicate-id"

// Finish runs the passes that look at the whole catalog: rule ids made unique per
// language, and the indicator counts. It does nothing when the ingest changed nothing
// (and force is false).
func (t *Tx) Finish(force bool) error {
	if err := t.flush(); err != nil {
		return err
	}
	if t.bulk {
		// Recreate the indexes dropped at Begin, including those other parts of the
		// catalog created (web, event coverage).
		for _, q := range t.dropped {
			if _, err := t.tx.ExecContext(t.ctx, q); err != nil {
				return fmt.Errorf("build indexes: %w", err)
			}
		}
		t.bulk = false
	}
	if !t.changed && !force {
		return nil
	}
	if err := t.dedupe(); err != nil {
		return fmt.Errorf("dedupe ids: %w", err)
	}
	if _, err := t.exec(`DELETE FROM indicator_counts`); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO indicator_counts(key, language, negated, rules)
		SELECT key, language, negated, count(DISTINCT rule_pk) FROM indicators GROUP BY key, language, negated`)
	return err
}

// Changed reports whether the transaction wrote rules or files.
func (t *Tx) Changed() bool { return t.changed }

// dedupe gives every rule an id unique within its language. Among rules claiming the
// same id, the one whose (repository, path, index) sorts first keeps it; each other
// gets "<id>-<8 hex of its repository, path and index>", which does not depend on
// ingest order, and a warning diagnostic naming the rule that kept the id.
func (t *Tx) dedupe() error {
	if _, err := t.exec(`DELETE FROM diagnostics WHERE derived=1`); err != nil {
		return err
	}
	if _, err := t.exec(`UPDATE rules SET id=uid WHERE id<>uid`); err != nil {
		return err
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT r.pk, r.file_id, r.language, r.uid, r.repo, r.path, r.idx, r.line FROM rules r
		JOIN (SELECT language, uid FROM rules GROUP BY language, uid HAVING count(*) > 1) d
		ON r.language = d.language AND r.uid = d.uid`)
	if err != nil {
		return err
	}
	type dup struct {
		pk, file   int64
		lang, uid  string
		repo, path string
		idx, line  int
	}
	var ds []dup
	for rows.Next() {
		var d dup
		if err := rows.Scan(&d.pk, &d.file, &d.lang, &d.uid, &d.repo, &d.path, &d.idx, &d.line); err != nil {
			rows.Close()
			return err
		}
		ds = append(ds, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	sort.Slice(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.lang != b.lang {
			return a.lang < b.lang
		}
		if a.uid != b.uid {
			return a.uid < b.uid
		}
		if a.repo != b.repo {
			return a.repo < b.repo
		}
		if a.path != b.path {
			return a.path < b.path
		}
		return a.idx < b.idx
	})
	for i := 0; i < len(ds); {
		j := i + 1
		for j < len(ds) && ds[j].lang == ds[i].lang && ds[j].uid == ds[i].uid {
			j++
		}
		keeper := ds[i]
		for _, d := range ds[i+1 : j] {
			nid := d.uid + "-" + rule.StableID(d.repo, d.path, d.idx)[:8]
			if _, err := t.exec(`UPDATE rules SET id=? WHERE pk=?`, nid, d.pk); err != nil {
				return err
			}
			diag := rule.Diagnostic{
				Severity: rule.Warning, Code: DuplicateCode,
				Pos: rule.Pos{File: d.path, Line: d.line},
				Message: fmt.Sprintf("id %s is also used by %s/%s (index %d); this rule is listed as %s",
					d.uid, keeper.repo, keeper.path, keeper.idx, nid),
			}
			if err := t.putDiag(d.pk, d.file, diag, true); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}
