package winevent

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/rule"
)

// parseWith parses one real file with p and returns its rules.
func parseWith(t testing.TB, p ingest.Parser, path string) []*rule.Rule {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := p.Parse(rule.Source{Repo: "test", Path: filepath.Base(path)}, data)
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", path)
	}
	return rules
}

func TestCoverageKQLSPLCorpus(t *testing.T) {
	c := catalog(t)
	splP := spl.NewParser(nil)
	if err := splP.Begin(corpustest.Path(t, "spl", "splunk")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    ingest.Parser
		path []string
		want []string
	}{
		// FileName and ProcessCommandLine have 4688 counterparts.
		{"DeviceProcessEvents", kql.Parser{}, []string{"kql", "jkerai1", "Defender", "WiFi Password Dumping Detection.kql"}, []string{sysmon1, sec4688}},
		// InitiatingProcessCommandLine is the parent's command line, which 4688 lacks.
		{"DeviceProcessEvents parent command line", kql.Parser{}, []string{"kql", "reprise99", "Defender for Endpoint", "Device-FirstTimeWhoAmI.kql"}, []string{sysmon1}},
		// SecurityEvent | where EventID == 4657 ... join (SecurityEvent | where EventID == 4688 ...)
		{"SecurityEvent EventIDs", kql.Parser{}, []string{"kql", "azure-sentinel", "Solutions", "Windows Security Events", "Analytic Rules", "PotentialFodhelperUACBypass.yaml"},
			[]string{"Microsoft-Windows-Security-Auditing 4657 A registry value was modified.", sec4688}},
		// ESCU data_source: Sysmon EventID 1, Windows Event Log Security 4688, CrowdStrike ProcessRollup2.
		{"ESCU", splP, []string{"spl", "splunk", "detections", "endpoint", "office_product_spawning_bitsadmin.yml"}, []string{sysmon1, sec4688}},
	}
	for _, tc := range tests {
		r := parseWith(t, tc.p, corpustest.Path(t, tc.path...))[0]
		if d := cmp.Diff(tc.want, rows(c.Coverage(r))); d != "" {
			t.Errorf("%s (-want +got):\n%s\ntables %v, data sources %v", tc.name, d, r.LogSource.Tables, r.LogSource.DataSources)
		}
	}

	// Shares over the whole corpora, for the record (KQL covers many non-Windows tables).
	share := func(root string, p ingest.Parser) (int, int) {
		var all, cov int
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.Contains(path, "/deprecated/") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil || !p.Detect(path, data) {
				return nil
			}
			rules, _ := p.Parse(rule.Source{Repo: "corpus", Path: path}, data)
			for _, r := range rules {
				all++
				if len(c.Coverage(r)) > 0 {
					cov++
				}
			}
			return nil
		})
		return all, cov
	}
	ka, kc := share(corpustest.Path(t, "kql"), kql.Parser{})
	sa, sc := share(corpustest.Path(t, "spl", "splunk", "detections"), splP)
	t.Logf("kusto: %d of %d rules with event coverage (%.1f%%); splunk: %d of %d (%.1f%%)", kc, ka, pct(kc, ka), sc, sa, pct(sc, sa))
	if kc == 0 || sc == 0 {
		t.Error("no KQL or SPL rule has coverage")
	}
}
