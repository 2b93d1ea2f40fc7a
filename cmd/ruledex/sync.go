package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/gitsource"
	"github.com/ruledex/ruledex/ingest"
)

// exitPartial: some repositories failed to sync; the others were synced and ingested.
const exitPartial = 4

// defaultSourcesFile is $XDG_CONFIG_HOME/ruledex/sources.yaml (os.UserConfigDir).
func defaultSourcesFile() string {
	d, err := os.UserConfigDir()
	if err != nil {
		return "sources.yaml"
	}
	return filepath.Join(d, "ruledex", "sources.yaml")
}

// loadSources reads the sources file. The default file may be missing: then the
// built-in defaults are used (what `sources init` writes), and note says so.
func loadSources(file string, explicit bool) (srcs []gitsource.Source, note string, err error) {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) && !explicit {
		return gitsource.Defaults(), fmt.Sprintf("no sources file at %s: using the default repositories (ruledex sources init writes them there)", file), nil
	}
	srcs, err = gitsource.LoadFile(file)
	return srcs, "", err
}

func init() {
	sources := &cobra.Command{
		Use:   "sources",
		Short: "Write or list the rule repositories ruledex sync reads",
		Long: `sources manages the sources file (default ` + "`" + defaultSourcesFile() + "`" + `), a YAML list of the
git repositories ruledex sync fetches: name, url, ref (branch or tag, default the remote's
HEAD), paths (folders or files to read, default all), language hints, license, and kind
(rules, or attack for an ATT&CK STIX bundle).`,
		Example: `  ruledex sources list`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	var file string
	var force bool
	initCmd := &cobra.Command{
		Use:   "init [--file FILE] [--force]",
		Short: "Write a sources file listing the public repositories the corpus comes from",
		Long: `init writes a sources file with the public repositories ruledex's corpus was taken from:
SigmaHQ, mdecrevoisier, the KQL collections, Azure-Sentinel (Detections, Hunting Queries),
splunk/security_content (detections, macros), elastic/detection-rules,
chronicle/detection-rules and mitre/cti for ATT&CK. It refuses to replace an existing
file unless --force; --file - prints it.`,
		Example: `  ruledex sources init --file - > sources.yaml`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := gitsource.Marshal(gitsource.Defaults())
			if err != nil {
				return err
			}
			if file == "-" {
				_, err := cmd.OutOrStdout().Write(b)
				return err
			}
			if _, err := os.Stat(file); err == nil && !force {
				return withCode(exitFailure, fmt.Errorf("%s exists: give --force to replace it", file))
			}
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(file, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d repositories); run ruledex sync\n", file, len(gitsource.Defaults()))
			return nil
		},
	}
	initCmd.Flags().StringVar(&file, "file", defaultSourcesFile(), "sources file to write (- for stdout)")
	initCmd.Flags().BoolVar(&force, "force", false, "replace an existing file")

	var listFile, listCache string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--file FILE] [--json]",
		Short: "List the repositories of the sources file",
		Long: `list prints the repositories of the sources file (the defaults when the default file
does not exist yet) with their ref, paths, license and the commit last synced into the
cache. Problems in the file are reported as file:line: what.`,
		Example: `  ruledex sources list
  ruledex sources list --json | jq '.[].url'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcs, note, err := loadSources(listFile, cmd.Flags().Changed("file"))
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "ruledex: "+note)
			}
			cache, err := gitsource.DefaultCacheDir()
			if listCache != "" {
				cache, err = listCache, nil
			}
			type listed struct {
				gitsource.Source
				Commit string `json:"synced_commit,omitempty"`
				Files  int    `json:"synced_files,omitempty"`
			}
			var rows []listed
			for _, s := range srcs {
				l := listed{Source: s}
				if err == nil {
					l.Commit, l.Files, _ = gitsource.Mirrored(cache, s)
				}
				rows = append(rows, l)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			w := cmd.OutOrStdout()
			for _, row := range rows {
				s := row.Source
				ref := s.Ref
				if ref == "" {
					ref = "HEAD"
				}
				paths := strings.Join(s.Paths, ", ")
				if paths == "" {
					paths = "(all)"
				}
				kind := ""
				if s.IsAttack() {
					kind = " [attack]"
				}
				fmt.Fprintf(w, "%-16s %s @ %s%s\n", s.Name, gitsource.DisplayURL(s.URL), ref, kind)
				fmt.Fprintf(w, "%-16s paths: %s; language: %s; license: %s\n", "", paths, orNone(strings.Join(s.Language, ", ")), orNone(s.License))
				synced := "not synced yet"
				if row.Commit != "" {
					synced = fmt.Sprintf("synced at %.12s, %d files", row.Commit, row.Files)
				}
				fmt.Fprintf(w, "%-16s %s\n", "", synced)
			}
			return nil
		},
	}
	list.Flags().StringVar(&listFile, "file", defaultSourcesFile(), "sources file")
	list.Flags().BoolVar(&asJSON, "json", false, "print the sources as JSON")
	list.Flags().StringVar(&listCache, "cache", "", "cache folder of ruledex sync (default: the user cache's ruledex/repos)")
	sources.AddCommand(initCmd, list)
	root.AddCommand(sources)

	var o syncOptions
	syncCmd := &cobra.Command{
		Use:   "sync [--sources FILE] [--json] [--offline] [NAME...]",
		Short: "Fetch the rule repositories of the sources file and ingest what changed",
		Long: `sync fetches each repository of the sources file (only NAMEs, when given) with a shallow
