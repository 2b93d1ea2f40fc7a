package fieldmap

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

func TestEmbeddedMapParses(t *testing.T) {
	tsv, err := embeddedTSV()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(tsv)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) < 150 {
		t.Errorf("embedded map has %d rows, want the full derived table", len(m.Entries))
	}
	for _, e := range m.Entries {
		if e.Source == "" {
			t.Errorf("row %s/%s cites no source", e.Context, e.Field)
		}
	}
}

func TestParseRejectsShortRows(t *testing.T) {
	if _, err := Parse("context\tfield\tcanonical\nonly-one-column\n"); err == nil {
		t.Fatal("a row with one column was accepted")
	}
}

func TestLookup(t *testing.T) {
	m := Default()
	tests := []struct {
		ctx       []string
		field     string
		canonical string
		nameOnly  bool
		known     bool
	}{
		{nil, "NewProcessName", "Image", false, true},                         // 4688 name, unique everywhere
		{nil, "ParentProcessName", "ParentImage", false, true},                // 4688 name
		{[]string{"DeviceProcessEvents"}, "FolderPath", "Image", false, true}, // process table
		{[]string{"DeviceFileEvents"}, "FolderPath", "TargetFilename", false, true},
		{[]string{"DeviceProcessEvents"}, "FileName", "Image", true, true},
		{[]string{"DeviceProcessEvents"}, "InitiatingProcessFolderPath", "ParentImage", false, true},
		{[]string{"DeviceImageLoadEvents"}, "InitiatingProcessFolderPath", "Image", false, true},
		{nil, "Processes.process_name", "Image", true, true}, // CIM dataset prefix
		{nil, "processes.PROCESS", "CommandLine", false, true},
		{[]string{"registry_set"}, "TargetObject", "TargetObject", false, true}, // registry_* glob context
		{nil, "FolderPath", "", false, false},                                   // ambiguous without a table
		{nil, "SomethingElse", "", false, false},
	}
	for _, tc := range tests {
		e, ok := m.Lookup(tc.ctx, tc.field)
		if ok != tc.known || ok && (e.Canonical != tc.canonical || e.NameOnly != tc.nameOnly) {
			t.Errorf("Lookup(%v, %q) = %+v, %v; want %q nameOnly=%v known=%v", tc.ctx, tc.field, e, ok, tc.canonical, tc.nameOnly, tc.known)
		}
	}
}

func TestIndicatorKeysAgreeAcrossLanguages(t *testing.T) {
	m := Default()
	_, sigmaKey := m.IndicatorKey(nil, "Image", rule.EndsW, nil, `\BitsAdmin.exe`)
	for _, tc := range []struct {
		ctx   []string
		field string
		kind  rule.Kind
		value string
	}{
		{nil, "NewProcessName", rule.EndsW, `\bitsadmin.exe`},
		{[]string{"DeviceProcessEvents"}, "FileName", rule.Eq, "bitsadmin.exe"},
		{[]string{"DeviceProcessEvents"}, "FolderPath", rule.EndsW, `\bitsadmin.EXE`},
		{nil, "Processes.process_name", rule.Eq, "bitsadmin.exe"},
	} {
		if _, k := m.IndicatorKey(tc.ctx, tc.field, tc.kind, nil, tc.value); k != sigmaKey {
			t.Errorf("%s %s %q: key %q, want Sigma's %q", tc.field, tc.kind, tc.value, k, sigmaKey)
		}
	}
	// No trimming, and case-sensitive tests keep their case.
	if _, k := m.IndicatorKey(nil, "CommandLine", rule.Match, nil, " /transfer "); k == Key("CommandLine", rule.Match, nil, "/transfer", false) {
		t.Error("padded value collapsed onto the unpadded one")
	}
	if _, k := m.IndicatorKey(nil, "CommandLine", rule.Match, []string{rule.TCased}, "/Transfer"); k == Key("CommandLine", rule.Match, nil, "/transfer", false) {
		t.Error("cased value was folded")
	}
}

