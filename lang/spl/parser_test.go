package spl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

func corpusFile(t *testing.T, elem ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(corpustest.Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func escuParser(t *testing.T) *Parser {
	t.Helper()
	p := &Parser{}
	if err := p.Begin(corpustest.Path(t, "spl", "splunk")); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseOne(t *testing.T, p *Parser, path string, data []byte) *rule.Rule {
	t.Helper()
	rs, diags := p.Parse(rule.Source{Repo: "github.com/splunk/security_content", Path: path}, data)
	if len(diags) > 0 || len(rs) != 1 {
		t.Fatalf("Parse(%s) = %d rules, %v", path, len(rs), diags)
	}
	return rs[0]
}

func TestDetect(t *testing.T) {
	tests := []struct {
		path string
		elem []string
		want bool
	}{
		{"detections/endpoint/bitsadmin_download_file.yml", []string{"spl", "splunk", "detections", "endpoint", "bitsadmin_download_file.yml"}, true},
		{"detections/deprecated/abnormally_high_aws_instances_launched_by_user.yml", []string{"spl", "splunk", "detections", "deprecated", "abnormally_high_aws_instances_launched_by_user.yml"}, true},
		{"macros/process_bitsadmin.yml", []string{"spl", "splunk", "macros", "process_bitsadmin.yml"}, false},
		{"macros/security_content_ctime.yml", []string{"spl", "splunk", "macros", "security_content_ctime.yml"}, false},
		{"rules/x.yml", []string{"sigma", "sigmahq", "rules-placeholder", "windows", "process_creation", "proc_creation_win_userdomain_variable_enumeration.yml"}, false},
		{"Analytic Rules/x.yaml", []string{"kql", "azure-sentinel", "Solutions", "Syslog", "Analytic Rules", "sftp_file_transfer_above_threshold.yaml"}, false},
	}
	p := &Parser{}
	for _, tt := range tests {
		if got := p.Detect(tt.path, corpusFile(t, tt.elem...)); got != tt.want {
			t.Errorf("Detect(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
	// An ESCU analytic story has name and id but no search; a nested search (drilldown) does not count.
	story := []byte("name: BITS Jobs\nid: 1\nnarrative: x\ndrilldown_searches:\n- name: a\n  search: b\n")
	if p.Detect("stories/bits_jobs.yml", story) {
		t.Error("Detect accepted a story")
	}
	if p.Detect("detections/x.txt", corpusFile(t, "spl", "splunk", "detections", "endpoint", "bitsadmin_download_file.yml")) {
		t.Error("Detect accepted a .txt file")
	}
}

func TestParseBitsadminMetadata(t *testing.T) {
	p := escuParser(t)
	path := "detections/endpoint/bitsadmin_download_file.yml"
	data := corpusFile(t, "spl", "splunk", "detections", "endpoint", "bitsadmin_download_file.yml")
	r := parseOne(t, p, path, data)

	got := map[string]any{
		"id": r.ID, "title": r.Title, "status": r.Status, "type": r.Type, "class": r.Class, "date": r.Date,
		"authors": r.Authors, "techniques": r.Techniques, "datasources": r.LogSource.DataSources,
		"datamodels": r.LogSource.DataModels, "bodylang": r.BodyLang, "language": r.Language,
		"stories": r.Extra["analytic_story"], "affiliation": r.Extra["author_affiliation"], "refs": len(r.References),
	}
	want := map[string]any{
		"id": "80630ff4-8e4c-11eb-aab5-acde48001122", "title": "BITSAdmin Download File", "status": "production",
		"type": "TTP", "class": rule.Detection, "date": "2024-09-30",
		"authors":     []string{"Michael Haag", "Sittikorn S"},
		"techniques":  []string{"T1197", "T1105"},
		"datasources": []string{"Sysmon EventID 1", "Windows Event Log Security 4688", "CrowdStrike ProcessRollup2"},
		"datamodels":  []string{"Endpoint.Processes", "Processes"}, "bodylang": "spl", "language": rule.Splunk,
		"stories":     "Ingress Tool Transfer; BITS Jobs; DarkSide Ransomware; Living Off The Land; Flax Typhoon; Gozi Malware",
		"affiliation": "", "refs": 4,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("metadata (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(r.Body, "| tstats `security_content_summariesonly` count") || r.Body != r.Condition {
		t.Errorf("body = %q", r.Body)
	}
	if len(r.Bodies) != 2 || r.Bodies[0].Body != string(data) || !strings.Contains(r.Bodies[1].Body, "Processes.process_name=bitsadmin.exe") {
		t.Errorf("bodies = %+v", r.Bodies)
	}
	if len(r.Diagnostics) != 0 {
		t.Errorf("diagnostics: %v", r.Diagnostics)
	}
	// Positions point into the file: the IN predicate is on line 13 where the file has it.
	line := strings.Split(string(data), "\n")[12]
	col := strings.Index(line, "Processes.process IN") + 1
	var found bool
	for _, pp := range rule.Preds(r.Root) {
		if pp.Pred.Field == "Processes.process" {
			found = true
			if pp.Pred.Pos != (rule.Pos{File: path, Line: 13, Col: col}) {
				t.Errorf("Processes.process at %+v, want 13:%d", pp.Pred.Pos, col)
			}
		}
	}
	if !found {
		t.Error("no Processes.process predicate")
	}
}

func TestParseStatusAndClass(t *testing.T) {
	p := escuParser(t)
	r := parseOne(t, p, "detections/deprecated/abnormally_high_aws_instances_launched_by_user.yml",
		corpusFile(t, "spl", "splunk", "detections", "deprecated", "abnormally_high_aws_instances_launched_by_user.yml"))
	if r.Status != "deprecated" || r.Extra["author_affiliation"] != "Splunk" || len(r.Authors) != 1 {
		t.Errorf("deprecated rule: status %q authors %v extra %v", r.Status, r.Authors, r.Extra["author_affiliation"])
	}
	// A file under deprecated/ is deprecated whatever its status says.
	data := []byte("name: X\nid: x-1\nstatus: production\ntype: TTP\nsearch: a=1\n")
	if r := parseOne(t, p, "detections/deprecated/x.yml", data); r.Status != "deprecated" {
		t.Errorf("status under deprecated/ = %q", r.Status)
	}
	r = parseOne(t, p, "detections/web/hunting_for_log4shell.yml",
		corpusFile(t, "spl", "splunk", "detections", "web", "hunting_for_log4shell.yml"))
	if r.Class != rule.Hunting || r.Type != "Hunting" {
		t.Errorf("hunting rule: class %q type %q", r.Class, r.Type)
	}
	if !contains(r.LogSource.DataModels, "Web.Web") {
		t.Errorf("from datamodel Web.Web: data models %v", r.LogSource.DataModels)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestParseBrokenFiles(t *testing.T) {
	p := &Parser{}
	rs, diags := p.Parse(rule.Source{Path: "d/bad.yml"}, []byte("name: x\nsearch: 'unclosed\nid: [\n"))
	if len(rs) != 0 || len(diags) != 1 || diags[0].Severity != rule.Error || diags[0].Code != "spl/yaml" || diags[0].Pos.File != "d/bad.yml" {
		t.Errorf("bad YAML: %d rules, %v", len(rs), diags)
	}
	rs, diags = p.Parse(rule.Source{Path: "d/nosearch.yml"}, []byte("name: x\nid: y\nsearch: ''\n"))
	if len(diags) != 0 || len(rs) != 1 || !rs[0].HasErrors() || rs[0].Diagnostics[0].Code != "spl/missing-search" ||
		rs[0].Diagnostics[0].Pos.Line != 3 {
		t.Errorf("empty search: %+v %v", rs, diags)
	}
	rs, _ = p.Parse(rule.Source{Repo: "r", Path: "d/noid.yml"}, []byte("name: x\nsearch: a=1\n"))
	if rs[0].ID != rule.StableID("r", "d/noid.yml", 0) {
		t.Errorf("no id: ID %q", rs[0].ID)
	}
}

func TestPositionsInYAMLScalars(t *testing.T) {
	tests := []struct {
		name, yaml string
		line, col  int
	}{
		// The warning is for the where expression starting at "len".
		{"single-quoted with doubled quotes", "name: x\nid: y\nsearch: 'a=''b'' | where len(x) > 2'\n", 3, 26},
		{"plain", "name: x\nid: y\nsearch: a=1 | where len(x) > 2\n", 3, 21},
		{"literal block", "name: x\nid: y\nsearch: |-\n  a=1\n  | where len(x) > 2\n", 5, 11},
	}
	p := &Parser{}
	for _, tt := range tests {
		rs, _ := p.Parse(rule.Source{Path: "f.yml"}, []byte(tt.yaml))
		ds := rs[0].Diagnostics
		if len(ds) != 1 || ds[0].Pos.Line != tt.line || ds[0].Pos.Col != tt.col {
			t.Errorf("%s: diagnostics %v, want one at %d:%d", tt.name, ds, tt.line, tt.col)
		}
	}
}

// The cross-language contract: an SPL name-only test on a CIM field and Sigma's
// Image|endswith count as one indicator.
func TestBitsadminIndicatorMatchesSigma(t *testing.T) {
	fm := fieldmap.Default()
	sigma := &rule.Rule{
		Language:  rule.Sigma,
		LogSource: rule.LogSource{Product: "windows", Category: "process_creation"},
		Stages: []rule.Stage{
			{Index: 0, Kind: rule.StageCondition, Text: "selection"},
			{Index: 1, Kind: rule.StageSelection, Label: "selection", Node: rule.Leaf(&rule.Pred{
				Field: "Image", Kind: rule.EndsW, Values: []rule.Value{{S: `\bitsadmin.exe`}}, Native: "Image|endswith"})},
		},
	}
	sigmaInd := fm.Indicators(sigma)
	if len(sigmaInd) != 1 {
		t.Fatalf("sigma indicators: %+v", sigmaInd)
	}

	p := &Parser{}
	yaml := "name: t\nid: t-1\nsearch: '| tstats count from datamodel=Endpoint.Processes where Processes.process_name=bitsadmin.exe by Processes.dest'\n"
	r := parseOne(t, p, "detections/t.yml", []byte(yaml))
	splInd := fm.Indicators(r)
	if len(splInd) != 1 || splInd[0].Key != sigmaInd[0].Key {
		t.Fatalf("spl indicators %+v, want key %q", splInd, sigmaInd[0].Key)
	}
	if splInd[0].Canonical != "Image" || splInd[0].Field != "Processes.process_name" || splInd[0].Value != "bitsadmin.exe" {
		t.Errorf("spl indicator = %+v: keeps its own field and value, canonical Image", splInd[0])
	}

	// The real ESCU detection tests bitsadmin through the process_bitsadmin macro.
	real := parseOne(t, escuParser(t), "detections/endpoint/bitsadmin_download_file.yml",
		corpusFile(t, "spl", "splunk", "detections", "endpoint", "bitsadmin_download_file.yml"))
	keys := map[string]bool{}
	for _, in := range fm.Indicators(real) {
		keys[in.Key] = true
	}
	wantKeys := []string{
		sigmaInd[0].Key,
		fieldmap.Key("CommandLine", rule.Match, nil, "transfer", false),
		fieldmap.Key("CommandLine", rule.Match, nil, "addfile", false),
		fieldmap.Key("OriginalFileName", rule.Eq, nil, "bitsadmin.exe", false),
	}
	for _, k := range wantKeys {
		if !keys[k] {
			t.Errorf("bitsadmin_download_file lacks indicator %q; has %v", k, keys)
		}
	}
}

func TestParseConcurrent(t *testing.T) {
	// Parse is called from several goroutines by the ingest; the macro set is shared.
	p := escuParser(t)
	root := corpustest.Path(t, "spl", "splunk", "detections", "endpoint")
	files, _ := filepath.Glob(filepath.Join(root, "*.yml"))
	files = files[:min(len(files), 200)]
	done := make(chan bool)
	for w := 0; w < 4; w++ {
		go func() {
			for _, f := range files {
				data, _ := os.ReadFile(f)
				p.Parse(rule.Source{Path: filepath.Base(f)}, data)
			}
			done <- true
		}()
	}
	for w := 0; w < 4; w++ {
		<-done
	}
}