git fetch into the user cache (` + "`ruledex/repos/<name>`" + `; no git binary needed), writes the files
under its paths into a mirror folder by applying the difference between the tree synced
before and the new one (edits, additions, deletions, renames; a force-pushed branch is just
another tree), and ingests the mirrors: only files whose content changed are parsed. Each
rule records the commit its file was fetched at, so its page links to blob/<commit>/<path>.

Private repositories over https: the token is read from RULEDEX_GIT_TOKEN (or GITHUB_TOKEN
for github.com; user name from RULEDEX_GIT_USER, default x-access-token) and sent as HTTP
basic auth; it is never printed, logged or stored.

A repository that fails (network, authentication, a missing ref) is reported with its
error and skipped; the others are synced, and its rules stay in the catalog as they were.
--offline fetches nothing and ingests the mirrors already in the cache.

Exit status: 0 every repository synced and the catalog updated; 4 some repositories failed
(the others were synced); 1 the catalog could not be updated or no repository synced;
2 bad command line; 130 interrupted.`,
		Example: `  ruledex sync --offline
  ruledex sync --offline --json | jq '.repos[] | {name, status, commit}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			srcs, note, err := loadSources(o.file, cmd.Flags().Changed("sources"))
			if err != nil {
				return withCode(exitFailure, err)
			}
			if note != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "ruledex: "+note)
			}
			if srcs, err = pickSources(srcs, args); err != nil {
				return withCode(exitUsage, err)
			}
			cat, err := openCatalog(false)
			if err != nil {
				return err
			}
			defer cat.Close()
			tty := term.IsTerminal(int(os.Stderr.Fd()))
			if tty {
				o.log = func(msg string) { fmt.Fprintln(os.Stderr, escapeText(msg)) }
			}
			o.progress = true
			rep, err := runSync(ctx, cat, srcs, o)
			if rep != nil && len(args) == 0 {
				rep.Stale = staleMirrors(ctx, cat, o.cache, srcs)
			}
			if rep != nil {
				if o.json {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if e := enc.Encode(rep); e != nil {
						return e
					}
				} else {
					printSyncReport(cmd.OutOrStdout(), rep)
				}
			}
			return syncExit(ctx, rep, err)
		},
	}
	syncCmd.Flags().StringVar(&o.file, "sources", defaultSourcesFile(), "sources file (see ruledex sources)")
	syncCmd.Flags().BoolVar(&o.json, "json", false, "print the report as JSON")
	syncCmd.Flags().BoolVar(&o.offline, "offline", false, "fetch nothing: ingest the mirrors already in the cache")
	syncCmd.Flags().BoolVar(&o.force, "force", false, "parse every mirrored file again")
	syncCmd.Flags().StringVar(&o.cache, "cache", "", "cache folder for the repositories (default: the user cache's ruledex/repos)")
	root.AddCommand(syncCmd)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type syncOptions struct {
	file     string
	json     bool
	offline  bool
	force    bool
	cache    string
	progress bool
	log      func(string)
}

