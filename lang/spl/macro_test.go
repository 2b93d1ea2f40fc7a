package spl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

func TestMacroExpansion(t *testing.T) {
	m := NewMacroSet()
	// Definitions as in ESCU's macros/ (process_bitsadmin, sysmon, security_content_ctime).
	m.Add(Macro{Name: "process_bitsadmin", Definition: "(Processes.process_name=bitsadmin.exe OR Processes.original_file_name=bitsadmin.exe)"})
	m.Add(Macro{Name: "sysmon", Definition: "sourcetype=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational OR source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"})
	m.Add(Macro{Name: "security_content_ctime", Args: []string{"field"}, Definition: `convert timeformat="%Y-%m-%dT%H:%M:%S" ctime($field$)`})
	m.Add(Macro{Name: "eq2", Args: []string{"f", "v"}, Definition: `$f$=$v$`})
	m.Add(Macro{Name: "outer", Definition: "`inner` b=2"})
	m.Add(Macro{Name: "inner", Definition: "a=1"})
	m.Add(Macro{Name: "loop_a", Definition: "x=1 `loop_b`"})
	m.Add(Macro{Name: "loop_b", Definition: "`loop_a`"})
	m.Add(Macro{Name: "self", Definition: "`self` y=1"})
	m.Add(Macro{Name: "overloaded", Definition: "n=0"})
	m.Add(Macro{Name: "overloaded", Args: []string{"a"}, Definition: "n=$a$"})
	for i := 0; i < 30; i++ {
		m.Add(Macro{Name: fmt.Sprintf("deep%d", i), Definition: fmt.Sprintf("`deep%d`", i+1)})
	}

	tests := []struct {
		name, search, want, diag string
		resolved                 int
	}{
		{"plain", "`sysmon` EventCode=1",
			"and(or(sourcetype eq XmlWinEventLog:Microsoft-Windows-Sysmon/Operational, source eq XmlWinEventLog:Microsoft-Windows-Sysmon/Operational), EventCode eq 1)", "", 1},
		{"in tstats where", "| tstats count from datamodel=Endpoint.Processes where `process_bitsadmin` Processes.process=*transfer* by Processes.dest",
			"and(or(Processes.process_name eq bitsadmin.exe, Processes.original_file_name eq bitsadmin.exe), Processes.process match transfer)", "", 1},
		{"arguments", "`eq2(Processes.process, \"*a, b*\")`", "Processes.process match a, b", "", 1},
		{"arity selects the definition", "`overloaded` `overloaded(7)`", "and(n eq 0, n eq 7)", "", 2},
		{"recursive", "`outer` c=3", "and(a eq 1, b eq 2, c eq 3)", "", 2},
		{"cycle", "`loop_a`", "and(x eq 1, opaque(`loop_a`))", "warning spl/macro/cycle", 2},
		{"self reference", "`self`", "and(opaque(`self`), y eq 1)", "warning spl/macro/cycle", 1},
		{"too deep", "`deep0`", "opaque(`deep20`)", "warning spl/macro/too-deep", 20},
		{"undefined", "`nosuch_macro` a=1", "and(opaque(`nosuch_macro`), a eq 1)", "warning spl/macro/undefined", 0},
		{"undefined with arguments", "`get_asset(src)` a=1", "and(opaque(`get_asset(src)`), a eq 1)", "warning spl/macro/undefined", 0},
		{"ESCU filter macro", "a=1 | `my_detection_filter`", "a eq 1", "", 1},
		{"backtick in a string is not a macro", "x=\"a`b\" y=1", "and(x eq a`b, y eq 1)", "", 0},
		{"comment is not a macro", "```a `macro` in a comment``` a=1", "a eq 1", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := m.parseSearchText(tt.search, textLocator(tt.search))
			if got := render(res.root); got != tt.want {
				t.Errorf("%s\n got %s\nwant %s\nexpanded: %s", tt.search, got, tt.want, res.expanded)
			}
			if got := codes(res.diags); got != tt.diag {
				t.Errorf("diags %q, want %q", got, tt.diag)
			}
			if res.resolved != tt.resolved {
				t.Errorf("resolved %d macro references, want %d", res.resolved, tt.resolved)
			}
		})
	}
}

