package gitsource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/source"
)

// IngestFunc ingests what a sync fetched.
type IngestFunc func(ctx context.Context, in Fetched) (*ingest.Summary, error)

// Fetched is what a sync hands to its ingest.
type Fetched struct {
	// Roots are the mirror folders of the rule sources that synced.
	Roots []string
	// Mirrors give their files' repositories and commits (for ingest.Options.Mirrors).
	Mirrors []*source.Info
	// Attack is the ATT&CK bundle of a kind: attack source, "" without one.
	Attack string
	// Files is the number of files in each root's mirror.
	Files []int
	// Key identifies this set of mirrors at these commits: a catalog that recorded the
	// same key after its last ingest, and still holds Files files under each root, has
	// nothing to ingest (the caller may skip the walk).
	Key string
}

// Options tune a sync.
type Options struct {
	// CacheDir holds one folder per source (default: DefaultCacheDir).
	CacheDir string
	// Env reads tokens (default os.Getenv).
	Env Env
	// Log, when set, receives one line per step people may wait for.
	Log func(msg string)
	// Ingest reads the updated mirrors into the catalog; nil only fetches.
	Ingest IngestFunc
	// Parallel bounds the repositories fetched at once (0 means 4).
	Parallel int
	// Offline fetches nothing: the mirrors already in the cache are ingested as they
	// are (after a parser upgrade, or without network). A source never fetched is
	// reported as "missing", which is not a failure.
	Offline bool
}

// DefaultCacheDir is the user cache folder's ruledex/repos.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache folder: %w", err)
	}
	return filepath.Join(d, "ruledex", "repos"), nil
}

