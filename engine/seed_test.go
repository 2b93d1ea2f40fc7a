package engine

import (
	"os"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// TestSeedRuleFiresOnNativeAudit: the mdecrevoisier rule is written on NewProcessName
// with the process_creation category (Sysmon 1); it must fire on Security 4688 through
// the native-audit route.
func TestSeedRuleFiresOnNativeAudit(t *testing.T) {
	path := corpustest.Path(t, "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rs, diags := sigma.Parser{}.Parse(rule.Source{Repo: "mdecrevoisier/SIGMA-detection-rules", Path: path}, data)
	if len(rs) != 1 {
		t.Fatalf("parsed %d rules (%v), want 1", len(rs), diags)
	}
	cat, err := winevent.Load(corpustest.Path(t, "events"))
	if err != nil {
		t.Fatal(err)
	}
	m, skipped := Compile(rs, Options{Router: CatalogRouter{cat}})
	if len(skipped) > 0 {
		t.Fatalf("seed rule skipped: %s", skipped[0].Reason)
	}
	evs, err := readEvents(corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID4688-BITS transfer initiated.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range evs {
		for _, x := range m.Match(&evs[i], nil) {
			n++
			if x.Via != "Security 4688" {
				t.Errorf("matched via %q, want the Security 4688 route", x.Via)
			}
			got := map[string]string{}
			for _, f := range x.Fields {
				got[f.Name] = f.Value
			}
			if got["NewProcessName"] == "" || got["CommandLine"] == "" {
				t.Errorf("matched fields %v, want NewProcessName and CommandLine", x.Fields)
			}
		}
	}
	if n == 0 {
		t.Fatalf("seed rule did not fire on %d events", len(evs))
	}
	t.Logf("seed rule fired %d times on %d events", n, len(evs))
}

// TestSigmaHQFiresOnNativeAudit: SigmaHQ's Sysmon-named process_creation rules fire on
// the same Security 4688 record through the Image → NewProcessName renames.
func TestSigmaHQFiresOnNativeAudit(t *testing.T) {
	rules, cat := windowsRules(t)
	m, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
	evs, err := readEvents(corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID4688-BITS transfer initiated.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	const bitsadminDownload = "d059842b-6b9d-4ed1-b5c3-5b89143c6ede" // File Download Via Bitsadmin
	found := false
	for i := range evs {
		for _, x := range m.Match(&evs[i], nil) {
			if x.Rule.ID == bitsadminDownload && x.Via == "Security 4688" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("SigmaHQ rule %s did not fire on the 4688 record", bitsadminDownload)
	}
}
