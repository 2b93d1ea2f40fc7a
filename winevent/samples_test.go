package winevent

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

// TestSamples: the regression logs give real records of a few events; their level,
// task and opcode are read from the record, and events without one have no sample.
func TestSamples(t *testing.T) {
	c, err := Load(Dir(corpustest.Dir(t)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		provider string
		id       int
		want     bool
		contains string
	}{
		{"Microsoft-Windows-Sysmon", 1, true, `"EventID": 1`},
		{"microsoft-windows-sysmon", 11, true, `"TargetFilename"`},
		{"Microsoft-Windows-Security-Auditing", 4648, true, `"EventID": 4648`},
		{"Microsoft-Windows-Sysmon", 25, false, ""},
		{"Microsoft-Windows-Security-Auditing", 4688, false, ""},
	}
	for _, tt := range tests {
		s, ok := c.Sample(tt.provider, tt.id)
		if ok != tt.want {
			t.Errorf("%s %d: sample %v, want %v", tt.provider, tt.id, ok, tt.want)
			continue
		}
		if !ok {
			continue
		}
		if s.EventID != tt.id || !strings.Contains(s.JSON, tt.contains) || !strings.HasSuffix(s.Path, ".json") {
			t.Errorf("%s %d: id %d, path %q, json lacks %q", tt.provider, tt.id, s.EventID, s.Path, tt.contains)
		}
	}
	// Sysmon 1 records are written at level 4 (Information), as the manifest says.
	if s, _ := c.Sample("Microsoft-Windows-Sysmon", 1); s == nil || s.Level != 4 || LevelName(s.Level) != "Information" {
		t.Errorf("Sysmon 1 level: %+v", s)
	}
}

func TestNumber(t *testing.T) {
	for in, want := range map[string]int{`4688`: 4688, `"4688"`: 4688, `{"#text": 7045, "#attributes": {}}`: 7045} {
		if got, ok := number([]byte(in)); !ok || got != want {
			t.Errorf("number(%s) = %d, %v", in, got, ok)
		}
	}
	if _, ok := number([]byte(`{"x":1}`)); ok {
		t.Error("an object without #text is not a number")
	}
}
