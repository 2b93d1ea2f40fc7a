package web

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// irParser ingests testdata/ir: rules of languages whose parsers are not on this branch,
// as IR, completed with the text of the real rule they describe (see testdata/ir/README.md).
type irParser struct{ lang rule.Language }

// irCorpus is where each language's real rules are, under the corpus.
var irCorpus = map[rule.Language]string{rule.Elastic: "elastic/detection-rules", rule.YaraL: "yaral/chronicle"}

func (p irParser) Language() rule.Language { return p.lang }

func (p irParser) Detect(path string, _ []byte) bool {
	return strings.HasSuffix(path, "."+string(p.lang)+".ir.json")
}

var (
	tomlTriple  = regexp.MustCompile(`(?s)\n(description|note|setup) = """(.*?)"""`)
	tomlQuery   = regexp.MustCompile(`(?s)\nquery = '''(.*?)'''`)
	yaralDesc   = regexp.MustCompile(`\n\s*description = "([^"]*)"`)
	yaralEvents = regexp.MustCompile(`(?s)\n  events:\n(.*?)\n\n  match:`)
)

func (p irParser) Parse(src rule.Source, data []byte) ([]*rule.Rule, []rule.Diagnostic) {
	var r rule.Rule
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "ir-json", Message: err.Error(), Pos: rule.Pos{File: src.Path}}}
	}
	body, err := os.ReadFile(filepath.Join(corpusDir, irCorpus[p.lang], filepath.FromSlash(r.Source.Path)))
	if err != nil {
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "ir-corpus", Message: err.Error(), Pos: rule.Pos{File: src.Path}}}
	}
	r.Body = string(body)
	switch p.lang {
	case rule.Elastic:
		r.BodyLang = "toml"
		for _, m := range tomlTriple.FindAllStringSubmatch(r.Body, -1) {
			switch m[1] {
			case "description":
				r.Description = strings.TrimSpace(m[2])
			case "note":
				r.Docs = append(r.Docs, rule.Doc{Title: "Investigation guide", Markdown: m[2]})
			case "setup":
				r.Docs = append(r.Docs, rule.Doc{Title: "Setup", Markdown: m[2]})
			}
		}
		if m := tomlQuery.FindStringSubmatch(r.Body); m != nil {
			r.Condition = strings.TrimSpace(m[1])
		}
	case rule.YaraL:
		r.BodyLang = "yaral"
		if m := yaralDesc.FindStringSubmatch(r.Body); m != nil {
			r.Description = m[1]
		}
		if m := yaralEvents.FindStringSubmatch(r.Body); m != nil {
			r.Condition = strings.TrimSpace(m[1])
		}
	}
	for i := range r.Stages {
		r.Stages[i].Text = r.Condition
	}
	return []*rule.Rule{&r}, nil
}
