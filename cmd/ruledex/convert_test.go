package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

// TestCLIConvert drives `ruledex convert` as a user would: a catalog rule into every
// target, a rule file outside the catalog, JSON output, a rule a language cannot say
// (exit 1 with the reason), bad flags (exit 2), and --all with its summary; every file
// written by --all is read back by `ingest`.
func TestCLIConvert(t *testing.T) {
	dir := t.TempDir()
	c := cli{db: filepath.Join(dir, "c.db"), dir: dir}
	bits := corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits")
	if _, stderr, code := c.run(t, "ingest", bits); code != 0 {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	seed := "BITS payload downloaded via commandline"
	for _, tc := range []struct{ to, want string }{
		{"kql", `| where FileName =~ "bitsadmin.exe"`},
		{"spl", `from datamodel=Endpoint.Processes where Processes.process_name="bitsadmin.exe"`},
		{"eql", `process.name : "bitsadmin.exe"`},
		{"esql", `to_lower(process.name) == "bitsadmin.exe"`},
		{"yaral", "re.regex($e.target.process.file.full_path, `\\\\bitsadmin\\.exe$`) nocase"},
		{"sigma", `Image|endswith: '\bitsadmin.exe'`},
	} {
		out, stderr, code := c.run(t, "convert", seed, "--to", tc.to)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("convert --to %s: exit %d, stderr %q, output lacks %q:\n%s", tc.to, code, stderr, tc.want, out)
		}
	}
	// A rule file that is not in the catalog, as JSON.
	file := corpustest.Path(t, "sigma", "sigmahq", "rules", "windows", "process_creation", "proc_creation_win_bitsadmin_download.yml")
	out, stderr, code := c.run(t, "convert", "--file", file, "--to", "kql", "--json")
	var res struct {
		Query       string   `json:"query"`
		Assumptions []string `json:"assumptions"`
		Verified    bool     `json:"verified"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Verified || !strings.Contains(res.Query, "DeviceProcessEvents") || len(res.Assumptions) == 0 {
		t.Errorf("convert --file --json: exit %d, stderr %q, %+v", code, stderr, res)
	}
	// KQL has no wildcard match: the reason, exit 1, nothing on stdout.
	glob := filepath.Join(dir, "glob.yml")
	os.WriteFile(glob, []byte("title: Glob\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  selection:\n    Image: '*\\powershell?.exe'\n  condition: selection\n"), 0o644)
	out, stderr, code = c.run(t, "convert", "--file", glob, "--to", "kql")
	if code != 1 || out != "" || !strings.Contains(stderr, "KQL has no wildcard match") {
		t.Errorf("untranslatable: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	for _, args := range [][]string{{"convert", seed, "--to", "cobol"}, {"convert", seed}, {"convert", "--to", "kql"}, {"convert", seed, "--to", "kql", "--schema", "nope"}} {
		if _, _, code := c.run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	// --all writes files that ingest reads back as rules of the target language.
	outDir := filepath.Join(dir, "as-kql")
	out, stderr, code = c.run(t, "convert", "--all", "--to", "kql", "--out", outDir, "--json")
	var sum struct {
		Rules, Written, Skipped int
		Reasons                 map[string]int `json:"skipped_by_reason"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil || sum.Written == 0 || sum.Written+sum.Skipped != sum.Rules || len(sum.Reasons) == 0 {
		t.Fatalf("convert --all: exit %d, stderr %q, %s", code, stderr, out)
	}
	back := cli{db: filepath.Join(dir, "back.db"), dir: dir}
	out, stderr, code = back.run(t, "ingest", outDir, "--json")
	if code != 0 || !strings.Contains(out, `"kusto"`) {
		t.Fatalf("ingest of the translations: exit %d, %s %s", code, stderr, out)
	}
	var st struct {
		Rules  int `json:"rules"`
		Errors int `json:"errors"`
	}
	sout, _, _ := back.run(t, "stats", "--json")
	if json.Unmarshal([]byte(sout), &st) != nil || st.Rules != sum.Written || st.Errors != 0 {
		t.Errorf("the %d translations ingest as %d rules with %d errors", sum.Written, st.Rules, st.Errors)
	}
}
