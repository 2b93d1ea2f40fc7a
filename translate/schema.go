package translate

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// schema is one way of writing a target: its field names and its file layout.
type schema struct {
	name     string
	target   Target
	ext      string
	native   bool // fields are the canonical (Sigma) names themselves
	contexts func(c catInfo) []string
	write    func(w *writer, src *prepared) (string, error)
	file     func(w *writer, r *rule.Rule, src *prepared, q string) string
}

// Schemas lists the schemas of each target, the default first.
var Schemas = map[Target][]string{
	Sigma: {"sigmahq"},
	KQL:   {"defender", "sentinel"},
	SPL:   {"cim"},
	EQL:   {"ecs"},
	ESQL:  {"ecs"},
	YaraL: {"udm"},
}

// SchemaNames checks that name ("" for the default) is a schema of t and returns t's
// schema names, default first.
func SchemaNames(t Target, name string) ([]string, error) {
	if _, err := schemaFor(t, name); err != nil {
		return nil, err
	}
	return Schemas[t], nil
}

func schemaFor(t Target, name string) (*schema, error) {
	names, ok := Schemas[t]
	if !ok {
		return nil, fmt.Errorf("unknown target %q (want one of sigma, kql, spl, eql, esql, yaral)", t)
	}
	if name == "" {
		name = names[0]
	}
	for _, s := range allSchemas {
		if s.target == t && s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown schema %q for %s (want one of %s)", name, t.Display(), strings.Join(names, ", "))
}

var allSchemas = []*schema{
	{name: "sigmahq", target: Sigma, ext: ".yml", native: true, write: writeSigma, file: sigmaFile},
	{name: "defender", target: KQL, ext: ".kql", write: writeKQL, file: kqlFile,
		contexts: func(c catInfo) []string { return []string{c.kqlTable} }},
	{name: "sentinel", target: KQL, ext: ".kql", write: writeKQL, file: kqlFile,
		contexts: func(c catInfo) []string { return []string{"SecurityEvent"} }},
	{name: "cim", target: SPL, ext: ".yml", write: writeSPL, file: splFile,
		contexts: func(c catInfo) []string { return []string{c.cimDataset} }},
	{name: "ecs", target: EQL, ext: ".toml", write: writeEQL, file: elasticFile,
		contexts: ecsContexts},
	{name: "ecs", target: ESQL, ext: ".toml", write: writeESQL, file: elasticFile,
		contexts: ecsContexts},
	{name: "udm", target: YaraL, ext: ".yaral", write: writeYaraL, file: yaralFile,
		contexts: udmContexts},
}

func ecsContexts(c catInfo) []string { return vocabContexts("ecs", c) }
func udmContexts(c catInfo) []string { return vocabContexts("udm", c) }

func vocabContexts(vocab string, c catInfo) []string {
	var out []string
	for name, ci := range categories {
		if ci.kqlTable == c.kqlTable {
			out = append(out, vocab+"/"+name)
		}
	}
	return append(out, vocab)
}

// logSource is the log source the target's parser gives a translation of category cat,
// so columns can be checked in the contexts they will be read in.
func (s *schema) logSource(c catInfo, cat string) rule.LogSource {
	switch s.target {
	case KQL:
		if s.name == "sentinel" {
			return rule.LogSource{Tables: []string{"SecurityEvent"}}
		}
		return rule.LogSource{Tables: []string{c.kqlTable}}
	case SPL:
		// The columns are written with their dataset prefix (Processes.process_name),
		// which the field map reads in the dataset's context.
		return rule.LogSource{DataModels: []string{c.cimDataset}}
	}
	return rule.LogSource{Product: "windows", Category: cat}
}

// header lines every translated file carries, as comments of the target.
func provenance(r *rule.Rule) []string {
	out := []string{
		"Translated by ruledex from the " + r.Language.Display() + " rule " + quoteIfNeeded(r.Title) + " (" + r.ID + ")",
	}
	if r.Source.UpstreamURL != "" {
		out = append(out, "Original: "+r.Source.UpstreamURL)
	} else if r.Source.Path != "" {
		out = append(out, "Original: "+r.Source.Repo+"/"+r.Source.Path)
	}
	return out
}

func quoteIfNeeded(s string) string { return `"` + oneLine(s) + `"` }

// oneLine collapses whitespace and strips control characters, for comments and
// single-line metadata: rule text is untrusted and must not break the file's syntax.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// slug makes an identifier from a title (YARA-L rule names, file names).
func slug(s string) string {
	var b strings.Builder
	us := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			us = false
		} else if !us && b.Len() > 0 {
			b.WriteByte('_')
			us = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	out := strings.TrimRight(b.String(), "_")
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "rule_" + out
	}
	return out
}
