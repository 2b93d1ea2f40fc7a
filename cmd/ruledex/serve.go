package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/web"
	"github.com/ruledex/ruledex/winevent"
)

func init() {
	var addr, baseURL string
	var withMCP bool
	var sy serveSync
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [PATH...]",
		Short: "Serve the wiki and JSON API (ingesting PATHs first, if given)",
		Long: `serve ingests the given rule sources (as ruledex ingest does), then serves the catalog
as a web wiki (rule pages, indicators, browse and search, ATT&CK matrix) and a JSON API under
/api/. It logs one line per request, and stops gracefully on SIGINT or SIGTERM.

Another ruledex ingest may write the same catalog while serve runs: pages show the catalog
before or after that ingest, never a mix. Without --data, the folder given to the last
ingest with --data is used.

--sync-every DURATION (e.g. 1h) runs ruledex sync with --sources (default: the user's
sources file, else the default repositories) at start and then at that interval; each sync
is logged, a failing repository is logged and retried at the next tick, and pages show the
new catalog as soon as a sync commits.

--mcp also serves the MCP tools of ruledex mcp over streamable HTTP at /mcp.`,
		Example: `  ruledex --data ../shared/corpus serve ../shared/corpus/sigma
  ruledex serve --addr 0.0.0.0:8080
  ruledex serve --mcp`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if sy.every != 0 {
				if sy.every < time.Minute && !sy.allowFast {
					return withCode(exitUsage, fmt.Errorf("--sync-every %s: use at least 1m (repositories rarely change faster)", sy.every))
				}
				srcs, note, err := loadSources(sy.file, cmd.Flags().Changed("sources"))
				if err != nil {
					return withCode(exitFailure, err)
				}
				if note != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "ruledex: "+note)
				}
				sy.srcs = srcs
			}
			return serve(withServeSync(cmd.Context(), &sy), addr, baseURL, withMCP, args)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().DurationVar(&sy.every, "sync-every", 0, "run ruledex sync in the background this often (e.g. 1h); the pages follow each sync")
	cmd.Flags().StringVar(&sy.file, "sources", defaultSourcesFile(), "sources file for --sync-every")
	cmd.Flags().BoolVar(&sy.allowFast, "sync-fast", false, "allow --sync-every below 1m (tests)")
	cmd.Flags().MarkHidden("sync-fast")
	cmd.Flags().StringVar(&baseURL, "base-url", "", "public URL of the site, for absolute links in exported layers (default: from the request)")
	cmd.Flags().BoolVar(&withMCP, "mcp", false, "also serve the MCP tools (as ruledex mcp) over streamable HTTP at /mcp")
	root.AddCommand(cmd)
}

// loadAttack reads the ATT&CK bundle from the data folder.
func loadAttack() (*attack.Matrix, error) {
	storedDataDir()
	if globals.data == "" {
		return nil, withCode(exitUsage, errors.New("no reference data: give --data DIR (a folder with attack/enterprise-attack.json) or set RULEDEX_DATA (ingest with --data once and the catalog remembers it)"))
	}
	m, err := attack.Load(filepath.Join(globals.data, "attack", "enterprise-attack.json"))
	if err != nil {
		return nil, fmt.Errorf("ATT&CK data: %w", err)
	}
	return m, nil
}

func serve(ctx context.Context, addr, baseURL string, withMCP bool, paths []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	am, err := loadAttack()
	if err != nil {
		return err
	}
	events, err := winevent.Load(winevent.Dir(globals.data))
	if err != nil {
		// Event coverage is one section of the rule page; serve the rest without it.
		log.Warn("event catalog not loaded; rule pages will have no event coverage", "err", err)
		events = nil
	}
	cat, err := catalog.Open(globals.db)
	if err != nil {
		return err
	}
	defer cat.Close()
	if len(paths) > 0 {
		log.Info("ingesting", "paths", paths)
		sum, err := ingestPaths(ctx, cat, paths, ingestOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(sum, err)
			}
			return cat.Plain(err)
		}
		log.Info("ingested", "files", sum.Files, "changed", sum.Changed, "rules", sum.TotalRules, "seconds", sum.Seconds)
	}
	// Neighbors are recomputed only when the rules changed since the last run.
	if _, err := syncNeighbors(ctx, cat); err != nil {
		log.Warn("neighbors not brought up to date", "err", err)
	}
	srv, err := web.New(web.Options{Catalog: cat, Attack: am, Events: events, Logger: log, BaseURL: baseURL, Translate: translations})
	if err != nil {
		return err
	}
	defer srv.Close()
	// Start-up (ingest, neighbors, event coverage, the ATT&CK bundle) leaves garbage
	// behind that the steady state never needs; hand it back before serving.
	debug.FreeOSMemory()

	var handler http.Handler = srv
	if withMCP {
		h, closer, err := mountMCP(ctx, cat, log, srv)
		if err != nil {
			return err
		}
		defer closer.Close()
		handler = h
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return withCode(exitFailure, fmt.Errorf("listen %s: %w", addr, err))
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "url", "http://"+ln.Addr().String()+"/", "db", cat.Path())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if sy := serveSyncFrom(ctx); sy != nil {
		go sy.loop(ctx, cat, log)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
