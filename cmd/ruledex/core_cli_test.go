package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

// The CLI tests run the real binary (built once by TestMain) against a catalog of the
// real Sigma corpus, built once for all of them.
var (
	cliOnce sync.Once
	cliBin  string // set by TestMain
	cliDB   string
	cliErr  error
	cliOut  string
)

// TestMain builds the ruledex binary once for every test that drives it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ruledex-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cliBin = filepath.Join(dir, "ruledex")
	if out, err := exec.Command("go", "build", "-o", cliBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func cliSetup(t *testing.T) {
	t.Helper()
	corpus := corpustest.Dir(t)
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ruledex-cli-db")
		if err != nil {
			cliErr = err
			return
		}
		cliDB = filepath.Join(dir, "cat.db")
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(cliBin, "--db", cliDB, "--data", corpus, "ingest", "--json", filepath.Join(corpus, "sigma"))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			cliErr = errors.New("ingest: " + err.Error() + ": " + stderr.String())
		}
		cliOut = stdout.String()
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
}

// ruledex runs the binary with the test catalog and returns stdout, stderr and the exit code.
func ruledex(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(cliBin, append([]string{"--db", cliDB, "--data", corpustest.Dir(t)}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestCLIIngestJSON(t *testing.T) {
	cliSetup(t)
	var sum map[string]any
	if err := json.Unmarshal([]byte(cliOut), &sum); err != nil {
		t.Fatalf("ingest --json: %v\n%s", err, cliOut)
	}
	for _, k := range []string{"files", "changed", "unchanged", "deleted", "skipped", "rules", "total_rules", "errors", "seconds", "rules_per_second"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("ingest --json lacks %q: %s", k, cliOut)
		}
	}
	if sum["rules"].(float64) < 4000 {
		t.Errorf("ingest parsed %v rules, want the whole corpus", sum["rules"])
	}
	// Unchanged re-ingest of a part of the corpus: nothing parsed.
	out, _, code := ruledex(t, "ingest", "--json", filepath.Join(corpustest.Dir(t), "sigma", "mdecrevoisier"))
	var again map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &again) != nil || again["changed"].(float64) != 0 || again["unchanged"].(float64) < 100 {
		t.Errorf("re-ingest: exit %d, %s", code, out)
	}
	// A missing path fails with exit status 1.
	if _, stderr, code := ruledex(t, "ingest", filepath.Join(t.TempDir(), "missing")); code != exitFailure || !strings.Contains(stderr, "missing") {
		t.Errorf("ingest of a missing path: exit %d, stderr %q", code, stderr)
	}
}

// TestCLIShowSeed compares `ruledex show` on the seed rule with the sections of the
// reference page (../shared/seed/rule-page.txt), in order.
func TestCLIShowSeed(t *testing.T) {
	cliSetup(t)
	out, stderr, code := ruledex(t, "show", "BITS payload downloaded via commandline")
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, stderr)
	}
	body, err := os.ReadFile(corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Each chunk must appear, in this order.
	want := []string{
		"Detection rules › Sigma\n\nBITS payload downloaded via commandline\n",
		"Status\nexperimental\n",
		"Severity\nmedium\n",
		"Log source\nproduct windows, category process_creation\n",
		"Author\nmdecrevoisier\n",
		"Source\ngithub.com/mdecrevoisier/SIGMA-detection-rules\n",
		"\nDetects scenarios where an attacker downloads a payload by abusing BITS software. For more precise information, inspect \"Bits-client\" event log and search for ID 59 and 60.\n",
		"\nReferences\n\n- https://github.com/mdecrevoisier/EVTX-to-MITRE-Attack/tree/master/TA0003-Persistence/T1197-BITS%20jobs\n",
		"\nMITRE ATT&CK coverage\n\n",
		"Exfiltration          T1048 Exfiltration Over Alternative Protocol\n",
		"Lateral Movement      T1570 Lateral Tool Transfer\n",
		"Command and Control   T1105 Ingress Tool Transfer\n",
		"Persistence           T1197 BITS Jobs\n",
		"\nRule body yaml\n\n" + strings.TrimRight(string(body), "\n") + "\n",
		"\nStages and Predicates\n\nStage 0: condition\n\nselection\n\nStage 1: selection\n\nselection:\n  NewProcessName|endswith: '\\bitsadmin.exe'\n  CommandLine|contains:\n  - '/transfer'\n  - '/download'\n",
		"\nIndicators\n\n",
		"\nField            Kind        Values\nCommandLine      match       /download",
		"\n                             /transfer",
		"\nNewProcessName   ends_with   \\bitsadmin.exe   corpus ",
	}
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("show output lacks (in order):\n%q\n--- output:\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
	// The count agrees with the indicator command, which counts the same key.
	m := regexp.MustCompile(`\\bitsadmin\.exe   corpus (\d+) \(sigma (\d+)\)`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] {
		t.Fatalf("bitsadmin corpus count not in the form 'corpus N (sigma N)': %v", m)
	}
	js, _, code := ruledex(t, "indicator", "--json", "Image", "endswith", `\bitsadmin.exe`)
	var ind struct {
		Total      int            `json:"total"`
		ByLanguage map[string]int `json:"by_language"`
		Rules      []struct {
			ID string `json:"id"`
		} `json:"rules"`
	}
	if code != 0 || json.Unmarshal([]byte(js), &ind) != nil {
		t.Fatalf("indicator: exit %d: %s", code, js)
	}
	if itoa(ind.Total) != m[1] || itoa(ind.ByLanguage["sigma"]) != m[1] {
		t.Errorf("indicator says %d (%v), show says corpus %s", ind.Total, ind.ByLanguage, m[1])
	}
	// No exclusions section for a rule without filters; /transfer is specific to this rule.
	if strings.Contains(out, "\nExclusions\n") || strings.Contains(out, "/transfer   corpus") {
		t.Errorf("unexpected exclusions or count:\n%s", out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCLIShowJSONAndLookups(t *testing.T) {
	cliSetup(t)
	out, _, code := ruledex(t, "show", "--json", "win-os-BITS abuse for payload download (command)")
	if code != 0 {
		t.Fatalf("show --json by file stem: exit %d", code)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	id, _ := r["id"].(string)
	if r["title"] != "BITS payload downloaded via commandline" || r["language"] != "sigma" || r["url"] != "/rules/sigma/"+id+"/" {
		t.Errorf("show --json: title %v language %v url %v id %v", r["title"], r["language"], r["url"], id)
	}
	for _, k := range []string{"source", "stages", "root", "indicators", "body", "condition", "techniques", "tactics", "logsource"} {
		if _, ok := r[k]; !ok {
			t.Errorf("show --json lacks %q", k)
		}
	}
	// The same rule by id and by page path.
	for _, ref := range []string{id, "sigma/" + id, "/rules/sigma/" + id + "/"} {
		out2, _, code := ruledex(t, "show", "--json", ref)
		if code != 0 || out2 != out {
			t.Errorf("show --json %q: exit %d, differs from lookup by stem", ref, code)
		}
	}
	// Not found: exit 3 with suggestions.
	_, stderr, code := ruledex(t, "show", "BITS payload downloaded via carrier pigeon")
	if code != exitNoMatch || !strings.Contains(stderr, "closest titles") || !strings.Contains(stderr, "BITS") {
		t.Errorf("show unknown: exit %d, stderr %q", code, stderr)
	}
}

func TestCLIStatsJSON(t *testing.T) {
	cliSetup(t)
	out, _, code := ruledex(t, "stats", "--json")
	if code != 0 {
		t.Fatalf("stats: exit %d", code)
	}
	var st struct {
		Files        int                       `json:"files"`
		Rules        int                       `json:"rules"`
		Errors       *int                      `json:"errors"`
		ErrorsByCode map[string]int            `json:"errors_by_code"`
		ByLanguage   map[string]map[string]any `json:"by_language"`
		BySource     map[string]map[string]any `json:"by_source"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Files < 4000 || st.Rules < 4000 || st.Errors == nil || st.ErrorsByCode == nil {
		t.Errorf("stats: %s", out)
	}
	if st.ByLanguage["sigma"]["rules"].(float64) != float64(st.Rules) {
		t.Errorf("by_language: %v", st.ByLanguage)
	}
	for _, src := range []string{"github.com/SigmaHQ/sigma", "github.com/mdecrevoisier/SIGMA-detection-rules"} {
		if st.BySource[src] == nil || st.BySource[src]["rules"].(float64) < 100 {
			t.Errorf("by_source[%s] = %v", src, st.BySource[src])
		}
	}
}

func TestCLIIndicatorExitCodes(t *testing.T) {
	cliSetup(t)
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"indicator", "CommandLine", "match", "/transfer"}, exitOK},
		{[]string{"indicator", "CommandLine", "contains", "no such value in any rule 0x5f3a"}, exitNoMatch},
		{[]string{"indicator", "CommandLine", "sounds_like", "x"}, exitUsage},
		{[]string{"indicator", "CommandLine"}, exitUsage},
		{[]string{"show"}, exitUsage},
		{[]string{"stats", "extra"}, exitUsage},
		{[]string{"stats", "--no-such-flag"}, exitUsage},
	}
	for _, tt := range tests {
		if _, stderr, code := ruledex(t, tt.args...); code != tt.code {
			t.Errorf("ruledex %v: exit %d, want %d (%s)", tt.args, code, tt.code, stderr)
		}
	}
}

func TestCLIHelp(t *testing.T) {
	cliSetup(t)
	for _, c := range []string{"ingest", "show", "stats", "indicator"} {
		out, _, code := ruledex(t, c, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "ruledex "+c) {
			t.Errorf("%s --help: exit %d\n%s", c, code, out)
		}
	}
}

// TestCLIHuntIDsAgreeWithShow (issue 13, item 8): the seed rule has no id; hunt gives
// it the same rule_id however --rules is spelled, and `show` finds the rule by it.
func TestCLIHuntIDsAgreeWithShow(t *testing.T) {
	cliSetup(t)
	rulePath := corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml")
	evtx := corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID4688-BITS transfer initiated.evtx")
	dir := filepath.Dir(rulePath)
	spellings := []string{rulePath, dir, filepath.Join(dir, "..", filepath.Base(dir)), dir + "/"}
	var ids []string
	for _, sp := range spellings {
		out, stderr, code := ruledex(t, "hunt", "--json", "--rules", sp, evtx)
		if code != 0 {
			t.Fatalf("hunt --rules %s: exit %d\n%s", sp, code, stderr)
		}
		var rec struct {
			RuleID string `json:"rule_id"`
			Title  string `json:"title"`
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Title == "BITS payload downloaded via commandline" {
				ids = append(ids, rec.RuleID)
			}
		}
	}
	if len(ids) != len(spellings) {
		t.Fatalf("seed rule matched %d times over %d spellings", len(ids), len(spellings))
	}
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Errorf("rule ids differ with the spelling of --rules: %v", ids)
		}
	}
	out, stderr, code := ruledex(t, "show", ids[0])
	if code != 0 || !strings.Contains(out, "BITS payload downloaded via commandline") {
		t.Errorf("show %s: exit %d\n%s%s", ids[0], code, out, stderr)
	}
}
