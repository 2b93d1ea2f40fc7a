package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// A KQL rule runs on Windows events through the field map: Defender's FileName is the
// file name of Sysmon's Image (4688's NewProcessName), ProcessCommandLine is
// CommandLine, and `has` is a term test. The rule is m365-defender's "Backup deletion".
func TestKQLRuleOnWindowsEvents(t *testing.T) {
	dir := corpustest.Dir(t)
	path := filepath.Join(dir, "kql", "m365-defender", "Ransomware", "Backup deletion.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := kql.Parser{}.Parse(rule.Source{Repo: "kql", Path: "Backup deletion.md"}, data)
	if len(rules) != 1 {
		t.Fatalf("parsed %d rules", len(rules))
	}
	cat, err := winevent.Load(corpustest.Path(t, "events"))
	if err != nil {
		t.Fatal(err)
	}
	m, skipped := Compile(rules, Options{Router: CatalogRouter{Catalog: cat}})
	if len(skipped) > 0 {
		t.Fatalf("skipped: %s", skipped[0].Reason)
	}
	sysmon := func(image, cmd string) []string {
		return []string{"Channel", "Microsoft-Windows-Sysmon/Operational", "EventID", "1", "Image", image, "CommandLine", cmd}
	}
	tests := []struct {
		name string
		kv   []string
		want bool
		via  string
	}{
		{"Sysmon 1", sysmon(`C:\Windows\System32\wbem\WMIC.exe`, "wmic shadowcopy delete /nointeractive"), true, ""},
		{"has is a term test", sysmon(`C:\Windows\System32\wbem\WMIC.exe`, "wmic shadowcopies delete"), false, ""},
		{"FileName is the file name, not a suffix", sysmon(`C:\x\notwmic.exe`, "wmic shadowcopy delete"), false, ""},
		{"Security 4688 names", []string{"Channel", "Security", "EventID", "4688", "NewProcessName", `C:\Windows\System32\wbem\WMIC.exe`,
			"CommandLine", "wmic shadowcopy delete"}, true, "Security 4688"},
		{"Sysmon 3 is not a process event", []string{"Channel", "Microsoft-Windows-Sysmon/Operational", "EventID", "3",
			"Image", `C:\Windows\System32\wbem\WMIC.exe`, "CommandLine", "wmic shadowcopy delete"}, false, ""},
		{"Defender-style JSON keeps its own names", []string{"FileName", "wmic.exe", "ProcessCommandLine", "wmic shadowcopy delete"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := m.Match(ev(tc.kv...), nil)
			if got := len(out) == 1; got != tc.want {
				t.Fatalf("matched %v, want %v", got, tc.want)
			}
			if tc.want && out[0].Via != tc.via {
				t.Errorf("via %q, want %q", out[0].Via, tc.via)
			}
		})
	}
}

// Rules of other languages run when their pipeline is a single-event filter, and are
// listed with the reason otherwise; the SPL rule is ESCU's "DSQuery Domain Discovery",
// a tstats group-by over Endpoint.Processes (process_name is the file name of Image).
func TestPipelineRulesRunOrSayWhy(t *testing.T) {
	dir := corpustest.Dir(t)
	sp := &spl.Parser{}
	if err := sp.Begin(filepath.Join(dir, "spl")); err != nil {
		t.Fatal(err)
	}
	parse := func(p interface {
		Parse(rule.Source, []byte) ([]*rule.Rule, []rule.Diagnostic)
	}, rel string) *rule.Rule {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := p.Parse(rule.Source{Repo: "corpus", Path: rel}, data)
		if len(rs) == 0 {
			t.Fatalf("%s: no rule", rel)
		}
		return rs[0]
	}
	dsquery := parse(sp, "spl/splunk/detections/endpoint/dsquery_domain_discovery.yml")
	joined := parse(kql.Parser{}, "kql/m365-defender/Initial access/WhenZAPed.md")
	cat, err := winevent.Load(corpustest.Path(t, "events"))
	if err != nil {
		t.Fatal(err)
	}
	m, skipped := Compile([]*rule.Rule{dsquery, joined}, Options{Router: CatalogRouter{Catalog: cat}})
	reasons := map[*rule.Rule]string{}
	for _, s := range skipped {
		reasons[s.Rule] = s.Reason
	}
	if why, ok := reasons[dsquery]; ok {
		t.Fatalf("%s skipped: %s", dsquery.Title, why)
	}
	if why := reasons[joined]; !strings.Contains(why, "join") {
		t.Errorf("%s: skip reason %q, want it to name the join", joined.Title, why)
	}
	tests := []struct {
		name string
		kv   []string
		want bool
	}{
		{"Sysmon 1 dsquery trustedDomain", []string{"Channel", "Microsoft-Windows-Sysmon/Operational", "EventID", "1",
			"Image", `C:\Windows\System32\dsquery.exe`, "CommandLine", `dsquery * -filter "(objectClass=trustedDomain)"`}, true},
		{"other binary", []string{"Channel", "Microsoft-Windows-Sysmon/Operational", "EventID", "1",
			"Image", `C:\Windows\System32\cmd.exe`, "CommandLine", `dsquery * -filter "(objectClass=trustedDomain)"`}, false},
		{"4688", []string{"Channel", "Security", "EventID", "4688", "NewProcessName", `C:\Windows\System32\dsquery.exe`,
			"CommandLine", `dsquery * -filter "(objectClass=trustedDomain)"`}, true},
	}
	for _, tc := range tests {
		if got := len(m.Match(ev(tc.kv...), nil)) == 1; got != tc.want {
			t.Errorf("%s: matched %v, want %v", tc.name, got, tc.want)
		}
	}
}

// pipelineCorpus parses every KQL, SPL, Elastic and YARA-L rule of the corpus.
func pipelineCorpus(t *testing.T) []*rule.Rule {
	t.Helper()
	dir := corpustest.Dir(t)
	sp := &spl.Parser{}
	if err := sp.Begin(filepath.Join(dir, "spl")); err != nil {
		t.Fatal(err)
	}
	type parser interface {
		Detect(string, []byte) bool
		Parse(rule.Source, []byte) ([]*rule.Rule, []rule.Diagnostic)
	}
	var out []*rule.Rule
	for _, d := range []struct {
		dir string
		p   parser
	}{{"kql", kql.Parser{}}, {"spl", sp}, {"elastic", elastic.Parser{}}, {"yaral", yaral.Parser{}}} {
		base := filepath.Join(dir, d.dir)
		filepath.WalkDir(base, func(p string, de os.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(base, p)
			if d.p.Detect(filepath.ToSlash(rel), data) {
				rs, _ := d.p.Parse(rule.Source{Repo: d.dir, Path: filepath.ToSlash(rel)}, data)
				out = append(out, rs...)
			}
			return nil
		})
	}
	if len(out) < 3000 {
		t.Fatalf("parsed only %d KQL and SPL rules", len(out))
	}
	return out
}

// The prefilter with resolved fields (a literal may sit on the mapped field or on the
// column as the rule names it) never hides a match of a KQL or SPL rule: on every
// regression event, and on Defender-style events that carry the rules' own column
// names, the prefiltered matcher reports what evaluating every rule reports.
func TestPrefilterSoundOtherLanguages(t *testing.T) {
	rules := pipelineCorpus(t)
	cat, err := winevent.Load(corpustest.Path(t, "events"))
	if err != nil {
		t.Fatal(err)
	}
	fast, skipped := Compile(rules, Options{Router: CatalogRouter{Catalog: cat}})
	slow, _ := Compile(rules, Options{Router: CatalogRouter{Catalog: cat}, bruteForce: true})
	t.Logf("%d of %d KQL/SPL rules compiled, %d skipped with a reason", len(fast.Rules()), len(rules), len(skipped))
	var evs []event.Event
	for _, c := range regressionCases(t) {
		e, _ := readEvents(c.EVTX)
		evs = append(evs, e...)
	}
	defender := []*event.Event{
		ev("FileName", "certutil.exe", "FolderPath", `C:\Windows\System32\certutil.exe`, "ProcessCommandLine", "certutil -urlcache -f http://x/a.exe a.exe"),
		ev("FileName", "wmic.exe", "ProcessCommandLine", "wmic shadowcopy delete"),
		ev("FileName", "rundll32.exe", "ProcessCommandLine", `rundll32.exe C:\x.dll,DllRegisterServer`, "InitiatingProcessFileName", "cmd.exe"),
	}
	for i := range evs {
		defender = append(defender, &evs[i])
	}
	matches := 0
	for i, e := range defender {
		a, b := ids(fast.Match(e, nil)), ids(slow.Match(e, nil))
		if a != b {
			t.Errorf("event %d: prefiltered %q, every rule %q", i, a, b)
		}
		if b != "" {
			matches += strings.Count(b, ",") + 1
		}
	}
	t.Logf("%d events, %d matches compared", len(defender), matches)
	if matches == 0 {
		t.Error("no KQL or SPL rule matched any event: the comparison proves nothing")
	}
}
