package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/source"
)

// Options tune an ingest. The zero value (plus Parsers) is a normal ingest.
type Options struct {
	// Parsers are asked in order; the first whose Detect says yes parses the file.
	Parsers []Parser
	// SourceURL, when set, names the upstream repository of every file (see package source).
	SourceURL string
	// Progress, when set, is called from the ingest goroutine as files are done.
	Progress func(done, total int)
	// Workers bounds parallel parsing; 0 means GOMAXPROCS.
	Workers int
	// MaxFileSize: larger files are skipped unread (0 means 8 MiB).
	MaxFileSize int64
	// Fingerprint identifies the parsers' version (the CLI passes its build). When it
	// differs from the one stored by the previous ingest, every file is parsed again even
	// if unchanged, so a new parser never leaves stale rules behind.
	Fingerprint string
	// Force parses every file again.
	Force bool
	// AttackFingerprint identifies the ATT&CK data (e.g. the bundle's path, size and
	// mtime). When it differs from the one stored with the catalog, Attack is called and
	// its tactics and techniques replace the catalog's; so an unchanged re-ingest never
	// loads the bundle.
	AttackFingerprint string
	Attack            func() (*Attack, error)
	// Meta is stored with the catalog when the ingest writes (Catalog.Meta reads it).
	Meta map[string]string
	// Mirrors are folders filled from repositories by the caller (ruledex sync): their
	// files get the mirror's repository and per-file commit (see source.Mirror).
	Mirrors []*source.Info
}

// Attack is the ATT&CK reference data to store with the catalog.
type Attack struct {
	Tactics    []catalog.Tactic
	Techniques []catalog.Technique
}

