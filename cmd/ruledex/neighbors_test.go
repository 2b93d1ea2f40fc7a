package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCLINeighbors(t *testing.T) {
	cliSetup(t)
	out, stderr, code := ruledex(t, "neighbors", "New PowerShell Instance Created", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Equivalent, Stricter, Broader []struct {
			ID, Title, Language, URL, Basis, Difference string
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	found := false
	for _, n := range got.Stricter {
		if n.Title == "Alternate PowerShell Hosts Pipe" {
			found = true
			if n.Difference != "adds 2 filters" || n.Language != "sigma" || !strings.HasPrefix(n.URL, "/rules/sigma/") || n.Basis != "same-telemetry" {
				t.Errorf("stricter item = %+v", n)
			}
		}
	}
	if !found {
		t.Errorf("stricter alternatives lack Alternate PowerShell Hosts Pipe: %+v", got.Stricter)
	}

	out, _, code = ruledex(t, "neighbors", "Alternate PowerShell Hosts Pipe")
	if code != 0 || !strings.Contains(out, "New PowerShell Instance Created") || !strings.Contains(out, "drops 2 filters this rule applies") {
		t.Errorf("text neighbors (exit %d) lack the broader rule:\n%s", code, out)
	}
	if _, _, code := ruledex(t, "neighbors", "no rule has this title at all"); code != exitNoMatch {
		t.Errorf("unknown rule: exit %d, want %d", code, exitNoMatch)
	}
}

func TestCLIOverlap(t *testing.T) {
	cliSetup(t)
	out, stderr, code := ruledex(t, "overlap", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Rules         int                       `json:"rules"`
		SharedClasses int                       `json:"shared_classes"`
		StricterPairs int                       `json:"stricter_pairs"`
		SizeHistogram map[string]int            `json:"size_histogram"`
		CrossLanguage int                       `json:"cross_language_relations"`
		ByPair        map[string]map[string]int `json:"by_language_pair"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.SharedClasses == 0 || rep.StricterPairs == 0 {
		t.Errorf("overlap found no duplicates or chains in the Sigma corpus: %+v", rep)
	}
	total := 0
	for size, n := range rep.SizeHistogram {
		var s int
		json.Unmarshal([]byte(size), &s)
		total += s * n
	}
	if total != rep.Rules {
		t.Errorf("class sizes add up to %d rules, report says %d", total, rep.Rules)
	}
	// by_language_pair counts each related pair once under its basis; its cross-language
	// rows add up to cross_language_relations.
	cross, pairs := 0, 0
	for k, m := range rep.ByPair {
		langs := strings.Split(k, " ⇄ ")
		if len(langs) != 2 {
			t.Errorf("language pair key %q", k)
			continue
		}
		for basis, n := range m {
			if basis != "same-telemetry" && basis != "field-map" {
				t.Errorf("%s: basis %q", k, basis)
			}
			pairs += n
			if langs[0] != langs[1] {
				cross += n
			}
		}
	}
	if cross != rep.CrossLanguage {
		t.Errorf("by_language_pair has %d cross-language pairs, cross_language_relations says %d", cross, rep.CrossLanguage)
	}
	if pairs == 0 {
		t.Error("by_language_pair is empty")
	}
}

func TestCLIShowHasNeighborsSection(t *testing.T) {
	cliSetup(t)
	out, stderr, code := ruledex(t, "show", "Alternate PowerShell Hosts Pipe")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	i := strings.Index(out, "\nNeighbors\n")
	if i < 0 || !strings.Contains(out[i:], "Broader alternatives") || !strings.Contains(out[i:], "New PowerShell Instance Created") {
		t.Errorf("show lacks the Neighbors section with the broader rule:\n%s", out)
	}
	if j := strings.Index(out, "\nIndicators\n"); j > i {
		t.Errorf("Neighbors comes before Indicators; REFERENCE §1 puts it after")
	}
}
