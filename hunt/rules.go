package hunt

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/rule"
)

// Parser is a rule language's parser, as cmd/ruledex registers them (ingest.Parser has
// this shape; hunt does not import ingest and its catalog machinery).
type Parser interface {
	Language() rule.Language
	Detect(path string, data []byte) bool
	Parse(src rule.Source, data []byte) ([]*rule.Rule, []rule.Diagnostic)
}

// Filter selects the rules a hunt runs. Zero values select everything.
type Filter struct {
	// MinLevel keeps rules of this Sigma level or above.
	MinLevel string
	// Status keeps rules whose status is one of these (stable, test, experimental...).
	Status []string
	// Tags keeps rules with one of these tags (as written, case-insensitive: attack.t1197)
	// or ATT&CK technique/tactic ids and names (T1197 also selects T1197.001; persistence).
	Tags []string
	// Exclude drops rules by id, title, or source path (a file, a folder holding it, or
	// a glob on the path).
	Exclude []string
}

// Levels are Sigma's levels, lowest first.
var Levels = []string{"informational", "low", "medium", "high", "critical"}

// LevelRank orders Sigma levels; -1 for unknown or empty.
func LevelRank(l string) int {
	for i, x := range Levels {
		if strings.EqualFold(x, strings.TrimSpace(l)) {
			return i
		}
	}
	return -1
}

// ruleExts are the extensions some registered parser reads; other files are not
// opened (a rules folder may hold images, READMEs of other tools, archives).
var ruleExts = map[string]bool{".yml": true, ".yaml": true, ".kql": true, ".csl": true, ".kusto": true,
	".spl": true, ".toml": true, ".yaral": true, ".txt": true}

// Loaded is the result of LoadRules.
type Loaded struct {
	Rules []*rule.Rule
	// Skipped are rules or files that cannot run, one located line each.
	Skipped []string
	// Warnings are parser warnings on rules that run (a list-valued log source, ...).
	Warnings []string
	// Filtered counts the rules the Filter left out.
	Filtered int
	// Cached counts the rule files read from the rule cache instead of parsed.
	Cached int
}

// LoadRules parses every rule file under paths (files or folders, comma-separated
// lists allowed) with the first parser that recognizes it, and applies f. A path that
// cannot be read is an error; a file no parser recognizes is ignored.
func LoadRules(paths []string, parsers []Parser, f Filter) (*Loaded, error) {
	return Load(paths, LoadOptions{Parsers: parsers, Filter: f})
}

// LoadOptions configure Load.
type LoadOptions struct {
	Parsers []Parser
	Filter  Filter
	// CacheDir, when set, keeps the parsed rules between runs (see the rule cache in
	// cache.go): a hunt over unchanged rules reads them instead of parsing them. The
	// rules then lack what hunting never reads: Body, Bodies, Description,
	// References, FalsePositives, Docs, Indicators and Authors.
	CacheDir string
	// Fingerprint identifies the parsers' build in the cache key (BuildFingerprint).
	Fingerprint string
	// CacheError receives a cache that could not be written (the load still succeeds).
	CacheError func(error)
}

// Load is LoadRules with a rule cache. Files are read, hashed and parsed on every
// core; with a cache, only files whose content changed are parsed.
func Load(paths []string, o LoadOptions) (*Loaded, error) {
	var files, roots []string
	for _, arg := range paths {
		for _, p := range strings.Split(arg, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			roots = append(roots, p)
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("rules %s: %w", p, err)
			}
			if !st.IsDir() {
				files = append(files, p)
				continue
			}
			err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					if strings.HasPrefix(d.Name(), ".") && q != p {
						return filepath.SkipDir
					}
					return nil
				}
				if ruleExts[strings.ToLower(filepath.Ext(q))] {
					files = append(files, q)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("rules %s: %w", p, err)
			}
		}
	}
	var cache *ruleCache
	if o.CacheDir != "" {
		cache = openCache(o.CacheDir, o.Fingerprint, roots)
	}
	res := make([]parsed, len(files))
	sums := make([][32]byte, len(files))
	var dirty atomic.Bool
	var hits atomic.Int64
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				data, p, ok := readRuleFile(files[i])
				if !ok {
					res[i] = p // not cached by content: read again next time
					continue
				}
				if cache != nil {
					sums[i] = sha256.Sum256(data)
					if p, hit := cache.lookup(files[i], sums[i]); hit {
						res[i] = p
						hits.Add(1)
						continue
					}
					dirty.Store(true)
				}
				res[i] = parseData(files[i], data, o.Parsers)
				if cache != nil {
					for _, r := range res[i].rules {
						trim(r)
					}
				}
			}
		}()
	}
	wg.Wait()
	if cache != nil {
		if err := cache.save(files, sums, res, dirty.Load()); err != nil && o.CacheError != nil {
			o.CacheError(err)
		}
	}
	out := &Loaded{Cached: int(hits.Load())}
	for _, p := range res {
		out.Skipped = append(out.Skipped, p.errs...)
		out.Warnings = append(out.Warnings, p.warns...)
		// Every language goes to the engine: it runs KQL, SPL, Elastic and YARA-L
		// single-event rules through the field map and lists the rest with a reason.
		out.Rules = append(out.Rules, p.rules...)
	}
	n := len(out.Rules)
	out.Rules = o.Filter.apply(out.Rules)
	out.Filtered = n - len(out.Rules)
	return out, nil
}