// pickSources keeps the named sources (all when names is empty).
func pickSources(srcs []gitsource.Source, names []string) ([]gitsource.Source, error) {
	if len(names) == 0 {
		return srcs, nil
	}
	var out []gitsource.Source
	for _, n := range names {
		found := false
		for _, s := range srcs {
			if s.Name == n {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			var all []string
			for _, s := range srcs {
				all = append(all, s.Name)
			}
			return nil, fmt.Errorf("no source named %q (sources: %s)", n, strings.Join(all, ", "))
		}
	}
	return out, nil
}

// runSync fetches the sources and ingests their mirrors into cat as ruledex ingest
// does (derived data included).
func runSync(ctx context.Context, cat *catalog.Catalog, srcs []gitsource.Source, o syncOptions) (*gitsource.Report, error) {
	return gitsource.Sync(ctx, srcs, gitsource.Options{CacheDir: o.cache, Log: o.log, Offline: o.offline,
		Ingest: func(ctx context.Context, in gitsource.Fetched) (*ingest.Summary, error) {
			key := in.Key + parseFingerprint()
			if !o.force && catalogHolds(ctx, cat, key, in) {
				return nil, nil
			}
			sum, err := ingestPaths(ctx, cat, in.Roots, ingestOptions{progress: o.progress, mirrors: in.Mirrors, attack: in.Attack, force: o.force})
			if err != nil {
				return sum, err
			}
			return sum, setMeta(ctx, cat, metaSyncKey, key)
		}})
}

// metaSyncKey is the gitsource key (plus the parsers' fingerprint) of the last sync
// that ingested successfully.
const metaSyncKey = "sync.key"

// catalogHolds reports whether the catalog already holds exactly what a sync fetched:
// the same mirrors at the same commits and parsers, each root's files all there (a
// `ruledex remove` in between makes it false), and no derived step pending. Then the
// ingest walk, most of a sync that finds nothing new, is skipped.
func catalogHolds(ctx context.Context, cat *catalog.Catalog, key string, in gitsource.Fetched) bool {
	if v, err := cat.Meta(ctx, metaSyncKey); err != nil || v != key {
		return false
	}
	if v, err := cat.Meta(ctx, metaDerivePending); err != nil || v != "" {
		return false
	}
	roots, err := cat.Roots(ctx)
	if err != nil {
		return false
	}
	files := map[string]int{}
	for _, r := range roots {
		files[r.Path] = r.Files
	}
	for i, r := range in.Roots {
		n, ok := files[r]
		if !ok || n != in.Files[i] {
			return false
		}
	}
	return true
}

func setMeta(ctx context.Context, cat *catalog.Catalog, key, value string) error {
	tx, err := cat.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.SetMeta(key, value); err != nil {
		return err
	}
	return tx.Commit()
}

// staleMirrors lists the mirror folders under the cache that the catalog holds rules
// from but whose source the sources file no longer names.
func staleMirrors(ctx context.Context, cat *catalog.Catalog, cache string, srcs []gitsource.Source) []string {
	if cache == "" {
		d, err := gitsource.DefaultCacheDir()
		if err != nil {
			return nil
		}
		cache = d
	}
	names := map[string]bool{}
	for _, s := range srcs {
		names[s.Name] = true
	}
	roots, err := cat.Roots(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range roots {
		rel, err := filepath.Rel(cache, r.Path)
		if err != nil || !filepath.IsLocal(rel) || r.Files == 0 {
			continue
		}
		name, rest, _ := strings.Cut(filepath.ToSlash(rel), "/")
		if rest == "files" && !names[name] {
			out = append(out, r.Path)
		}
	}
	return out
}

// syncExit maps a sync's outcome to the documented exit status.
func syncExit(ctx context.Context, rep *gitsource.Report, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		var sum *ingest.Summary
		if rep != nil {
			sum = rep.Ingest
		}
		return interrupted(sum, err)
	case errors.Is(err, gitsource.ErrSomeFailed):
		if rep != nil && rep.Failed == len(rep.Repos) {
			return withCode(exitFailure, err)
		}
		return withCode(exitPartial, err)
	}
	return withCode(exitFailure, err)
}

func printSyncReport(w io.Writer, rep *gitsource.Report) {
	for _, r := range rep.Repos {
		switch r.Status {
		case "failed":
			fmt.Fprintf(w, "%-16s failed: %s\n", r.Name, r.Error)
		case "missing":
			fmt.Fprintf(w, "%-16s not fetched yet\n", r.Name)
		default:
			fmt.Fprintf(w, "%-16s %-9s %.12s  %d files (+%d ~%d -%d renamed %d)\n", r.Name, r.Status, r.Commit, r.Files,
				r.Added, r.Modified, r.Deleted, r.Renamed)
			if len(r.Missing) > 0 {
				fmt.Fprintf(w, "%-16s warning: paths not in the repository: %s\n", "", strings.Join(r.Missing, ", "))
			}
			if len(r.Refused) > 0 {
				fmt.Fprintf(w, "%-16s warning: unsafe paths not written: %s\n", "", strings.Join(r.Refused, ", "))
			}
		}
	}
	if rep.Ingest != nil {
		printIngestSummary(w, rep.Ingest)
	}
	if rep.CatalogCurrent {
		fmt.Fprintln(w, "catalog:   already holds these commits; nothing to ingest")
	}
	if rep.Attack != "" {
		fmt.Fprintf(w, "attack:    %s\n", rep.Attack)
	}
	for _, p := range rep.Stale {
		fmt.Fprintf(w, "note:      %s: its source is no longer in the sources file; ruledex remove %s forgets its rules\n", p, p)
	}
	fmt.Fprintf(w, "sync:      %d repositories, %d failed, %.2fs\n", len(rep.Repos), rep.Failed, rep.Seconds)
}

// serveSync is serve's --sync-every: a loop that syncs the sources into the served
// catalog. The server needs no signal: its page cache follows the catalog's
// data_version, so each committed sync shows on the next request.
type serveSync struct {
	every     time.Duration
	file      string
	allowFast bool
	srcs      []gitsource.Source
}

type serveSyncKey struct{}

func withServeSync(ctx context.Context, sy *serveSync) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	if sy.every <= 0 {
		return ctx
	}
	return context.WithValue(ctx, serveSyncKey{}, sy)
}

