package attack

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/internal/corpustest"
)

var (
	loadOnce sync.Once
	loaded   *Matrix
	loadErr  error
)

// bundle loads the real bundle once for all tests.
func bundle(t testing.TB) *Matrix {
	t.Helper()
	p := BundlePath(corpustest.Dir(t))
	loadOnce.Do(func() { loaded, loadErr = Load(p) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

func TestTechniques(t *testing.T) {
	m := bundle(t)
	tests := []struct {
		id, name, parent string
		tactics          []string
	}{
		{"T1197", "BITS Jobs", "", []string{"persistence", "defense-evasion"}},
		{"T1048", "Exfiltration Over Alternative Protocol", "", []string{"exfiltration"}},
		{"T1570", "Lateral Tool Transfer", "", []string{"lateral-movement"}},
		{"T1105", "Ingress Tool Transfer", "", []string{"command-and-control"}},
		{"t1558.004", "AS-REP Roasting", "T1558", []string{"credential-access"}},
	}
	for _, tc := range tests {
		tech, ok := m.Technique(tc.id)
		if !ok {
			t.Errorf("%s: not found", tc.id)
			continue
		}
		if tech.Name != tc.name || tech.Parent != tc.parent {
			t.Errorf("%s: name %q parent %q, want %q %q", tc.id, tech.Name, tech.Parent, tc.name, tc.parent)
		}
		if d := cmp.Diff(tc.tactics, tech.Tactics); d != "" {
			t.Errorf("%s tactics (-want +got):\n%s", tc.id, d)
		}
		if !tech.Active() || !strings.HasPrefix(tech.URL, "https://attack.mitre.org/techniques/") {
			t.Errorf("%s: active %v url %q", tc.id, tech.Active(), tech.URL)
		}
	}
	if s := mustTech(t, m, "T1197").Summary; !strings.HasPrefix(s, "Adversaries may abuse BITS jobs") || strings.Contains(s, "Citation") {
		t.Errorf("T1197 summary = %q", s)
	}
}

func mustTech(t *testing.T, m *Matrix, id string) *Technique {
	t.Helper()
	tech, ok := m.Technique(id)
	if !ok {
		t.Fatalf("%s not found", id)
	}
	return tech
}

func TestTacticsInMatrixOrder(t *testing.T) {
	m := bundle(t)
	var got []string
	for _, ta := range m.Tactics() {
		got = append(got, ta.ID+" "+ta.Short+" "+ta.Name)
	}
	// Order as the Enterprise matrix object's tactic_refs list them.
	want := []string{
		"TA0043 reconnaissance Reconnaissance", "TA0042 resource-development Resource Development",
		"TA0001 initial-access Initial Access", "TA0002 execution Execution", "TA0003 persistence Persistence",
		"TA0004 privilege-escalation Privilege Escalation", "TA0005 defense-evasion Defense Evasion",
		"TA0006 credential-access Credential Access", "TA0007 discovery Discovery",
		"TA0008 lateral-movement Lateral Movement", "TA0009 collection Collection",
		"TA0011 command-and-control Command and Control", "TA0010 exfiltration Exfiltration", "TA0040 impact Impact",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tactics (-want +got):\n%s", d)
	}
	persist := m.TechniquesOf("Persistence")
	found := false
	for _, te := range persist {
		found = found || te.ID == "T1197"
		if !te.Active() {
			t.Errorf("TechniquesOf lists inactive %s", te.ID)
		}
	}
	if !found {
		t.Errorf("T1197 not among %d persistence techniques", len(persist))
	}
}

func TestSubTechniques(t *testing.T) {
	m := bundle(t)
	var ids []string
	for _, s := range m.SubTechniques("t1558") {
		ids = append(ids, s.ID+" "+s.Name)
	}
	// Steal or Forge Kerberos Tickets' sub-techniques in the bundle.
	want := []string{"T1558.001 Golden Ticket", "T1558.002 Silver Ticket", "T1558.003 Kerberoasting",
		"T1558.004 AS-REP Roasting", "T1558.005 Ccache Files"}
	if d := cmp.Diff(want, ids); d != "" {
		t.Errorf("T1558 sub-techniques (-want +got):\n%s", d)
	}
}

func TestRevokedAndDeprecated(t *testing.T) {
	m := bundle(t)
	tests := []struct {
		tag        string
		revoked    bool
		revokedBy  string
		deprecated bool
	}{
		// T1143 "Hidden Window" was revoked by T1564.003 (a revoked-by relationship in the bundle).
		{"attack.t1143", true, "T1564.003", false},
		{"T1042", true, "T1546.001", false},
		// T1064 "Scripting" is deprecated (x_mitre_deprecated), not revoked.
		{"attack.t1064", false, "", true},
	}
	for _, tc := range tests {
		r := m.Resolve(tc.tag)
		if !r.Known || r.Kind != KindTechnique || r.Revoked != tc.revoked || r.RevokedBy != tc.revokedBy || r.Deprecated != tc.deprecated {
			t.Errorf("Resolve(%q) = %+v", tc.tag, r)
		}
	}
	res := m.ResolveTags([]string{"attack.t1143", "attack.t1064", "attack.t1197", "attack.t9999", "attack.not_a_tactic"})
	var flagged []string
	for _, f := range res.Flagged {
		flagged = append(flagged, f.ID)
	}
	if d := cmp.Diff([]string{"T1143", "T1064", "T9999", "not-a-tactic"}, flagged); d != "" {
		t.Errorf("flagged (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"T1143", "T1064", "T1197", "T9999"}, res.Techniques); d != "" {
		t.Errorf("techniques kept, flagged not dropped (-want +got):\n%s", d)
	}
}

func TestNormalizeTag(t *testing.T) {
	tests := []struct {
		tag  string
		kind Kind
		id   string
	}{
		{"attack.command_and_control", KindTactic, "command-and-control"},
		{"attack.Command_and_control", KindTactic, "command-and-control"},
		{"attack.credential-access", KindTactic, "credential-access"},
		{"attack.credential_access", KindTactic, "credential-access"},
		{"attack.persistence", KindTactic, "persistence"},
		{"CommandAndControl", KindTactic, "command-and-control"},
		{"PrivilegeEscalation", KindTactic, "privilege-escalation"},
		{"Command and Control", KindTactic, "command-and-control"},
		{"attack.t1558.004", KindTechnique, "T1558.004"},
		{"T1558.004", KindTechnique, "T1558.004"},
		{"attack.T1197", KindTechnique, "T1197"},
		{" attack.t1197 ", KindTechnique, "T1197"},
		{"TA0011", KindTactic, "TA0011"},
		{"attack.g0016", KindGroup, "G0016"},
		{"attack.s0195", KindSoftware, "S0195"},
		{"cve.2021-34527", KindNone, ""},
		{"detection.threat_hunting", KindNone, ""},
		{"attack.t1558.04", KindNone, ""}, // malformed: neither an ID nor a tactic spelling
		{"", KindNone, ""},
	}
	for _, tc := range tests {
		k, id := NormalizeTag(tc.tag)
		if k != tc.kind || id != tc.id {
			t.Errorf("NormalizeTag(%q) = %q %q, want %q %q", tc.tag, k, id, tc.kind, tc.id)
		}
	}
}

func TestResolveSpellings(t *testing.T) {
	m := bundle(t)
	for _, tag := range []string{"attack.command_and_control", "attack.Command_and_control", "CommandAndControl",
		"Command and Control", "TA0011", "command-and-control"} {
		r := m.Resolve(tag)
		if !r.Known || r.Kind != KindTactic || r.ID != "command-and-control" || r.Name != "Command and Control" {
			t.Errorf("Resolve(%q) = %+v", tag, r)
		}
	}
	r := m.Resolve("attack.credential-access")
	if r.ID != "credential-access" || r.Name != "Credential Access" {
		t.Errorf("credential-access: %+v", r)
	}
	// The seed rule's tags resolve to its four tactics in matrix order.
	res := m.ResolveTags([]string{"attack.exfiltration", "attack.t1048", "attack.lateral_movement", "attack.t1570",
		"attack.command_and_control", "attack.t1105", "attack.persistence", "attack.t1197", "sysmon"})
	if d := cmp.Diff([]string{"persistence", "lateral-movement", "command-and-control", "exfiltration"}, res.Tactics); d != "" {
		t.Errorf("seed tactics (-want +got):\n%s", d)
	}
	if len(res.Flagged) != 0 {
		t.Errorf("seed flagged %+v", res.Flagged)
	}
}

func TestReadErrors(t *testing.T) {
	for _, in := range []string{"", "[]", `{"type":"bundle"}`, `{"objects":[{"type":1}]}`, `{"objects":[`} {
		if _, err := Read(strings.NewReader(in)); err == nil {
			t.Errorf("Read(%q): no error", in)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	p := BundlePath(corpustest.Dir(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(p); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzNormalizeTag(f *testing.F) {
	for _, s := range []string{"attack.command_and_control", "attack.t1558.004", "CommandAndControl", "TA0011", "cve.2021-1", "attack.", "T1", "ÀbcDéf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		k, id := NormalizeTag(tag)
		if k == KindNone && id != "" {
			t.Errorf("NormalizeTag(%q) = none with id %q", tag, id)
		}
		if k == KindTechnique {
			if k2, id2 := NormalizeTag(id); k2 != k || id2 != id {
				t.Errorf("not idempotent: %q -> %q -> %q", tag, id, id2)
			}
		}
	})
}
