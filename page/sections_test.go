package page

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/rule"
)

// TestESCUSections: an ESCU rule's risk rating, how_to_implement and
// known_false_positives get sections of their own instead of staying inside the YAML.
func TestESCUSections(t *testing.T) {
	path := corpustest.Path(t, "spl", "splunk", "detections", "web", "proxyshell_proxynotshell_behavior_detected.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := (&spl.Parser{}).Parse(rule.Source{Repo: "github.com/splunk/security_content", Path: "detections/web/proxyshell_proxynotshell_behavior_detected.yml"}, data)
	if len(rules) != 1 {
		t.Fatalf("%d rules", len(rules))
	}
	p := BuildRule(rules[0], Input{})
	wantRisk := []MetaItem{{Label: "Risk score", Value: "81"}, {Label: "Confidence", Value: "90"}, {Label: "Impact", Value: "90"}}
	if d := cmp.Diff(wantRisk, p.Risk); d != "" {
		t.Errorf("risk (-want +got):\n%s", d)
	}
	var titles []string
	for _, d := range p.Docs {
		titles = append(titles, d.Title)
	}
	if d := cmp.Diff([]string{"How to implement", "False positives"}, titles); d != "" {
		t.Fatalf("doc sections (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(p.Docs[0].Markdown, "To implement this correlation, you will need to enable ProxyShell") {
		t.Errorf("how to implement: %q", p.Docs[0].Markdown)
	}
	if p.Docs[1].Markdown != "False positives will be limited, however tune or modify the query as needed." {
		t.Errorf("false positives: %q", p.Docs[1].Markdown)
	}
	var b bytes.Buffer
	if err := WriteText(&b, p); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, w := range []string{"\nRisk\n\nRisk score\n81\nConfidence\n90\n", "\nHow to implement\n\nTo implement this correlation", "\nFalse positives\n\nFalse positives will be limited"} {
		if !strings.Contains(text, w) {
			t.Errorf("text page lacks %q", w)
		}
	}
}

// TestNewIRSections covers the sections of the Elastic and YARA-L fields: values as in
// the Elastic rule credential_access_suspicious_lsass_access_via_snapshot.toml.
func TestNewIRSections(t *testing.T) {
	tests := []struct {
		name      string
		r         rule.Rule
		logsource string
		docs      []string
		risk      string
		text      []string
	}{
		{"elastic threshold rule",
			rule.Rule{Language: rule.Elastic, ID: "0f93cb9a-1931-48c2-8cd0-f173fd3e5283", Title: "Potential LSASS Memory Dump via PssCaptureSnapshot",
				RiskScore: 73, LogSource: rule.LogSource{Indexes: []string{"winlogbeat-*", "logs-windows.sysmon_operational-*"}, EventTypes: []string{"process"}},
				Settings:       []rule.Setting{{Name: "type", Value: "threshold"}, {Name: "threshold.field", Value: "process.entity_id"}, {Name: "maturity", Value: "production"}},
				Docs:           []rule.Doc{{Title: "Investigation guide", Markdown: "## Triage and analysis"}, {Title: "Setup", Markdown: "This rule requires Sysmon telemetry to be enabled and ingested."}},
				FalsePositives: []string{"Authorized debugger"}},
			"indexes winlogbeat-*, logs-windows.sysmon_operational-*, event types process",
			[]string{"Investigation guide", "Setup", "False positives"}, "73",
			[]string{"\nParameters\n\nParameter         Value\ntype              threshold\nthreshold.field   process.entity_id\n", "\nInvestigation guide\n\n## Triage and analysis\n"}},
		{"a doc already titled false positives is not repeated",
			rule.Rule{Language: rule.Splunk, Title: "x", FalsePositives: []string{"a", "b"}, Docs: []rule.Doc{{Title: "Known false positives", Markdown: "a"}}},
			"", []string{"Known false positives"}, "", nil},
		{"several Sigma false positives become a list",
			rule.Rule{Language: rule.Sigma, Title: "x", FalsePositives: []string{"Legitimate admin", " ", "Unknown"}},
			"", []string{"False positives"}, "", []string{"\nFalse positives\n\n- Legitimate admin\n- Unknown\n"}},
		{"yaral computed columns",
			rule.Rule{Language: rule.YaraL, Title: "x", Computed: []rule.Computed{{Name: "$risk_score", Definition: "max(35)", Stage: 2}},
				Settings: []rule.Setting{{Name: "match", Value: "$hostname over 5m"}}},
			"", nil, "", []string{"\nComputed columns\n\nColumn        Definition   Stage\n$risk_score   max(35)      2\n", "match       $hostname over 5m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := BuildRule(&tt.r, Input{})
			var ls string
			for _, m := range p.Meta {
				if m.Label == "Log source" {
					ls = m.Value
				}
			}
			if ls != tt.logsource {
				t.Errorf("log source %q, want %q", ls, tt.logsource)
			}
			var docs []string
			for _, d := range p.Docs {
				docs = append(docs, d.Title)
			}
			if d := cmp.Diff(tt.docs, docs); d != "" {
				t.Errorf("docs (-want +got):\n%s", d)
			}
			risk := ""
			if len(p.Risk) > 0 {
				risk = p.Risk[0].Value
			}
			if risk != tt.risk {
				t.Errorf("risk %q, want %q", risk, tt.risk)
			}
			var b bytes.Buffer
			WriteText(&b, p)
			for _, w := range tt.text {
				if !strings.Contains(b.String(), w) {
					t.Errorf("text lacks %q in\n%s", w, b.String())
				}
			}
		})
	}
}