// parsed is one rule file's rules, errors and warnings.
type parsed struct {
	rules []*rule.Rule
	errs  []string
	warns []string
}

// readRuleFile reads a rule file; ok is false when it cannot be read or is too large,
// and p then says why.
func readRuleFile(path string) (data []byte, p parsed, ok bool) {
	data, err := readFile(path, ingest.DefaultMaxFileSize)
	switch {
	case errors.Is(err, errTooLarge):
		// The same limit as ingest: no rule file is that large, and reading one would
		// echo megabytes of non-rule text into the skipped list.
		p.errs = append(p.errs, fmt.Sprintf("%s: skipped: larger than %d MiB", path, ingest.DefaultMaxFileSize>>20))
		return nil, p, false
	case err != nil:
		p.errs = append(p.errs, fmt.Sprintf("%s: %v", path, err))
		return nil, p, false
	}
	return data, p, true
}

var errTooLarge = errors.New("file too large")

func parseData(path string, data []byte, parsers []Parser) (p parsed) {
	slashed := filepath.ToSlash(path)
	for _, ps := range parsers {
		if !ps.Detect(slashed, data) {
			continue
		}
		rs, diags := ps.Parse(rule.Source{Repo: filepath.ToSlash(filepath.Dir(path)), Path: slashed}, data)
		for _, d := range diags {
			if d.Severity == rule.Error {
				p.errs = append(p.errs, d.String())
			}
		}
		for _, r := range rs {
			for _, d := range r.Diagnostics {
				if d.Severity == rule.Warning {
					p.warns = append(p.warns, d.String())
				}
			}
		}
		p.rules = rs
		return p
	}
	return p
}

// apply keeps the rules f selects, and every rule a kept correlation reads.
func (f Filter) apply(rules []*rule.Rule) []*rule.Rule {
	keep := func(r *rule.Rule) bool {
		if f.MinLevel != "" && LevelRank(r.Severity) < LevelRank(f.MinLevel) {
			return false
		}
		if len(f.Status) > 0 && !slices.ContainsFunc(f.Status, func(s string) bool { return strings.EqualFold(s, r.Status) }) {
			return false
		}
		if len(f.Tags) > 0 && !slices.ContainsFunc(f.Tags, func(t string) bool { return hasTag(r, t) }) {
			return false
		}
		return !slices.ContainsFunc(f.Exclude, func(x string) bool { return excludes(x, r) })
	}
	need := map[string]bool{}
	for _, r := range rules {
		if r.Correlation != nil && keep(r) {
			for _, ref := range r.Correlation.Rules {
				need[ref] = true
			}
		}
	}
	var out []*rule.Rule
	for _, r := range rules {
		if keep(r) || need[r.ID] || (r.Name != "" && need[r.Name]) {
			out = append(out, r)
		}
	}
	return out
}

func hasTag(r *rule.Rule, t string) bool {
	t = strings.TrimSpace(t)
	if t == "" {
		return false
	}
	low := strings.ToLower(t)
	for _, x := range r.Tags {
		if strings.EqualFold(x, t) {
			return true
		}
	}
	for _, x := range r.Techniques {
		// T1197 selects its sub-techniques (T1197.001) too.
		if strings.EqualFold(x, t) || strings.HasPrefix(strings.ToLower(x), low+".") {
			return true
		}
	}
	for _, x := range r.Tactics {
		if strings.EqualFold(x, t) || strings.EqualFold(strings.ReplaceAll(x, "-", "_"), t) {
			return true
		}
	}
	return false
}

func excludes(x string, r *rule.Rule) bool {
	x = strings.TrimSpace(x)
	if x == "" {
		return false
	}
	if strings.EqualFold(x, r.ID) || strings.EqualFold(x, r.Title) || (r.Name != "" && x == r.Name) {
		return true
	}
	p := filepath.Clean(filepath.FromSlash(r.Source.Path))
	cx := filepath.Clean(x)
	if p == cx || strings.HasPrefix(p, cx+string(filepath.Separator)) {
		return true
	}
	if ok, _ := filepath.Match(x, p); ok {
		return true
	}
	ok, _ := filepath.Match(x, filepath.Base(p))
	return ok
}