func serveSyncFrom(ctx context.Context) *serveSync {
	sy, _ := ctx.Value(serveSyncKey{}).(*serveSync)
	return sy
}

// loop syncs at once, then every sy.every, until ctx ends. A failed sync is logged and
// retried at the next tick; what it could not fetch stays as it was.
func (sy *serveSync) loop(ctx context.Context, cat *catalog.Catalog, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rep, err := runSync(ctx, cat, sy.srcs, syncOptions{})
		if ctx.Err() != nil {
			return
		}
		attrs := []any{"seconds", time.Since(start).Seconds()}
		if rep != nil {
			attrs = append(attrs, "repositories", len(rep.Repos), "failed", rep.Failed)
			if rep.Ingest != nil {
				attrs = append(attrs, "changed", rep.Ingest.Changed, "deleted", rep.Ingest.Deleted, "rules", rep.Ingest.TotalRules)
			}
			for _, r := range rep.Repos {
				if r.Status == "failed" {
					log.Warn("sync failed", "source", r.Name, "err", r.Error)
				}
			}
		}
		if err != nil && !errors.Is(err, gitsource.ErrSomeFailed) {
			log.Warn("sync", append(attrs, "err", err.Error())...)
		} else {
			log.Info("synced", attrs...)
		}
		t.Reset(sy.every)
	}
}
