package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/derive"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/source"
	"github.com/ruledex/ruledex/winevent"
)

// openCatalog opens the --db catalog. mustExist refuses to create an empty one (read
// commands), so a mistyped --db says so instead of reporting "no such rule".
func openCatalog(mustExist bool) (*catalog.Catalog, error) {
	if mustExist {
		if _, err := os.Stat(globals.db); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no catalog at %s: run `ruledex ingest PATH...` first (or give --db FILE)", globals.db)
		}
	}
	return catalog.Open(globals.db)
}

// openDerived is openCatalog(true) for commands that show event coverage or neighbors:
// it first completes derived data an interrupted ingest left undone.
func openDerived() (*catalog.Catalog, error) {
	cat, err := openCatalog(true)
	if err != nil {
		return nil, err
	}
	ctx := root.Context()
	if ctx == nil { // called in-process, outside a command run
		ctx = context.Background()
	}
	if err := completeDerived(ctx, cat); err != nil {
		cat.Close()
		return nil, err
	}
	return cat, nil
}

// attackBundle is the ATT&CK bundle under --data and a fingerprint of it (path, size,
// mtime); "" without --data.
func attackBundle() (path, fingerprint string, err error) {
	if globals.data == "" {
		return "", "", nil
	}
	p := filepath.Join(globals.data, "attack", "enterprise-attack.json")
	st, err := os.Stat(p)
	if err != nil {
		return "", "", fmt.Errorf("ATT&CK data (--data %s): %w", globals.data, err)
	}
	return p, fmt.Sprintf("%s %d %d", p, st.Size(), st.ModTime().UnixNano()), nil
}

// attackMatrix loads the ATT&CK bundle when --data is given; nil without --data.
func attackMatrix() (*attack.Matrix, error) {
	p, _, err := attackBundle()
	if err != nil || p == "" {
		return nil, err
	}
	m, err := attack.Load(p)
	if err != nil {
		return nil, fmt.Errorf("ATT&CK data: %w", err)
	}
	return m, nil
}

// eventCatalog loads the Windows event catalog when --data is given; nil without.
func eventCatalog() (*winevent.Catalog, error) {
	if globals.data == "" {
		return nil, nil
	}
	c, err := winevent.Load(winevent.Dir(globals.data))
	if err != nil {
		return nil, fmt.Errorf("event data (--data %s): %w", globals.data, err)
	}
	return c, nil
}

// attackForCatalog converts the bundle into what the catalog stores.
func attackForCatalog(m *attack.Matrix) *ingest.Attack {
	a := &ingest.Attack{}
	for _, t := range m.Tactics() {
		a.Tactics = append(a.Tactics, catalog.Tactic{Short: t.Short, ID: t.ID, Name: t.Name, URL: t.URL, Order: t.Order})
	}
	for _, t := range m.Techniques() {
		a.Techniques = append(a.Techniques, catalog.Technique{ID: t.ID, Name: t.Name, Parent: t.Parent, Tactics: t.Tactics,
			Revoked: t.Revoked, RevokedBy: t.RevokedBy, Deprecated: t.Deprecated, URL: t.URL})
	}
	return a
}

// parseCacheVersion is the CLI's part of the parse cache key. Bump it when a parser
// changes its output for unchanged files and does not say so itself (ingest.Versioned):
// the next ingest then parses everything again. --force does the same once.
const parseCacheVersion = "1"

// parseFingerprint keys the parse cache by what decides parser output: the parsers and
// their versions, parseCacheVersion and the versions of the modules they use. Unlike
// the executable's size and time it is the same for `go run`, `go test` and an
// installed binary of the same code, so switching between them parses nothing again.
func parseFingerprint() string {
	fp := "cli-" + parseCacheVersion // ingest adds the parsers and their versions
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			fp += ";" + d.Path + "@" + d.Version
		}
	}
	return fp
}

// metaDataDir remembers the --data folder of the last ingest that had one, so later
// commands without --data (ruledex show) still find the event catalog.
const metaDataDir = "cli.data-dir"

// useStoredDataDir sets --data from the catalog when the user gave none.
func useStoredDataDir(ctx context.Context, cat *catalog.Catalog) {
	if globals.data != "" {
		return
	}
	if d, err := cat.Meta(ctx, metaDataDir); err == nil && d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			globals.data = d
		}
	}
}

// storedDataDir is useStoredDataDir for commands that have not opened the catalog: it
// reads the folder from an existing catalog, and creates none.
func storedDataDir() {
	if globals.data != "" {
		return
	}
	if _, err := os.Stat(globals.db); err != nil {
		return
	}
	if cat, err := catalog.Open(globals.db); err == nil {
		useStoredDataDir(context.Background(), cat)
		cat.Close()
	}
}

// ingestOptions are the ingest command's knobs, shared with serve.
type ingestOptions struct {
	sourceURL string
	force     bool
	progress  bool // draw a progress bar on stderr when it is a terminal
	// mirrors are the repositories ruledex sync fetched (see ingest.Options.Mirrors).
	mirrors []*source.Info
	// attack is an ATT&CK bundle ruledex sync fetched, used when --data gives none.
	attack string
}

