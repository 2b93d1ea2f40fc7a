package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/mcpserver"
	"github.com/ruledex/ruledex/page"
)

// mcpCall calls a tool and decodes its structured answer, failing on any error.
func mcpCall(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any, out any) int {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error %+v", name, res.Content)
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return len(b)
}

// TestCLIMCPStdio drives `ruledex mcp` as an MCP client starts it: a subprocess speaking
// JSON-RPC on stdin/stdout.
func TestCLIMCPStdio(t *testing.T) {
	cliSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.Command(cliBin, "--db", cliDB, "--data", corpustest.Dir(t), "mcp")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "ruledex-cli-test", Version: "1"}, nil)
	start := time.Now()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("initialize: %v\nstderr: %s", err, stderr.String())
	}
	t.Logf("initialize: %s", time.Since(start).Round(time.Millisecond))
	ir := cs.InitializeResult()
	if ir == nil || ir.ServerInfo.Name != "ruledex" || !strings.Contains(ir.Instructions, "search_rules") {
		t.Errorf("initialize result %+v", ir)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	want := slices.Clone(mcpserver.ToolNames)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("tools %v, want %v", names, want)
	}

	var found mcpserver.SearchResult
	start = time.Now()
	n := mcpCall(t, cs, "search_rules", map[string]any{"query": "bitsadmin", "limit": 50}, &found)
	t.Logf("search_rules bitsadmin: %d of %d rules, %d bytes, %s", len(found.Results), found.Total, n, time.Since(start).Round(time.Millisecond))
	seed := slices.IndexFunc(found.Results, func(h mcpserver.RuleHit) bool { return h.Title == "BITS payload downloaded via commandline" })
	if found.Total < 10 || seed < 0 {
		t.Fatalf("search_rules bitsadmin: %d rules, seed rule at %d", found.Total, seed)
	}
	for _, h := range found.Results {
		if h.Language != "sigma" { // this catalog holds the Sigma corpus only
			t.Errorf("%s: language %s", h.Ref, h.Language)
		}
	}

	var p mcpserver.RulePage
	start = time.Now()
	n = mcpCall(t, cs, "get_rule", map[string]any{"rule": found.Results[seed].Ref}, &p)
	t.Logf("get_rule seed: %d bytes, %s", n, time.Since(start).Round(time.Millisecond))
	if p.Title != "BITS payload downloaded via commandline" || !slices.Contains(p.Techniques, "T1197") {
		t.Errorf("get_rule: %q techniques %v", p.Title, p.Techniques)
	}
	selection := false
	for _, st := range p.Stages {
		selection = selection || (st.Title == "Stage 1: selection" && strings.Contains(st.Text, `NewProcessName|endswith: '\bitsadmin.exe'`))
	}
	if !selection {
		t.Errorf("stages %+v lack the selection with its predicates", p.Stages)
	}
	var values []string
	for _, row := range p.Indicators {
		for _, v := range row.Values {
			values = append(values, row.Field+" "+string(row.Kind)+" "+v.Value)
			if v.Value == `\bitsadmin.exe` && (v.Total < 2 || len(v.ByLanguage) == 0) {
				t.Errorf("\\bitsadmin.exe has corpus count %d", v.Total)
			}
		}
	}
	slices.Sort(values)
	if w := []string{"CommandLine match /download", "CommandLine match /transfer", `NewProcessName ends_with \bitsadmin.exe`}; !slices.Equal(values, w) {
		t.Errorf("indicators %v, want %v", values, w)
	}
	if !slices.ContainsFunc(p.Events, func(e page.EventRow) bool { return e.EventID == 4688 }) {
		t.Errorf("events %+v lack 4688", p.Events)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v (stderr %s)", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
}

// TestCLIServeMCP: serve --mcp answers MCP over streamable HTTP at /mcp beside the wiki.
func TestCLIServeMCP(t *testing.T) {
	cliSetup(t)
	cmd := exec.Command(cliBin, "--db", cliDB, "--data", corpustest.Dir(t), "serve", "--mcp", "--addr", "127.0.0.1:0")
	base, _ := startServe(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "ruledex-http-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st mcpserver.StatsResult
	mcpCall(t, cs, "catalog_stats", nil, &st)
	if st.Rules < 1000 || !slices.Contains(st.Sources, "github.com/SigmaHQ/sigma") {
		t.Errorf("catalog_stats over HTTP: %d rules, sources %v", st.Rules, st.Sources)
	}
	var cov mcpserver.CoverageResult
	mcpCall(t, cs, "technique_coverage", map[string]any{"technique": "T1197"}, &cov)
	if cov.Technique == nil || cov.Technique.Name != "BITS Jobs" || cov.Detections == 0 {
		t.Errorf("technique_coverage T1197 over HTTP: %+v", cov)
	}
	cs.Close()
	// The wiki is still there, and still read-only.
	resp, err := http.Get(base + "api/search?q=bitsadmin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"total"`) {
		t.Errorf("wiki API beside /mcp: %d %.200s", resp.StatusCode, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
}