func TestIndicatorsOfARule(t *testing.T) {
	sel := rule.And(
		rule.Leaf(&rule.Pred{Field: "NewProcessName", Kind: rule.EndsW, Values: []rule.Value{{S: `\bitsadmin.exe`}}}),
		rule.Leaf(&rule.Pred{Field: "CommandLine", Kind: rule.Match, Values: []rule.Value{{S: "/transfer"}, {S: "/download"}, {S: "/TRANSFER"}}}),
	)
	filter := rule.Not(rule.Leaf(&rule.Pred{Field: "ParentImage", Kind: rule.EndsW, Values: []rule.Value{{S: `\svchost.exe`}}}))
	r := &rule.Rule{
		Root: rule.And(sel, filter),
		Stages: []rule.Stage{
			{Index: 0, Kind: rule.StageCondition},
			{Index: 1, Kind: rule.StageSelection, Node: sel},
			{Index: 2, Kind: rule.StageSelection, Negated: true, Node: filter},
		},
	}
	got := Default().Indicators(r)
	want := []struct {
		field, canonical, value string
		negated                 bool
		stage                   int
	}{
		{"NewProcessName", "Image", `\bitsadmin.exe`, false, 1},
		{"CommandLine", "CommandLine", "/transfer", false, 1},
		{"CommandLine", "CommandLine", "/download", false, 1},
		// "/TRANSFER" folds onto "/transfer" and is dropped as a duplicate.
		{"ParentImage", "ParentImage", `\svchost.exe`, true, 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d indicators %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Field != w.field || g.Canonical != w.canonical || g.Value != w.value || g.Negated != w.negated || g.Stage != w.stage {
			t.Errorf("indicator %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestECSKeysAgreeWithSigma: Elastic rules name fields in ECS; in the contexts an Elastic
// rule gets (fieldmap.Contexts), their tests must count with the Sigma ones.
func TestECSKeysAgreeWithSigma(t *testing.T) {
	m := Default()
	proc := Contexts(&rule.Rule{Language: rule.Elastic, LogSource: rule.LogSource{Category: "process_creation"}})
	file := Contexts(&rule.Rule{Language: rule.Elastic, LogSource: rule.LogSource{Category: "file_event"}})
	none := Contexts(&rule.Rule{Language: rule.Elastic})
	for _, tc := range []struct {
		ctx        []string
		field      string
		kind       rule.Kind
		transforms []string
		value      string
		sigmaField string
		sigmaKind  rule.Kind
		sigmaValue string
	}{
		{proc, "process.name", rule.Eq, nil, "BITSADMIN.exe", "Image", rule.EndsW, `\bitsadmin.exe`},
		{none, "process.name", rule.Eq, nil, "bitsadmin.exe", "Image", rule.EndsW, `\bitsadmin.exe`},
		{proc, "process.executable", rule.EndsW, nil, `\bitsadmin.exe`, "Image", rule.EndsW, `\bitsadmin.exe`},
		{proc, "process.command_line", rule.Match, nil, "/transfer", "CommandLine", rule.Match, "/transfer"},
		{proc, "process.parent.name", rule.Eq, nil, "winword.exe", "ParentImage", rule.EndsW, `\winword.exe`},
		{proc, "process.pe.original_file_name", rule.Eq, nil, "bitsadmin.exe", "OriginalFileName", rule.Eq, "bitsadmin.exe"},
		{file, "file.path", rule.StartsW, nil, `C:\Windows\Temp\`, "TargetFilename", rule.StartsW, `C:\Windows\Temp\`},
		{file, "file.name", rule.Eq, nil, "x.dll", "TargetFilename", rule.EndsW, `\x.dll`},
		{none, "winlog.event_id", rule.Eq, nil, "4688", "EventID", rule.Eq, "4688"},
		{none, "dns.question.name", rule.EndsW, nil, ".onion", "QueryName", rule.EndsW, ".onion"},
		{none, "winlog.event_data.ServiceFileName", rule.Match, nil, "cmd.exe", "ServiceFileName", rule.Match, "cmd.exe"},
	} {
		_, want := m.IndicatorKey(nil, tc.sigmaField, tc.sigmaKind, nil, tc.sigmaValue)
		if _, got := m.IndicatorKey(tc.ctx, tc.field, tc.kind, tc.transforms, tc.value); got != want {
			t.Errorf("%s %s %q in %v: key %q, want %q", tc.field, tc.kind, tc.value, tc.ctx, got, want)
		}
	}
	// process.args is an array: its elements are tokens, so `process.args : "/transfer"`
	// (transform elem) must not count as CommandLine contains /transfer.
	_, sub := m.IndicatorKey(nil, "CommandLine", rule.Match, nil, "/transfer")
	if _, k := m.IndicatorKey(proc, "process.args", rule.Eq, []string{rule.TElem}, "/transfer"); k == sub {
		t.Error("process.args element equality counted as a CommandLine substring")
	}
}

// Issue 11: regex values were folded for indicators, so `\s-H\s` became `\s-h\s` (a
// different test) and `\S` would become `\s` (the opposite class).
func TestRegexKeysNeverFolded(t *testing.T) {
	m := Default()
	tests := []struct {
		name       string
		a, b       string
		ta, tb     []string
		wantSameAs bool
	}{
		{"capital H stays", `\s-H\s`, `\s-h\s`, nil, nil, false},
		{"non-space class stays", `\S+\.exe`, `\s+\.exe`, nil, nil, false},
		{"same regex same key", `\s-H\s`, `\s-H\s`, nil, nil, true},
		{"i flag is part of the key", `\s-H\s`, `\s-H\s`, []string{rule.TIgnoreCase}, nil, false},
	}
	for _, tc := range tests {
		_, ka := m.IndicatorKey(nil, "CommandLine", rule.Regex, tc.ta, tc.a)
		_, kb := m.IndicatorKey(nil, "CommandLine", rule.Regex, tc.tb, tc.b)
		if (ka == kb) != tc.wantSameAs {
			t.Errorf("%s: keys %q and %q, same = %v, want %v", tc.name, ka, kb, ka == kb, tc.wantSameAs)
		}
		if !strings.Contains(ka, tc.a) {
			t.Errorf("%s: key %q lost the regex %q as written", tc.name, ka, tc.a)
		}
	}
}

// A KQL `has "/transfer"` and a Sigma `CommandLine|contains: /transfer` test the same
// string: one indicator (relations keep them apart; see package neighbors).
func TestTermKindsCountAsContains(t *testing.T) {
	m := Default()
	_, sigma := m.IndicatorKey([]string{"process_creation"}, "CommandLine", rule.Match, nil, "/transfer")
	for _, k := range []rule.Kind{rule.Term, rule.TermPrefix, rule.TermSuffix} {
		if _, kq := m.IndicatorKey([]string{"DeviceProcessEvents"}, "ProcessCommandLine", k, nil, "/Transfer"); kq != sigma {
			t.Errorf("%s: key %q, want Sigma's %q", k, kq, sigma)
		}
	}
	if _, kq := m.IndicatorKey([]string{"DeviceProcessEvents"}, "ProcessCommandLine", rule.Term, []string{rule.TCased}, "/Transfer"); kq == sigma {
		t.Error("a cased term test counted with the folded contains")
	}
}

// KQL `EventID in (4624)` and Sigma `EventID: 4624` are one indicator (issue 11).
func TestInCountsAsEq(t *testing.T) {
	m := Default()
	_, eq := m.IndicatorKey(nil, "EventID", rule.Eq, nil, "4624")
	if _, in := m.IndicatorKey([]string{"SecurityEvent"}, "EventID", rule.In, nil, "4624"); in != eq {
		t.Errorf("in key %q, eq key %q", in, eq)
	}
}
