package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/mcpserver"
)

func init() {
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve the catalog to AI agents over MCP (stdio)",
		Long: `mcp runs a Model Context Protocol server on stdin/stdout for an agent or an MCP client
(Claude Desktop, Claude Code, VS Code, Cursor...) to start as a subprocess. It reads the
catalog only: ingest first.

Tools: search_rules, get_rule, find_indicator, neighbors, technique_coverage, event_info,
catalog_stats. Rules are also resources: ruledex://rules/<lang>/<id>. Lists are paginated
(offset, limit up to 100) and long texts are cut with a note, so answers stay small.

An MCP client's configuration names the command, e.g.
  {"mcpServers": {"ruledex": {"command": "ruledex", "args": ["--db", "/path/to/ruledex.db", "mcp"]}}}

stdout carries only the protocol; messages go to stderr. The server stops when the client
closes stdin. ruledex serve --mcp serves the same tools over streamable HTTP at /mcp.`,
		Example: `  ruledex mcp
  ruledex --data ../shared/corpus mcp`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cat, err := openDerived()
			if err != nil {
				return err
			}
			defer cat.Close()
			srv, err := newMCPServer(ctx, cat, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				return err
			}
			defer srv.Close()
			// The indexes and the merged full-text index the wiki's searches need (the
			// server builds them at start too): in the background, so a client's
			// initialize does not wait; searches only get faster when it is done.
			go func() {
				if err := cat.EnsureWebIndexes(ctx); err != nil && ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "ruledex mcp: search indexes not built; searches will be slower:", cat.Plain(err))
				}
			}()
			if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	root.AddCommand(cmd)
}

// newMCPServer builds the MCP server the way show builds a page: the event catalog from
// --data (or the folder the catalog remembers) and translations proved by the parsers.
func newMCPServer(ctx context.Context, cat *catalog.Catalog, log *slog.Logger) (*mcpserver.Server, error) {
	useStoredDataDir(ctx, cat)
	events, err := eventCatalog()
	if err != nil {
		return nil, err
	}
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	return mcpserver.New(mcpserver.Options{Catalog: cat, Events: events, Translate: translations, Version: version, Logger: log})
}

// mountMCP serves the MCP tools at /mcp beside the wiki (serve --mcp). The wiki's own
// handler answers only GET and HEAD, so MCP's POSTs must not pass through it.
func mountMCP(ctx context.Context, cat *catalog.Catalog, log *slog.Logger, wiki http.Handler) (http.Handler, io.Closer, error) {
	ms, err := newMCPServer(ctx, cat, log)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", ms.HTTPHandler(log))
	mux.Handle("/", wiki)
	log.Info("MCP over streamable HTTP", "path", "/mcp")
	return mux, ms, nil
}
