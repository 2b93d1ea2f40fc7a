// Command ruledex is the detection-rule encyclopedia's CLI: ingest rules, show them,
// count indicators, serve the wiki and hunt with Sigma rules. It is the only place
// that wires ruledex's packages together.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
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

func main() {
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ruledex:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(exitFailure)
	}
}
