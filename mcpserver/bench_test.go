package mcpserver

import (
	"context"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkTools measures one call of each tool through the SDK client over the
// in-memory transport (JSON-RPC encoding, schema validation and the catalog reads), warm.
func BenchmarkTools(b *testing.B) {
	for _, c := range []struct {
		name, tool string
		args       map[string]any
	}{
		{"search", "search_rules", map[string]any{"query": "bitsadmin"}},
		{"search-filtered", "search_rules", map[string]any{"query": "powershell", "language": "sigma", "tactic": "execution"}},
		{"get_rule", "get_rule", map[string]any{"rule": seedTitle}},
		{"find_indicator", "find_indicator", map[string]any{"field": "Image", "kind": "ends_with", "value": `\bitsadmin.exe`}},
		{"neighbors", "neighbors", map[string]any{"rule": "Monitoring For Persistence Via BITS"}},
		{"technique", "technique_coverage", map[string]any{"technique": "T1059"}},
		{"tactic", "technique_coverage", map[string]any{"tactic": "persistence"}},
		{"event", "event_info", map[string]any{"provider": "Microsoft-Windows-Sysmon", "event_id": 1}},
		{"stats", "catalog_stats", nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			params := &mcp.CallToolParams{Name: c.tool, Arguments: c.args}
			for b.Loop() {
				res, err := testSession.CallTool(ctx, params)
				if err != nil || res.IsError {
					b.Fatalf("%s: %v %v", c.tool, err, res)
				}
			}
		})
	}
}
