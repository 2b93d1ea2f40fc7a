package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// versionString is the module version and VCS revision stamped into the build ("(devel)"
// and no revision under `go run` and `go test`, which do not stamp them).
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "ruledex (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	parts := []string{"ruledex " + v}
	if rev != "" {
		r := "revision " + rev
		if modified {
			r += " (modified)"
		}
		if at != "" {
			r += " of " + at
		}
		parts = append(parts, r)
	} else {
		parts = append(parts, "revision unknown")
	}
	parts = append(parts, bi.GoVersion)
	return strings.Join(parts, ", ")
}

func init() {
	root.Version = versionString()
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(&cobra.Command{
		Use:     "version",
		Short:   "Print ruledex's module version, VCS revision and Go version",
		Example: `  ruledex version`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	})
}
