package yaral

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Parser reads YARA-L 2.0 rule files (.yaral; several rules per file allowed).
type Parser struct{}

// Language is rule.YaraL.
func (Parser) Language() rule.Language { return rule.YaraL }

var ruleHeadRe = regexp.MustCompile(`^rule\s+[A-Za-z_][A-Za-z0-9_]*\s*\{`)

// Detect accepts .yaral files, and other files that begin (after comments) with a
// rule header and have an events section (YARA file rules share the `rule name {`
// header but have none). It looks at the head of the file only, so binary logs and
// large data files cost nothing.
func (Parser) Detect(p string, data []byte) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".yaral", ".yaral2":
		return true
	case ".yaml", ".yml", ".md", ".toml", ".json", ".kql", ".spl", ".yar", ".yara", ".evtx", ".xml", ".csv":
		return false
	}
	head := skipComments(data[:min(len(data), 64<<10)])
	return ruleHeadRe.Match(head) && bytes.Contains(data, []byte("events:"))
}

// skipComments drops leading white space and // and /* */ comments.
func skipComments(b []byte) []byte {
	for {
		b = bytes.TrimLeft(b, " \t\r\n\f\v")
		switch {
		case bytes.HasPrefix(b, []byte("//")):
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return nil
			}
			b = b[i+1:]
		case bytes.HasPrefix(b, []byte("/*")):
			i := bytes.Index(b[2:], []byte("*/"))
			if i < 0 {
				return nil
			}
			b = b[i+4:]
		default:
			return b
		}
	}
}

// Parse reads every rule of data.
func (Parser) Parse(src rule.Source, data []byte) (rules []*rule.Rule, diags []rule.Diagnostic) {
	defer func() {
		// Written not to panic; this keeps an ingest batch alive if it ever does.
		if v := recover(); v != nil {
			rules = nil
			diags = append(diags, rule.Diagnostic{Severity: rule.Error, Code: "yaral/internal", Pos: rule.Pos{File: src.Path},
				Message: fmt.Sprintf("internal error while parsing: %v", v)})
		}
	}()
	text := string(data)
	toks := lex(text)
	units, fileDiags := splitRules(text, toks)
	for i := range fileDiags {
		fileDiags[i].Pos.File = src.Path
	}
	diags = fileDiags
	for i, u := range units {
		r := build(src, text, u)
		r.Source.Index = i
		if r.ID == "" {
			r.ID = rule.StableID(src.Repo, src.Path, i)
		}
		setFile(r, src.Path)
		rules = append(rules, r)
	}
	if len(rules) == 0 && len(diags) == 0 {
		diags = append(diags, rule.Diagnostic{Severity: rule.Error, Code: "yaral/no-rule", Pos: rule.Pos{File: src.Path, Line: 1, Col: 1},
			Message: "no `rule name { ... }` found in the file"})
	}
	return rules, diags
}

// unit is one rule's tokens: the header, the body between the braces and its sections.
type unit struct {
	name       string
	nameTok    token
	start, end int // byte range of the rule text, header to closing brace
	sections   map[string]*section
	order      []string
	diags      []rule.Diagnostic
}

type section struct {
	name string
	head token   // the section keyword
	toks []token // body tokens, followed by an EOF token at the section's end
}

var sectionNames = map[string]bool{"meta": true, "events": true, "match": true, "outcome": true, "condition": true, "options": true}

