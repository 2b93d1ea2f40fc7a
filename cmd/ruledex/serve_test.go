package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/internal/corpustest"
)

// TestCLIServe starts `ruledex serve` on a free port, reads a page and the API, and
// stops it with SIGTERM: it must shut down gracefully (exit 0).
func TestCLIServe(t *testing.T) {
	cliSetup(t)
	cmd := exec.Command(cliBin, "--db", cliDB, "--data", corpustest.Dir(t), "serve", "--addr", "127.0.0.1:0")
	base, logs := startServe(t, cmd)
	for path, want := range map[string]string{
		"":                        "Rules per language",
		"rules/?q=bitsadmin":      "Search results for",
		"api/search?q=bitsadmin":  `"total"`,
		"attack/navigator.json":   `"layer":"4.5"`,
		"rules/sigma/no-such-id/": "Not found",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("GET /%s: status %d, lacks %q", path, resp.StatusCode, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of SIGTERM")
	}
	if !strings.Contains(logs.String(), "msg=request") || !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("request log or shutdown message missing:\n%.2000s", logs.String())
	}
}

// TestCLIExportNavigator writes a layer and validates it against format 4.5.
func TestCLIExportNavigator(t *testing.T) {
	cliSetup(t)
	out := filepath.Join(t.TempDir(), "layer.json")
	if _, stderr, code := ruledex(t, "export", "navigator", "--out", out, "--language", "sigma"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var layer struct {
		Name     string `json:"name"`
		Domain   string `json:"domain"`
		Versions struct {
			Navigator string `json:"navigator"`
			Layer     string `json:"layer"`
		} `json:"versions"`
		Techniques []struct {
			TechniqueID string  `json:"techniqueID"`
			Tactic      string  `json:"tactic"`
			Score       float64 `json:"score"`
		} `json:"techniques"`
		Gradient struct {
			Colors   []string `json:"colors"`
			MinValue float64  `json:"minValue"`
			MaxValue float64  `json:"maxValue"`
		} `json:"gradient"`
	}
	if err := json.Unmarshal(b, &layer); err != nil {
		t.Fatal(err)
	}
	if layer.Name == "" || layer.Domain != "enterprise-attack" || layer.Versions.Layer != "4.5" || layer.Versions.Navigator == "" {
		t.Errorf("layer header: %+v", layer)
	}
	if len(layer.Gradient.Colors) < 2 || layer.Gradient.MinValue >= layer.Gradient.MaxValue {
		t.Errorf("gradient %+v", layer.Gradient)
	}
	am, err := attack.Load(filepath.Join(corpustest.Dir(t), "attack", "enterprise-attack.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(layer.Techniques) < 100 {
		t.Errorf("only %d technique entries", len(layer.Techniques))
	}
	for _, te := range layer.Techniques {
		tech, ok := am.Technique(te.TechniqueID)
		if !ok || tech.ID != te.TechniqueID {
			t.Errorf("%s: not in the ATT&CK bundle", te.TechniqueID)
			continue
		}
		if !strings.Contains(","+strings.Join(tech.Tactics, ",")+",", ","+te.Tactic+",") || te.Score < 1 {
			t.Errorf("%s: tactic %q (technique has %v), score %v", te.TechniqueID, te.Tactic, tech.Tactics, te.Score)
		}
	}
	if _, _, code := ruledex(t, "export", "navigator", "--language", "cobol"); code != exitUsage {
		t.Errorf("unknown language: exit %d, want %d", code, exitUsage)
	}
}

// startServe starts a `ruledex serve` command and waits for its "serving" log line; it
// returns the server's base URL and its log so far (stderr is read until the process
// ends). The process is killed when the test ends.
func startServe(t *testing.T, cmd *exec.Cmd) (string, *safeBuffer) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	urlRE := regexp.MustCompile(`msg=serving url=(http://\S+/)`)
	found := make(chan string, 1)
	logs := new(safeBuffer)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	var base string
	select {
	case base = <-found:
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not start:\n%s", logs.String())
	}
	if base == "" {
		t.Fatalf("serve exited:\n%s", logs.String())
	}
	return base, logs
}

// safeBuffer is a strings.Builder the log reader and the test can share.
type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) WriteString(x string) {
	s.mu.Lock()
	s.b.WriteString(x)
	s.mu.Unlock()
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