// Summary reports what an ingest did.
type Summary struct {
	Roots []string `json:"roots"`
	// Files is every file walked: Changed (recognized, new or modified, parsed),
	// Unchanged (recognized, not parsed again) and Skipped (no parser recognizes it, or
	// binary, or too large). Deleted files disappeared from disk since the last ingest.
	Files     int `json:"files"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Deleted   int `json:"deleted"`
	Skipped   int `json:"skipped"`
	// Rules were parsed by this ingest; TotalRules are in the catalog after it.
	Rules      int `json:"rules"`
	TotalRules int `json:"total_rules"`
	// Errors is RuleErrors (parsed rules with an error diagnostic) plus FileErrors
	// (files with an error that belongs to no rule); Warnings counts warning
	// diagnostics, not rules (a rule may have several).
	Errors     int `json:"errors"`
	RuleErrors int `json:"rules_with_errors"`
	FileErrors int `json:"file_errors"`
	Warnings   int `json:"warnings"`
	// TooLarge lists the files skipped unread for being over the size limit (they
	// are counted in Skipped too).
	TooLarge []SkippedFile `json:"too_large,omitempty"`
	// MaxFileSize is the size limit applied, in bytes.
	MaxFileSize int64 `json:"max_file_size"`
	// Steps are the phases after storing the rules (event coverage, neighbors) that
	// the caller ran and timed; Seconds includes them.
	Steps      []Step         `json:"steps,omitempty"`
	ByLanguage map[string]int `json:"by_language"` // rules parsed, per language
	// Notes are problems that belong to no file (a parser that could not prepare a root).
	Notes     []string      `json:"notes,omitempty"`
	Duration  time.Duration `json:"-"`
	Seconds   float64       `json:"seconds"`
	RulesPerS float64       `json:"rules_per_second"`
}

// SkippedFile is a file an ingest did not read, and why.
type SkippedFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Reason string `json:"reason"`
}

// Step is one timed phase of an ingest run by its caller.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// DefaultMaxFileSize is the size above which files are skipped unread: no rule file
// comes close, and a stray log or archive should not be read whole into memory.
const DefaultMaxFileSize = 8 << 20

// Versioned is implemented by parsers that name the version of their output. The
// version is part of the parse cache key: bump it when the parser's output for the same
// file changes, and the next ingest parses unchanged files again.
type Versioned interface {
	Version() string
}

// FormatVersion names what this package adds to parser output (indicators, ids,
// stored encoding); it is part of the parse cache key like a parser's version.
const FormatVersion = "ingest-1"

const metaFingerprint = "ingest.fingerprint"
const metaAttack = "attack.fingerprint"

// Run ingests the files under roots (folders or files) into cat in one transaction.
// It returns an error, leaving the catalog as it was, when a root cannot be read, the
// catalog cannot be written or ctx is cancelled; problems in single files become
// diagnostics and never stop the ingest.
func Run(ctx context.Context, cat *catalog.Catalog, roots []string, opt Options) (*Summary, error) {
	start := time.Now()
	if len(opt.Parsers) == 0 {
		return nil, errors.New("ingest: no parsers")
	}
	if os.Getenv("GOGC") == "" {
		// Parsing allocates a lot of short-lived trees; collecting less often saves about
		// a tenth of the CPU of a first ingest for some more memory while it runs.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	if opt.MaxFileSize <= 0 {
		opt.MaxFileSize = DefaultMaxFileSize
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	res, err := source.NewResolver(opt.SourceURL)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	for _, m := range opt.Mirrors {
		res.AddMirror(m)
	}
	sum := &Summary{ByLanguage: map[string]int{}, MaxFileSize: opt.MaxFileSize}

	// Walk first: a missing root is the caller's mistake and must not touch the catalog.
	type walked struct {
		root string
		f    source.File
	}
	var files []walked
	seen := map[string]bool{}
	var absRoots, gone []string
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("ingest %s: %w", r, err)
		}
		if ev, err := filepath.EvalSymlinks(abs); err == nil {
			abs = ev
		}
		fs, err := source.Walk(abs, nil)
		if err != nil {
			// A root that is gone but was ingested before (moved, deleted) is
			// re-ingested as empty: its files leave the catalog.
			if _, serr := os.Lstat(abs); !errors.Is(serr, os.ErrNotExist) {
				return nil, fmt.Errorf("ingest %s: %w", r, err)
			}
			had, cerr := cat.Files(ctx, abs, string(filepath.Separator))
			if cerr != nil {
				return nil, fmt.Errorf("ingest %s: %w", r, cat.Plain(cerr))
			}
			if len(had) == 0 {
				return nil, fmt.Errorf("ingest %s: %w", r, err)
			}
			sum.Notes = append(sum.Notes, fmt.Sprintf("%s no longer exists: its %d files leave the catalog", abs, len(had)))
			gone = append(gone, abs)
			fs = nil
		}
		absRoots = append(absRoots, abs)
		for _, f := range fs {
			if !seen[f.Abs] {
				seen[f.Abs] = true
				files = append(files, walked{abs, f})
			}
		}
	}
	sum.Roots = absRoots
	sum.Files = len(files)

	fingerprint := Fingerprint(opt.Parsers) + ";" + opt.Fingerprint
	for _, w := range files {
		if w.f.Size > opt.MaxFileSize {
			sum.TooLarge = append(sum.TooLarge, SkippedFile{Path: w.f.Abs, Size: w.f.Size,
				Reason: fmt.Sprintf("larger than %s", sizeLabel(opt.MaxFileSize))})
		}
	}

	// Plan under the write lock: what is stored cannot change until this ingest commits
	// or rolls back. Readers are not blocked (WAL).
	tx, err := cat.Begin(ctx)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	stored, err := tx.Meta(metaFingerprint)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	force := opt.Force || stored != fingerprint

	prev := map[string]catalog.FileState{}
	for _, r := range absRoots {
		st, err := tx.Files(r, string(filepath.Separator))
		if err != nil {
			return nil, fmt.Errorf("ingest: catalog files: %w", err)
		}
		for k, v := range st {
			prev[k] = v
		}
	}

	type job struct {
		root string
		f    source.File
		prev catalog.FileState
	}
	var jobs []job
	for _, w := range files {
		p, ok := prev[w.f.Abs]
		if ok && !force && p.Size == w.f.Size && p.MTime == w.f.MTime && sameSource(res, w.root, w.f.Abs, p) {
			if p.Language == "" {
				sum.Skipped++
			} else {
				sum.Unchanged++
			}
			continue
		}
		jobs = append(jobs, job{w.root, w.f, p})
	}
	var deleted []catalog.FileState
	for path, p := range prev {
		if !seen[path] {
			deleted = append(deleted, p)
		}
	}
	sort.Slice(deleted, func(i, j int) bool { return deleted[i].Path < deleted[j].Path })

	var attack *Attack
	if opt.Attack != nil {
		stored, err := tx.Meta(metaAttack)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		if stored != opt.AttackFingerprint {
			if attack, err = opt.Attack(); err != nil {
				return nil, fmt.Errorf("ingest: %w", err)
			}
		}
	}
	needAttack := attack != nil
	done := sum.Unchanged + sum.Skipped
	if opt.Progress != nil {
		opt.Progress(done, len(files))
	}
	if len(jobs) == 0 && len(deleted) == 0 && !needAttack && !force && !newRoots(tx, absRoots) {
		// Nothing to write.
		tx.Rollback()
		if err := fillTotal(ctx, cat, sum); err != nil {
			return nil, err
		}
		finish(sum, start)
		return sum, nil
	}

	// Parsers that need the whole tree see it before any of its files.
	began := map[string]bool{}
	for _, j := range jobs {
		if began[j.root] {
			continue
		}
		began[j.root] = true
		for _, p := range opt.Parsers {
			if ra, ok := p.(RootAware); ok {
				dir := j.root
				if st, err := os.Stat(dir); err == nil && !st.IsDir() {
					dir = filepath.Dir(dir)
				}
				if err := safeBegin(ra, dir); err != nil {
					sum.Warnings++
					sum.Notes = append(sum.Notes, fmt.Sprintf("%s: preparing %s: %v", p.Language(), dir, err))
				}
			}
		}
	}

	for _, d := range deleted {
		if err := tx.DeleteFile(d.ID); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	sum.Deleted = len(deleted)

	// Parse in parallel; store from this goroutine as results arrive.
	jobCh := make(chan job)
	outCh := make(chan *result, workers*4)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobCh {
				r := process(j.root, j.f, j.prev, force, res, opt)
				select {
				case outCh <- r:
				case <-wctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobCh)
		for _, j := range jobs {
			select {
			case jobCh <- j:
			case <-wctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(outCh)
	}()
	for r := range outCh {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ingest cancelled: %w", err)
		}
		if err := store(tx, r, sum); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		done++
		if opt.Progress != nil {
			opt.Progress(done, len(files))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ingest cancelled: %w", err)
	}
	if needAttack {
		if err := tx.SetAttack(attack.Tactics, attack.Techniques); err != nil {
			return nil, fmt.Errorf("ingest: attack: %w", err)
		}
		if err := tx.SetMeta(metaAttack, opt.AttackFingerprint); err != nil {
			return nil, err
		}
	}
	if err := tx.SetMeta(metaFingerprint, fingerprint); err != nil {
		return nil, err
	}
	if err := tx.AddRoots(absRoots, gone); err != nil {
		return nil, err
	}
	for k, v := range opt.Meta {
		if err := tx.SetMeta(k, v); err != nil {
			return nil, err
		}
	}
	if err := tx.Finish(force); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ingest cancelled: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	committed = true
	// Committed: an interrupt from here on must not turn this into a failure.
	if err := fillTotal(context.WithoutCancel(ctx), cat, sum); err != nil {
		return nil, err
	}
	finish(sum, start)
	return sum, nil
}

func fillTotal(ctx context.Context, cat *catalog.Catalog, sum *Summary) error {
	// files.rules is kept with each file; counting the rules table would read every
	// stored IR page.
	if err := cat.DB().QueryRowContext(ctx, `SELECT coalesce(sum(rules), 0) FROM files`).Scan(&sum.TotalRules); err != nil {
		return fmt.Errorf("ingest: count rules: %w", err)
	}
	return nil
}

func finish(sum *Summary, start time.Time) {
	sum.Duration = time.Since(start)
	sum.Seconds = sum.Duration.Seconds()
	if sum.Seconds > 0 {
		sum.RulesPerS = float64(sum.Rules) / sum.Seconds
	}
}

// sameSource reports whether a stored file still has the upstream it would get now
// (--source-url, a git checkout's commit and SOURCES.md may change without the file).
func sameSource(res *source.Resolver, root, abs string, p catalog.FileState) bool {
	if p.Language == "" {
		return true // skipped files carry no source
	}
	info := sourceFor(res, root, abs, p)
	rel, commit := info.PathCommit(abs)
	return rel == p.Rel && info.Repo == p.Source.Repo && info.RepoURL == p.Source.RepoURL && commit == p.Source.Commit
}

// sourceFor is the upstream of a file. A file in a plain folder (no repository known)
// keeps the folder it was first ingested under when that folder contains it, so that
// re-ingesting a sub-folder or a single file does not move its rules to another "source".
func sourceFor(res *source.Resolver, root, abs string, p catalog.FileState) *source.Info {
	info := res.For(root, abs)
	if info.Plain && p.Source.RepoURL == "" && p.Source.Repo != "" && p.Source.Repo != info.Repo &&
		strings.HasPrefix(abs, strings.TrimSuffix(p.Source.Repo, string(filepath.Separator))+string(filepath.Separator)) {
		return source.PlainFolder(p.Source.Repo)
	}
	return info
}

// result is one file after reading (and maybe parsing).
type result struct {
	f       source.File
	prev    catalog.FileState
	touch   bool // content unchanged: only size/mtime to record
	rec     catalog.FileRecord
	entries []catalog.Entry
	diags   []rule.Diagnostic
}

func store(tx *catalog.Tx, r *result, sum *Summary) error {
	if r.touch {
		if r.prev.Language == "" {
			sum.Skipped++
		} else {
			sum.Unchanged++
		}
		return tx.TouchFile(r.prev.ID, r.f.Size, r.f.MTime)
	}
	if r.rec.Language == "" {
		sum.Skipped++
	} else {
		sum.Changed++
	}
	for _, e := range r.entries {
		sum.Rules++
		sum.ByLanguage[string(e.Rule.Language)]++
		if e.Rule.HasErrors() {
			sum.Errors++
			sum.RuleErrors++
		}
		for _, d := range e.Rule.Diagnostics {
			if d.Severity == rule.Warning {
				sum.Warnings++
			}
		}
	}
	fileErr := false
	for _, d := range r.diags {
		if d.Severity == rule.Error {
			fileErr = true
		} else {
			sum.Warnings++
		}
	}
	if fileErr {
		sum.Errors++
		sum.FileErrors++
	}
	return tx.PutFile(r.prev.ID, r.rec, r.entries, r.diags)
}

// process reads one file and, when its content changed, detects and parses it. It never
// panics: a parser panic becomes an error diagnostic of the file.
func process(root string, f source.File, prev catalog.FileState, force bool, res *source.Resolver, opt Options) *result {
	r := &result{f: f, prev: prev}
	info := sourceFor(res, root, f.Abs, prev)
	src := info.Source(f.Abs)
	r.rec = catalog.FileRecord{Path: f.Abs, Rel: src.Path, Size: f.Size, MTime: f.MTime,
		Source: catalog.SourceInfo{Repo: info.Repo, RepoURL: info.RepoURL, Commit: src.Commit}}
	if f.Size > opt.MaxFileSize {
		return r // skipped unread
	}
	data, err := os.ReadFile(f.Abs)
	if err != nil {
		r.diags = append(r.diags, rule.Diagnostic{Severity: rule.Error, Code: "ingest/read",
			Pos: rule.Pos{File: src.Path}, Message: fmt.Sprintf("cannot read file: %v", err)})
		return r
	}
	sum := sha256.Sum256(data)
	r.rec.Hash = hex.EncodeToString(sum[:])
	r.rec.Size = int64(len(data))
	if prev.ID != 0 && !force && prev.Hash == r.rec.Hash && prev.Hash != "" && sameSource(res, root, f.Abs, prev) {
		r.touch = true
		return r
	}
	if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 {
		return r // binary
	}
	var p Parser
	for _, cand := range opt.Parsers {
		ok, err := safeDetect(cand, src.Path, data)
		if err != nil {
			r.diags = append(r.diags, rule.Diagnostic{Severity: rule.Warning, Code: "ingest/detect-panic",
				Pos: rule.Pos{File: src.Path}, Message: fmt.Sprintf("%s detector crashed: %v", cand.Language(), err)})
			continue
		}
		if ok {
			p = cand
			break
		}
	}
	if p == nil {
		return r
	}
	lang := p.Language()
	r.rec.Language = string(lang)
	rules, diags, err := safeParse(p, src, data)
	r.diags = append(r.diags, diags...)
	if err != nil {
		r.diags = append(r.diags, rule.Diagnostic{Severity: rule.Error, Code: "ingest/parser-panic",
			Pos: rule.Pos{File: src.Path}, Message: fmt.Sprintf("%s parser crashed: %v", lang, err)})
		rules = nil
	}
	for i, ru := range rules {
		if ru == nil {
			continue
		}
		if ru.Language == "" {
			ru.Language = lang
		}
		if ru.Source.Repo == "" && ru.Source.Path == "" {
			line, idx := ru.Source.Line, ru.Source.Index
			ru.Source = src
			ru.Source.Line, ru.Source.Index = line, idx
		}
		if ru.ID == "" {
			ru.ID = rule.StableID(src.Repo, src.Path, i)
		}
		if ru.Stages == nil {
			ru.Stages = []rule.Stage{}
		}
		inds, err := safeIndicators(ru)
		if err != nil {
			ru.Diagnostics = append(ru.Diagnostics, rule.Diagnostic{Severity: rule.Error, Code: "ingest/indicators-panic",
				Pos: rule.Pos{File: src.Path, Line: ru.Source.Line}, Message: fmt.Sprintf("deriving indicators crashed: %v", err)})
		}
		ru.Indicators = inds
		e := catalog.Entry{Rule: ru}
		if err := e.Encode(); err != nil {
			ru.Diagnostics = append(ru.Diagnostics, rule.Diagnostic{Severity: rule.Error, Code: "ingest/encode",
				Pos: rule.Pos{File: src.Path, Line: ru.Source.Line}, Message: err.Error()})
			ru.Root, ru.Stages, ru.Indicators = nil, []rule.Stage{}, nil
			if err := e.Encode(); err != nil {
				continue
			}
		}
		r.entries = append(r.entries, e)
	}
	if len(r.entries) == 0 && len(r.diags) == 0 {
		r.diags = append(r.diags, rule.Diagnostic{Severity: rule.Warning, Code: "ingest/no-rules",
			Pos: rule.Pos{File: src.Path}, Message: fmt.Sprintf("recognized as %s but holds no rule", lang)})
	}
	return r
}

func safeDetect(p Parser, path string, data []byte) (ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			ok, err = false, fmt.Errorf("%v", v)
		}
	}()
	return p.Detect(path, data), nil
}

func safeParse(p Parser, src rule.Source, data []byte) (rules []*rule.Rule, diags []rule.Diagnostic, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v\n%s", v, firstFrames(debug.Stack()))
		}
	}()
	rules, diags = p.Parse(src, data)
	return rules, diags, nil
}

// firstFrames keeps the top of a stack trace: enough to find the bug, short enough for a diagnostic.
func firstFrames(st []byte) string {
	lines := strings.Split(string(st), "\n")
	if len(lines) > 16 {
		lines = lines[:16]
	}
	return strings.Join(lines, "\n")
}

func safeIndicators(r *rule.Rule) (inds []rule.Indicator, err error) {
	defer func() {
		if v := recover(); v != nil {
			inds, err = nil, fmt.Errorf("%v", v)
		}
	}()
	return fieldmap.Default().Indicators(r), nil
}

func safeBegin(ra RootAware, root string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	return ra.Begin(root)
}

// Fingerprint is the parse cache key of a parser list: each parser's language and, when
// it has one, version (see Versioned), plus FormatVersion. It does not depend on the
// executable, so `go run` and an installed binary of the same code share the cache.
func Fingerprint(parsers []Parser) string {
	parts := []string{FormatVersion}
	for _, p := range parsers {
		v := string(p.Language())
		if vp, ok := p.(Versioned); ok {
			v += "@" + vp.Version()
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, ",")
}

// sizeLabel prints a byte count the way users read limits ("8 MiB").
func sizeLabel(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// newRoots reports whether some root is not yet recorded with the catalog, so that an
// ingest that changes no file still records it (a catalog written before roots were
// recorded learns them).
func newRoots(tx *catalog.Tx, roots []string) bool {
	known, err := tx.KnownRoots()
	if err != nil {
		return true
	}
	for _, r := range roots {
		found := false
		for _, k := range known {
			if r == k || strings.HasPrefix(r, strings.TrimSuffix(k, string(filepath.Separator))+string(filepath.Separator)) {
				found = true
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}