// splitRules finds each `rule name { ... }` by brace depth and cuts its body into
// sections. Text outside rules other than comments is reported once per stretch.
func splitRules(src string, toks []token) ([]*unit, []rule.Diagnostic) {
	var units []*unit
	var diags []rule.Diagnostic
	stray := false
	for i := 0; i < len(toks) && toks[i].kind != tEOF; {
		t := toks[i]
		if !(t.kind == tIdent && t.text == "rule" && toks[i+1].kind == tIdent && toks[i+2].kind == tPunct && toks[i+2].text == "{") {
			if !stray {
				diags = append(diags, rule.Diagnostic{Severity: rule.Warning, Code: "yaral/stray-text", Pos: rule.Pos{Line: t.line, Col: t.col},
					Message: fmt.Sprintf("text outside any rule ignored, starting at %q", t.text)})
				stray = true
			}
			i++
			continue
		}
		stray = false
		u := &unit{name: toks[i+1].text, nameTok: toks[i+1], start: t.start, sections: map[string]*section{}}
		depth := 0
		j := i + 2
		var cur *section
		var pre []token
		curStart := 0
		for ; toks[j].kind != tEOF; j++ {
			tj := toks[j]
			if tj.kind == tPunct && tj.text == "{" {
				depth++
				if depth == 1 {
					continue
				}
			}
			if tj.kind == tPunct && tj.text == "}" {
				depth--
				if depth == 0 {
					break
				}
			}
			if depth == 1 && tj.kind == tIdent && sectionNames[tj.text] && toks[j+1].kind == tPunct && toks[j+1].text == ":" {
				if cur != nil {
					cur.toks = sectionToks(toks[curStart:j], tj)
				}
				if old, dup := u.sections[tj.text]; dup {
					u.diags = append(u.diags, rule.Diagnostic{Severity: rule.Error, Code: "yaral/section/duplicate", Pos: rule.Pos{Line: tj.line, Col: tj.col},
						Message: fmt.Sprintf("section %s: repeated (first at line %d); the later one is used", tj.text, old.head.line)})
				} else {
					u.order = append(u.order, tj.text)
				}
				cur = &section{name: tj.text, head: tj}
				u.sections[tj.text] = cur
				j++
				curStart = j + 1
				continue
			}
			if cur == nil {
				pre = append(pre, tj)
			}
		}
		end := toks[j]
		if cur != nil {
			cur.toks = sectionToks(toks[curStart:j], end)
		}
		if end.kind == tEOF {
			u.diags = append(u.diags, rule.Diagnostic{Severity: rule.Error, Code: "yaral/unterminated", Pos: rule.Pos{Line: t.line, Col: t.col},
				Message: fmt.Sprintf("rule %s: no closing } before the end of the file", u.name)})
			u.end = len(src)
		} else {
			u.end = end.end
			j++
		}
		if len(pre) > 0 {
			u.diags = append(u.diags, rule.Diagnostic{Severity: rule.Warning, Code: "yaral/stray-text", Pos: rule.Pos{Line: pre[0].line, Col: pre[0].col},
				Message: fmt.Sprintf("rule %s: text before the first section ignored", u.name)})
		}
		units = append(units, u)
		i = j
	}
	return units, diags
}

// sectionToks copies a section's tokens and ends them with EOF at the next header
// (or the rule's closing brace).
func sectionToks(body []token, next token) []token {
	out := make([]token, 0, len(body)+4)
	for _, t := range body {
		if t.kind != tEOF {
			out = append(out, t)
		}
	}
	return padEOF(out, token{kind: tEOF, start: next.start, end: next.start, line: next.line, col: next.col, nl: true})
}

// setFile stamps the file path on every position of r.
func setFile(r *rule.Rule, file string) {
	for j := range r.Diagnostics {
		r.Diagnostics[j].Pos.File = file
	}
	stamp := func(n *rule.Node) {
		rule.Walk(n, func(nd *rule.Node, _ bool) bool {
			nd.Pos.File = file
			if nd.Pred != nil {
				nd.Pred.Pos.File = file
			}
			return true
		})
	}
	stamp(r.Root)
	for j := range r.Stages {
		r.Stages[j].Pos.File = file
		stamp(r.Stages[j].Node)
	}
}

// meta reads `key = value` pairs into the rule.
func (b *builder) meta(s *section) {
	toks := s.toks
	for i := 0; i < len(toks) && toks[i].kind != tEOF; {
		k := toks[i]
		if k.kind != tIdent || toks[i+1].kind != tPunct || toks[i+1].text != "=" {
			b.errAt(k, "yaral/meta/syntax", "meta: expected key = value, found %q", k.text)
			// Resynchronize at the next line.
			for i++; toks[i].kind != tEOF && !toks[i].nl; i++ {
			}
			continue
		}
		v := toks[i+2]
		i += 3
		switch v.kind {
		case tString, tRaw, tNumber, tIdent:
		default:
			b.errAt(v, "yaral/meta/value", "meta %s: expected a string, number or boolean, found %q", k.text, tokText(v))
			for ; toks[i].kind != tEOF && !toks[i].nl; i++ {
			}
			continue
		}
		if v.bad != "" {
			b.errAt(v, "yaral/meta/value", "meta %s: %s", k.text, v.bad)
		}
		b.metaKV(k.text, strings.TrimSpace(v.text))
	}
}

var (
	techRe   = regexp.MustCompile(`(?i)\bT(\d{4})(?:[./](\d{3}))?\b`)
	tacticRe = regexp.MustCompile(`\bTA00\d\d\b`)
)