func TestMacroStageAndParams(t *testing.T) {
	m := NewMacroSet()
	m.Add(Macro{Name: "security_content_ctime", Args: []string{"field"}, Definition: `convert ctime($field$)`})
	search := "a=1 | `drop_dm_object_name(Processes)` | `security_content_ctime(firstTime)` | `undefined_one`"
	res := m.parseSearchText(search, textLocator(search))
	st := res.stages[1]
	if st.Kind != rule.StageParameter || st.Label != "macros" {
		t.Fatalf("stage 1 = %+v, want the macro list", st)
	}
	want := "`drop_dm_object_name(Processes)` = rename Processes.* AS *\n" +
		"`security_content_ctime(firstTime)` = convert ctime(firstTime)\n" +
		"`undefined_one` = (undefined)"
	if st.Text != want {
		t.Errorf("macro stage text\n got %q\nwant %q", st.Text, want)
	}
	if len(res.params) != 3 || res.params[1].Name != "`security_content_ctime(firstTime)`" || res.params[1].Value != "convert ctime(firstTime)" {
		t.Errorf("params = %+v", res.params)
	}
	last := res.stages[len(res.stages)-1]
	if last.Kind != rule.StageOpaque || last.Label != "`undefined_one`" {
		t.Errorf("undefined macro command stage = %+v", last)
	}
}

func TestParseCall(t *testing.T) {
	tests := []struct{ body, name, args string }{
		{"sysmon", "sysmon", ""},
		{"security_content_ctime(firstTime)", "security_content_ctime", "firstTime"},
		{`drop_dm_object_name("Processes")`, "drop_dm_object_name", `"Processes"`},
		{`m(a, "b, c", f(x, y))`, "m", `a|"b, c"|f(x, y)`},
		{" spaced ( a ) ", "spaced", "a"},
		{"m()", "m", ""},
		{"broken(a", "broken(a", ""},
	}
	for _, tt := range tests {
		name, args := parseCall(tt.body)
		if name != tt.name || strings.Join(args, "|") != tt.args {
			t.Errorf("parseCall(%q) = %q %q, want %q %q", tt.body, name, args, tt.name, tt.args)
		}
	}
}

func TestLoadTreeFindsESCUMacros(t *testing.T) {
	root := corpustest.Path(t, "spl", "splunk")
	files, _ := filepath.Glob(filepath.Join(root, "macros", "*.yml"))
	m := NewMacroSet()
	// Loading from the corpus root finds spl/splunk/macros too.
	n, err := m.LoadTree(corpustest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	if n < len(files) {
		t.Errorf("loaded %d macros from the corpus root, the ESCU macros/ folder has %d files", n, len(files))
	}
	d, ok := m.lookup("security_content_ctime", 1)
	if !ok || d.Args[0] != "field" || !strings.Contains(d.Definition, "ctime($field$)") {
		t.Errorf("security_content_ctime(1) = %+v, %v", d, ok)
	}
	// Ingesting one detections/ subfolder still finds the ESCU macros above it.
	m3 := NewMacroSet()
	if n, err := m3.LoadTree(filepath.Join(root, "detections", "endpoint")); err != nil || n < len(files) {
		t.Errorf("LoadTree(detections/endpoint) = %d, %v; want the %d macros of the ESCU root", n, err, len(files))
	}
	if _, err := m.LoadTree(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LoadTree of a missing root: no error")
	}
	// A broken macro file is reported, the others still load.
	dir := filepath.Join(t.TempDir(), "macros")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("name: [unclosed"), 0o644)
	os.WriteFile(filepath.Join(dir, "good.yml"), []byte("name: good\ndefinition: a=1\n"), 0o644)
	m2 := NewMacroSet()
	n, errs := m2.LoadDir(dir)
	if n != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "bad.yml") {
		t.Errorf("LoadDir = %d, %v", n, errs)
	}
}