// errDerived marks an error of the derived steps, after the ingest committed.
var errDerived = errors.New("derived data")

// ingestPaths runs an ingest with the registered parsers and, with --data, the ATT&CK
// names, then brings derived data up to date. An error wrapping errDerived means the
// rules were saved and only the derived steps failed.
func ingestPaths(ctx context.Context, cat *catalog.Catalog, paths []string, o ingestOptions) (*ingest.Summary, error) {
	start := time.Now()
	useStoredDataDir(ctx, cat) // a re-ingest without --data keeps ATT&CK names and event coverage
	opt := ingest.Options{Parsers: parsers(), SourceURL: o.sourceURL, Force: o.force, Fingerprint: parseFingerprint(), Mirrors: o.mirrors}
	p, fp, err := attackBundle()
	if err != nil {
		return nil, err
	}
	// Saved with the rules, cleared when the derived steps are done: an interrupt in
	// between leaves the mark, and the next command that reads derived data completes it.
	opt.Meta = map[string]string{metaDerivePending: "1"}
	if p != "" {
		if abs, err := filepath.Abs(globals.data); err == nil {
			opt.Meta[metaDataDir] = abs
		}
		opt.AttackFingerprint = fp
		opt.Attack = func() (*ingest.Attack, error) {
			m, err := attackMatrix()
			if err != nil {
				return nil, err
			}
			return attackForCatalog(m), nil
		}
	} else if o.attack != "" {
		if st, err := os.Stat(o.attack); err == nil {
			opt.AttackFingerprint = fmt.Sprintf("%s %d %d", o.attack, st.Size(), st.ModTime().UnixNano())
			opt.Attack = func() (*ingest.Attack, error) {
				m, err := attack.Load(o.attack)
				if err != nil {
					return nil, fmt.Errorf("ATT&CK data: %w", err)
				}
				return attackForCatalog(m), nil
			}
		}
	}
	tty := o.progress && term.IsTerminal(int(os.Stderr.Fd()))
	var bar *progressbar.ProgressBar
	if tty {
		opt.Progress = func(done, total int) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionSetDescription("ingest"), progressbar.OptionShowCount(),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			}
			bar.Set(done)
		}
	}
	sum, err := ingest.Run(ctx, cat, paths, opt)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return sum, err
	}
	wc, err := eventCatalog()
	if err != nil {
		return sum, fmt.Errorf("%w: %w", errDerived, err)
	}
	// The derived steps can take seconds after the files are done: say what runs.
	var status func(string)
	if tty {
		status = func(step string) { fmt.Fprintf(os.Stderr, "\r\x1b[Kderiving: %s…", step) }
	}
	timings, err := derive.Timed(ctx, cat, wc, status)
	if tty {
		fmt.Fprint(os.Stderr, "\r\x1b[K")
	}
	for _, t := range timings {
		sum.Steps = append(sum.Steps, ingest.Step{Name: t.Name, Seconds: t.Duration.Seconds()})
	}
	sum.Duration = time.Since(start)
	sum.Seconds = sum.Duration.Seconds()
	if sum.Seconds > 0 {
		sum.RulesPerS = float64(sum.Rules) / sum.Seconds
	}
	if err != nil {
		return sum, fmt.Errorf("%w: %w", errDerived, err)
	}
	if err := clearDerivePending(ctx, cat); err != nil {
		return sum, fmt.Errorf("%w: %w", errDerived, err)
	}
	return sum, nil
}

// metaDerivePending is set by an ingest that saved rules and cleared once event
// coverage and neighbors are up to date.
const metaDerivePending = "cli.derive-pending"

func clearDerivePending(ctx context.Context, cat *catalog.Catalog) error {
	if v, err := cat.Meta(ctx, metaDerivePending); err != nil || v == "" {
		return err
	}
	tx, err := cat.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.SetMeta(metaDerivePending, ""); err != nil {
		return err
	}
	return tx.Commit()
}

// completeDerived finishes derived data an interrupted ingest left undone, for the
// commands that show it (show, neighbors, overlap, events). It costs one meta read
// when nothing is pending.
func completeDerived(ctx context.Context, cat *catalog.Catalog) error {
	if v, err := cat.Meta(ctx, metaDerivePending); err != nil || v == "" {
		return err
	}
	useStoredDataDir(ctx, cat)
	fmt.Fprintln(os.Stderr, "ruledex: completing the event coverage and neighbors an interrupted ingest left undone")
	if err := syncDerived(ctx, cat); err != nil {
		return fmt.Errorf("completing derived data: %w", err)
	}
	return clearDerivePending(ctx, cat)
}

// syncDerived brings event coverage (with --data) and neighbors up to date after an
// ingest; see derive.All.
func syncDerived(ctx context.Context, cat *catalog.Catalog) error {
	wc, err := eventCatalog()
	if err != nil {
		return err
	}
	return derive.All(ctx, cat, wc)
}

// usageArgs makes a wrong number of arguments exit with the usage status.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return withCode(exitUsage, fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
		}
		return nil
	}
}

func init() {
	// An unknown flag or a bad flag value is a usage error too.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return withCode(exitUsage, fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
	})
}