var tacticIDs = map[string]string{
	"TA0043": "reconnaissance", "TA0042": "resource-development", "TA0001": "initial-access", "TA0002": "execution",
	"TA0003": "persistence", "TA0004": "privilege-escalation", "TA0005": "defense-evasion", "TA0006": "credential-access",
	"TA0007": "discovery", "TA0008": "lateral-movement", "TA0009": "collection", "TA0011": "command-and-control",
	"TA0010": "exfiltration", "TA0040": "impact",
}

var knownTactics = map[string]bool{}

var tacticReplacer = strings.NewReplacer("_", "-", " ", "-", "&", "and")

func init() {
	for _, v := range tacticIDs {
		knownTactics[v] = true
	}
}

// normTactic turns a tactic spelling (command_and_control, Command and Control,
// Defense Evasion, TA0005) into the ATT&CK short name, or "" when it is none.
func normTactic(s string) string {
	s = strings.TrimSpace(s)
	if t, ok := tacticIDs[strings.ToUpper(s)]; ok {
		return t
	}
	s = tacticReplacer.Replace(strings.ToLower(s))
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	s = strings.Trim(s, "-")
	if knownTactics[s] {
		return s
	}
	return ""
}

func (b *builder) metaKV(key, val string) {
	r := b.r
	lk := strings.ToLower(key)
	switch lk {
	case "rule_name":
		r.Title = val
		return
	case "author":
		r.Authors = append(r.Authors, val)
		return
	case "description":
		r.Description = val
		return
	case "severity":
		r.Severity = strings.ToLower(val)
		if r.Severity == "info" {
			// Sigma's level name, which pages and facets use.
			r.Severity = "informational"
		}
		return
	case "reference", "references":
		for _, ref := range strings.Split(val, ", ") {
			if ref = strings.TrimSpace(ref); ref != "" {
				r.References = append(r.References, ref)
			}
		}
		return
	case "created", "date":
		if r.Date == "" {
			r.Date = val
		}
		return
	case "modified", "updated", "last_modified":
		r.Modified = val
		return
	case "rule_id", "id":
		r.ID = val
		return
	case "status":
		r.Status = strings.ToLower(val)
		return
	case "sigma_uuid":
		// Conversions from Sigma name their original; the catalog links the two.
		r.Related = append(r.Related, rule.Related{ID: val, Type: "derived"})
	case "false_positives", "falsepositives":
		r.FalsePositives = append(r.FalsePositives, val)
		return
	case "product":
		b.product = strings.ToLower(val)
	case "service":
		r.LogSource.Service = strings.ToLower(val)
	case "category":
		b.category = strings.ToLower(val)
	case "platform":
		b.platform = val
	case "data_source":
		if val != "" {
			r.LogSource.DataSources = append(r.LogSource.DataSources, val)
		}
	case "type":
		r.Type = val
	case "tags":
		for _, t := range strings.Split(val, ",") {
			if t = strings.TrimSpace(t); t != "" {
				r.Tags = append(r.Tags, t)
			}
		}
	}
	if strings.Contains(lk, "mitre") || strings.Contains(lk, "technique") || strings.Contains(lk, "tactic") || lk == "tags" {
		b.attack(lk, val)
	}
	if r.Extra == nil {
		r.Extra = map[string]string{}
	}
	if old, ok := r.Extra[key]; ok {
		val = old + "\n" + val
	}
	r.Extra[key] = val
}

// attack collects technique and tactic ids and names from an ATT&CK-ish meta value
// ("defense_evasion, persistence, t1197, s0190"; "Defense Evasion, Persistence";
// a technique URL .../T1078/004/).
func (b *builder) attack(key, val string) {
	r := b.r
	// Technique names (mitre_attack_technique = "Valid Accounts: Cloud Accounts") are
	// not ids; only the id-shaped parts count.
	for _, m := range techRe.FindAllStringSubmatch(val, -1) {
		id := "T" + m[1]
		if m[2] != "" {
			id += "." + m[2]
		}
		r.Techniques = appendUniq(r.Techniques, id)
	}
	for _, id := range tacticRe.FindAllString(val, -1) {
		r.Tactics = appendUniq(r.Tactics, tacticIDs[id])
	}
	if strings.Contains(key, "technique") || strings.Contains(key, "url") {
		return
	}
	for _, part := range strings.Split(val, ",") {
		if t := normTactic(part); t != "" {
			r.Tactics = appendUniq(r.Tactics, t)
		}
	}
}

func appendUniq(list []string, s string) []string {
	if s == "" {
		return list
	}
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