// RepoReport is what a sync did with one source.
type RepoReport struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Ref  string `json:"ref"` // the full reference fetched
	Kind string `json:"kind"`
	// Status: "new" (first sync), "updated", "unchanged", "failed", or "missing"
	// (offline, and never fetched).
	Status   string `json:"status"`
	Commit   string `json:"commit,omitempty"`
	Previous string `json:"previous,omitempty"`
	Changes
	Files   int     `json:"files"` // files in the mirror
	Dir     string  `json:"dir,omitempty"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Report is the outcome of a sync.
type Report struct {
	Repos  []RepoReport    `json:"repos"`
	Failed int             `json:"failed"`
	Ingest *ingest.Summary `json:"ingest,omitempty"`
	// IngestError is set when the mirrors were updated but the catalog was not.
	IngestError string `json:"ingest_error,omitempty"`
	// CatalogCurrent: the ingest found the catalog already holding these commits and
	// did not walk the mirrors.
	CatalogCurrent bool `json:"catalog_current,omitempty"`
	// Stale are mirror folders the catalog still holds rules from whose source is no
	// longer in the sources file (set by callers that know the catalog).
	Stale []string `json:"stale,omitempty"`
	// Attack is the ATT&CK bundle of a kind: attack source, when one was synced.
	Attack  string  `json:"attack,omitempty"`
	Seconds float64 `json:"seconds"`
}

// ErrSomeFailed is returned (wrapped) when at least one repository could not be
// synced; the others were, and the report says which failed and why.
var ErrSomeFailed = errors.New("some repositories failed to sync")

// Sync fetches every source, updates its mirror and ingests the mirrors of the
// sources that succeeded in one ingest. A failing repository is reported and skipped:
// its rules stay in the catalog as they were. The error is nil when everything
// succeeded, wraps ErrSomeFailed when only repositories failed, and is the ingest's
// error when the catalog could not be written (the report is returned in every case).
func Sync(ctx context.Context, srcs []Source, opt Options) (*Report, error) {
	start := time.Now()
	serveLocalInProcess()
	if opt.Env == nil {
		opt.Env = os.Getenv
	}
	if opt.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		opt.CacheDir = d
	}
	var logMu sync.Mutex
	logf := func(format string, a ...any) {
		if opt.Log != nil {
			logMu.Lock()
			defer logMu.Unlock()
			opt.Log(fmt.Sprintf(format, a...))
		}
	}
	rep := &Report{}
	var roots []string
	var mirrors []*source.Info
	var counts []int
	var key strings.Builder
	// Locks first, one after the other in name order: two syncs (serve's loop and a
	// CLI run) then never hold each other's locks while waiting. They are held until
	// the ingest has read the mirrors, which another sync must not change meanwhile.
	lockErr := make([]error, len(srcs))
	order := make([]int, len(srcs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(srcs[a].Name, srcs[b].Name) })
	for _, i := range order {
		base := filepath.Join(opt.CacheDir, srcs[i].Name)
		if err := os.MkdirAll(base, 0o755); err != nil {
			lockErr[i] = fmt.Errorf("cache: %w", err)
			continue
		}
		unlock, err := lockFile(filepath.Join(base, "lock"))
		if err != nil {
			lockErr[i] = err
			continue
		}
		defer unlock()
	}
	// Fetches overlap: most of their time is the network.
	results := make([]RepoReport, len(srcs))
	states := make([]*state, len(srcs))
	par := opt.Parallel
	if par <= 0 {
		par = 4
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if lockErr[i] != nil {
				results[i] = RepoReport{Name: src.Name, URL: DisplayURL(src.URL), Status: "failed", Error: lockErr[i].Error()}
				return
			}
			results[i], states[i] = syncOne(ctx, src, opt, logf)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		rep.Repos = results
		return rep, err
	}
	for i, src := range srcs {
		rr, st := results[i], states[i]
		rep.Repos = append(rep.Repos, rr)
		if rr.Status == "missing" {
			logf("%s: not fetched yet (offline)", src.Name)
			continue
		}
		if rr.Status == "failed" {
			rep.Failed++
			logf("%s: failed: %s", src.Name, rr.Error)
			continue
		}
		logf("%s: %s at %.12s (%+d ~%d -%d >%d)", src.Name, rr.Status, rr.Commit, rr.Added, rr.Modified, rr.Deleted, rr.Renamed)
		if len(rr.Missing) > 0 {
			logf("%s: not in the repository: %s", src.Name, strings.Join(rr.Missing, ", "))
		}
		if len(rr.Refused) > 0 {
			logf("%s: refused unsafe paths: %s", src.Name, strings.Join(rr.Refused, ", "))
		}
		if src.IsAttack() {
			if len(src.Paths) > 0 {
				p := filepath.Join(rr.Dir, filepath.FromSlash(src.Paths[0]))
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					rep.Attack = p
				}
			}
			continue
		}
		roots = append(roots, rr.Dir)
		mirrors = append(mirrors, source.Mirror(DisplayURL(src.URL), rr.Dir, st.Files))
		counts = append(counts, len(st.Files))
		fmt.Fprintf(&key, "%s=%s@%s:%s;", src.Name, DisplayURL(src.URL), st.Commit, strings.Join(src.Paths, ","))
	}
	var err error
	if opt.Ingest != nil && len(roots) > 0 {
		logf("ingesting %d mirrors", len(roots))
		if rep.Attack != "" {
			fmt.Fprintf(&key, "attack=%s;", rep.Attack)
		}
		sum, ierr := opt.Ingest(ctx, Fetched{Roots: roots, Mirrors: mirrors, Attack: rep.Attack, Files: counts, Key: key.String()})
		rep.Ingest = sum
		rep.CatalogCurrent = sum == nil && ierr == nil
		if ierr != nil {
			rep.IngestError = ierr.Error()
			err = fmt.Errorf("ingest: %w", ierr)
		}
	}
	if err == nil && rep.Failed > 0 {
		err = fmt.Errorf("%w: %d of %d", ErrSomeFailed, rep.Failed, len(srcs))
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, err
}

// syncOne fetches one source and updates its mirror (the caller holds its lock). On
// success it returns the mirror's state.
func syncOne(ctx context.Context, src Source, opt Options, logf func(string, ...any)) (RepoReport, *state) {
	start := time.Now()
	kind := src.Kind
	if kind == "" {
		kind = KindRules
	}
	rr := RepoReport{Name: src.Name, URL: DisplayURL(src.URL), Ref: src.Ref, Kind: kind}
	auth, token := authFor(src.URL, opt.Env)
	fail := func(err error) (RepoReport, *state) {
		rr.Status = "failed"
		rr.Error = redact(err.Error(), token)
		rr.Seconds = time.Since(start).Seconds()
		return rr, nil
	}
	base := filepath.Join(opt.CacheDir, src.Name)
	repo, err := openRepo(filepath.Join(base, "git"), src.URL)
	if err != nil {
		return fail(scrub(err, token))
	}
	m := &mirror{dir: filepath.Join(base, "files"), stateFile: filepath.Join(base, "state.json"), src: src, repo: repo}
	old := loadState(m.stateFile)
	if old != nil {
		rr.Previous = old.Commit
	}
	if opt.Offline {
		if _, err := os.Stat(m.dir); err != nil || old == nil || old.URL != src.URL || !slices.Equal(old.Paths, src.Paths) {
			rr.Status = "missing"
			return rr, nil
		}
		rr.Status, rr.Commit, rr.Files, rr.Dir = "unchanged", old.Commit, len(old.Files), m.dir
		return rr, old
	}
	logf("%s: fetching %s", src.Name, rr.URL)
	commit, name, err := fetch(ctx, repo, src.Ref, auth)
	if err != nil {
		return fail(scrub(err, token))
	}
	rr.Ref = string(name)
	st, ch, err := m.update(ctx, commit)
	if err != nil {
		return fail(scrub(err, token))
	}
	rr.Changes = ch
	rr.Commit = st.Commit
	rr.Files = len(st.Files)
	rr.Dir = m.dir
	switch {
	case rr.Previous == "":
		rr.Status = "new"
	case ch.Total() > 0 || rr.Previous != rr.Commit:
		rr.Status = "updated"
	default:
		rr.Status = "unchanged"
	}
	rr.Seconds = time.Since(start).Seconds()
	return rr, st
}

// Mirrored reports what the cache holds for a source: the commit of its mirror and
// the number of files, ok false when it was never synced (or its url or paths changed
// since, so the next sync rewrites it).
func Mirrored(cacheDir string, src Source) (commit string, files int, ok bool) {
	st := loadState(filepath.Join(cacheDir, src.Name, "state.json"))
	if st == nil || st.URL != src.URL || !slices.Equal(st.Paths, src.Paths) {
		return "", 0, false
	}
	return st.Commit, len(st.Files), true
}
