// Package mcpserver serves the catalog to AI agents over the Model Context Protocol
// (github.com/modelcontextprotocol/go-sdk): tools to search rules, read a rule page,
// look up indicators, neighbors, ATT&CK coverage and Windows events, and the rules
// themselves as resources (ruledex://rules/<lang>/<id>).
//
// It reads the catalog only, and builds rule pages with package page exactly as the web
// server and `ruledex show` do, so an agent sees what a reader of the wiki sees. It
// never parses rule text: translations come from the Translate option, which the CLI
// provides.
//
// Every list is paginated (offset and limit, with a maximum) and every text that can be
// long (rule bodies, prose, indicator values) is cut to a bound with a note saying what
// was cut, so one answer never floods an agent's context. Bad arguments are tool errors
// (isError with a sentence that says what is wrong and what is accepted), not protocol
// errors, so the model reads them and can correct its call.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/winevent"
)

// Options configure the server.
type Options struct {
	// Catalog is read, never written. Required.
	Catalog *catalog.Catalog
	// Events, when set, fills rule pages' event coverage and lets event_info list every
	// field of an event (with it unset, only the fields some rule tests).
	Events *winevent.Catalog
	// Translate, when set, fills get_rule's translations.
	Translate page.Translator
	// Version is reported to clients in the initialize handshake.
	Version string
	Logger  *slog.Logger
}

// Server holds what the tool handlers share.
type Server struct {
	cat       *catalog.Catalog
	events    *winevent.Catalog
	translate page.Translator
	mcp       *mcp.Server
	watch     changeWatch
	statsMemo memo[*StatsResult]
	tagsMemo  memo[map[string]map[int64]bool]
}

// instructions are sent to clients at initialize; agents read them to choose tools.
const instructions = `ruledex is a catalog of public detection rules (Sigma, KQL, SPL, Elastic, YARA-L) parsed into one form and cross-referenced.
Typical flow: search_rules (or technique_coverage for an ATT&CK ID) to find rules, then get_rule with a result's "ref" for the full page.
find_indicator tells which rules in any language test the same field/kind/value; neighbors lists equivalent, stricter and broader rules proved from the logic.
catalog_stats lists the languages, sources and severities the filters accept. Lists are paginated: pass next_offset back as offset.`

// New builds the MCP server over the catalog.
func New(o Options) (*Server, error) {
	if o.Catalog == nil {
		return nil, errors.New("mcpserver: a catalog is required")
	}
	if o.Version == "" {
		o.Version = "devel"
	}
	s := &Server{cat: o.Catalog, events: o.Events, translate: o.Translate}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "ruledex", Title: "ruledex detection-rule catalog", Version: o.Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: o.Logger, Capabilities: &mcp.ServerCapabilities{}})
	if err := s.addTools(); err != nil {
		return nil, fmt.Errorf("mcpserver: %w", err)
	}
	s.addResources()
	return s, nil
}

// MCP is the SDK server, to run on a transport (Run with mcp.StdioTransport, or
// Connect for tests).
func (s *Server) MCP() *mcp.Server { return s.mcp }

// Run serves one client over stdin/stdout until it disconnects or ctx ends.
func (s *Server) Run(ctx context.Context) error {
	return s.mcp.Run(ctx, &mcp.StdioTransport{})
}

// HTTPHandler serves MCP's streamable HTTP transport (mount it at /mcp). Answers are
// plain JSON rather than event streams: no tool streams progress, and a JSON answer
// survives the server's write timeout and any proxy. Sessions idle for an hour are
// closed, so abandoned clients do not accumulate.
func (s *Server) HTTPHandler(log *slog.Logger) http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp },
		&mcp.StreamableHTTPOptions{Logger: log, SessionTimeout: sessionTimeout, JSONResponse: true})
	// A web page the user visits must not drive the tools through the browser.
	return http.NewCrossOriginProtection().Handler(h)
}
