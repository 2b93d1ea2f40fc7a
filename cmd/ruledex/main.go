// Command ruledex is the detection-rule encyclopedia's CLI: ingest rules, show them,
// count indicators, serve the wiki and hunt with Sigma rules. It is the only place
// that wires ruledex's packages together.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
)

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed (I/O, catalog, bad input it could not work around)
	exitUsage   = 2 // the command line was wrong
	exitNoMatch = 3 // a lookup (show, indicator) found nothing
)

// globals are the persistent flags every subcommand sees.
var globals struct {
	db   string // catalog file
	data string // folder laid out like ../shared/corpus: attack/, events/
}

var root = &cobra.Command{
	Use:   "ruledex",
	Short: "A detection-rule encyclopedia: Sigma, KQL and SPL rules in one cross-referenced catalog",
	Long: `ruledex ingests detection rules (Sigma YAML, Kusto/KQL, Splunk SPL), normalizes each into
one intermediate form (metadata, ATT&CK techniques, log source, stages of predicates) and
cross-references the whole corpus: which rules look for the same indicator, which events a
rule needs, which rules are equivalent, stricter or broader.

Typical use:
  ruledex --data ../shared/corpus ingest ../shared/corpus/sigma
  ruledex show "BITS payload downloaded via commandline"
  ruledex indicator Image ends_with '\bitsadmin.exe'`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func init() {
	root.PersistentFlags().StringVar(&globals.db, "db", defaultDB(), "catalog file (SQLite)")
	root.PersistentFlags().StringVar(&globals.data, "data", os.Getenv("RULEDEX_DATA"),
		"reference data folder with attack/ and events/ (like ../shared/corpus); env RULEDEX_DATA")
}

// defaultDB is $XDG_DATA_HOME/ruledex/ruledex.db, falling back to ~/.local/share.
func defaultDB() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "ruledex.db"
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "ruledex", "ruledex.db")
}

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so main exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// exitInterrupted is the status after SIGINT or SIGTERM (128 + SIGINT, as shells report).
const exitInterrupted = 130

// interruptedError is returned by a command that stopped on a signal; its message says
// in one line what state the catalog was left in.
type interruptedError struct{ msg string }

func (e *interruptedError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status. SIGINT and SIGTERM
// cancel the command's context; a second signal kills the process as usual.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the next Ctrl-C is not caught: it ends the process at once
	}()
	out := newEscaper(os.Stdout)
	root.SetOut(out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	out.Flush()
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ie *interruptedError
	var ee *exitError
	switch {
	case errors.As(err, &ie):
		code = exitInterrupted
	case ctx.Err() != nil:
		// Stopped by the signal, whatever error that surfaced as.
		err, code = &interruptedError{"interrupted"}, exitInterrupted
	case errors.As(err, &ee):
		code = ee.code
	case strings.HasPrefix(err.Error(), "unknown command"):
		// cobra's own usage errors for the root command.
		code = exitUsage
	}
	err = catalog.PlainError(globals.db, err)
	fmt.Fprintln(os.Stderr, "ruledex: "+escapeText(err.Error()))
	return code
}
