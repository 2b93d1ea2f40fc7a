package kql

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ruledex/ruledex/rule"
)

// unit is one query text found in a file, before it becomes a rule: its text, where it
// sits in the file and the metadata the surrounding format gives it.
type unit struct {
	text  string // the KQL text parsed
	pos   posMap
	line  int    // first line in the file
	label string // variant label from a heading or comment ("Sentinel", "Defender XDR")
	// split: the text may hold several queries (raw .kql files, Markdown fences).
	split bool
}

// built is one query turned into a rule, with what pairing needs.
type built struct {
	r     *rule.Rule
	label string
	norm  string // normalized body for variant pairing
	ctx   string // surrounding prose (Markdown), to title one query among several
}

// buildRules parses one unit into rules (one per query when split).
func buildRules(src rule.Source, u unit) []*built {
	stmts, errs := Parse(u.text)
	qs := splitQueries(stmts, u.split)
	if len(qs) == 0 {
		return nil
	}
	env := map[string]*Let{}
	var out []*built
	prevEnd := 0
	for qi, q := range qs {
		lw := &lowerer{src: u.text, env: env, pos: u.pos, file: src.Path}
		low := lw.lower(q)
		start := prevEnd
		end := q.end
		if qi == len(qs)-1 {
			end = len(u.text)
		}
		// The statement's trailing `;` belongs to it.
		for end < len(u.text) && end > 0 && u.text[end-1] != ';' && strings.HasPrefix(strings.TrimLeft(u.text[end:], " \t\r\n"), ";") {
			end += strings.Index(u.text[end:], ";") + 1
		}
		if !u.split {
			start, end = 0, len(u.text)
		}
		prevEnd = end
		body := strings.TrimSpace(u.text[start:end])
		r := &rule.Rule{
			Language:  rule.Kusto,
			Class:     rule.Detection,
			Body:      body,
			BodyLang:  "kusto",
			Condition: low.cond,
			Root:      low.root,
			Params:    low.params,
			Outputs:   low.outputs,
			GroupBy:   low.groupBy,
			Computed:  low.computed,
			Timeframe: low.timeframe,
			LogSource: rule.LogSource{Tables: low.tables},
		}
		qpos := u.pos(lineOf(u.text, q.start), 1)
		r.Source = src
		r.Source.Line = qpos.Line
		cond := low.cond
		if cond == "" {
			cond = strings.TrimSpace(u.text[q.start:q.end])
		}
		r.Stages = append([]rule.Stage{{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: cond, Pos: qpos}}, low.stages...)
		for _, e := range errs {
			if len(qs) > 1 && (e.Off < start || e.Off >= end) {
				continue
			}
			sev, code := rule.Error, "kql/parse/syntax"
			if e.Warn {
				sev, code = rule.Warning, "kql/parse/tolerated"
			}
			if e.Code != "" {
				code = e.Code
			}
			r.Diagnostics = append(r.Diagnostics, rule.Diagnostic{Severity: sev, Code: code, Pos: u.pos(e.Line, e.Col), Message: e.Msg})
		}
		seen := map[string]bool{}
		for _, d := range lw.diags {
			k := d.String()
			if !seen[k] {
				seen[k] = true
				r.Diagnostics = append(r.Diagnostics, d)
			}
		}
		if vendorFeed(r) {
			r.Class = rule.VendorFeed
		}
		label := u.label
		if label == "" {
			label = commentLabel(u.text[start:min(q.start, len(u.text))])
		}
		// The comment's title, when it reads like one, is only a candidate: the file
		// formats choose among headings, file names and it (titleOf).
		title, desc := commentTitle(u.text[start:min(q.start, len(u.text))])
		r.Title, r.Description = title, desc
		out = append(out, &built{r: r, label: label, norm: normalizeBody(body)})
	}
	return out
}

func lineOf(s string, off int) int {
	if off < 0 {
		off = 0
	}
	if off > len(s) {
		off = len(s)
	}
	return strings.Count(s[:off], "\n") + 1
}

var (
	commentLineRe = regexp.MustCompile(`(?m)^\s*//+\s?(.*)$`)
	urlRe         = regexp.MustCompile(`https?://[^\s)>\]"'|]+`)
	techRe        = regexp.MustCompile(`\b[Tt](\d{4})(?:[./](\d{3}))?\b`)
)

// commentTitle reads a title and description from the comment lines before a query:
// the first line that looks like a title (looksLikeTitle, or written "Title: ..."),
// and the other lines. Comments in teaching material and notebooks are sentences
// ("...and we can see that Barbara launched it"): those are description, never title.
func commentTitle(pre string) (title, desc string) {
	var kept []string
	for _, m := range commentLineRe.FindAllStringSubmatch(pre, -1) {
		t := strings.TrimSpace(strings.Trim(m[1], "/"))
		if t == "" || isBoilerplate(t) {
			continue
		}
		kept = append(kept, t)
	}
	if len(kept) == 0 {
		return "", ""
	}
	for i, t := range kept {
		if strings.Contains(t, "http") || strings.HasPrefix(t, "@") {
			continue
		}
		if rest, ok := strings.CutPrefix(t, "Title:"); ok {
			title = strings.TrimSuffix(strings.TrimSpace(rest), ".")
		} else if looksLikeTitle(t) {
			title = t
		} else {
			break // only the first prose line may title the query
		}
		kept = append(kept[:i:i], kept[i+1:]...)
		break
	}
	if len(title) > 160 {
		title = shorten(title, 157)
	}
	return title, strings.Join(kept, "\n")
}

// looksLikeTitle reports whether a comment or prose line reads as a title rather than a
// sentence: short (at most 10 words, 70 bytes), not continuing or ending a sentence
// ("...", a lower-case start, a trailing period, colon or comma), no sentence break in it.
func looksLikeTitle(t string) bool {
	t = strings.TrimSpace(t)
	if t == "" || len(t) > 70 || len(strings.Fields(t)) > 10 {
		return false
	}
	if strings.HasPrefix(t, "...") || strings.HasPrefix(t, "…") || strings.Contains(t, ". ") {
		return false
	}
	if r, _ := utf8.DecodeRuneInString(t); unicode.IsLower(r) {
		return false
	}
	last, _ := utf8.DecodeLastRuneInString(t)
	return !strings.ContainsRune(".!?,;:…", last)
}

// humanTitle turns a file name into a title: "Audit-DetectSSPRFromUnknownIP" reads
// "Audit - Detect SSPR From Unknown IP". Names written with spaces are kept as they
// are, underscores aside.
func humanTitle(name string) string {
	name = strings.TrimSpace(strings.ReplaceAll(name, "_", " "))
	if strings.Contains(name, " ") {
		return strings.Join(strings.Fields(name), " ")
	}
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			switch {
			case r == '-' && unicode.IsLetter(prev) && i+1 < len(rs) && unicode.IsLetter(rs[i+1]):
				b.WriteString(" - ")
				continue
			case unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsUpper(prev) && nextLower):
				b.WriteByte(' ')
			}
		}
		b.WriteRune(r)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

var boilerplateRe = regexp.MustCompile(`(?i)^(data connector|microsoft sentinel query|sentinel query|advanced hunting query|advanced hunting|log analytics|author|version|query:|kql|-+|=+|#+|\*+)\b?`)

func isBoilerplate(t string) bool {
	return boilerplateRe.MatchString(t) || strings.Trim(t, "-=*#/ ") == ""
}

// commentLabel finds a variant label ("Sentinel", "Defender XDR") in comments.
func commentLabel(pre string) string {
	for _, m := range commentLineRe.FindAllStringSubmatch(pre, -1) {
		if l := variantLabel(m[1]); l != "" {
			return l
		}
	}
	return ""
}

// variantLabel maps a heading or comment to the platform a query variant targets.
func variantLabel(s string) string {
	l := strings.ToLower(s)
	if len(l) > 60 {
		return ""
	}
	switch {
	case strings.Contains(l, "sentinel") || strings.Contains(l, "log analytics"):
		return "Sentinel"
	case strings.Contains(l, "defender xdr") || strings.Contains(l, "advanced hunting") || strings.Contains(l, "m365 defender") ||
		strings.Contains(l, "microsoft 365 defender") || strings.Contains(l, "unified xdr") || l == "defender" ||
		strings.HasPrefix(l, "defender for endpoint") || strings.HasPrefix(l, "mde"):
		return "Defender XDR"
	}
	return ""
}

var (
	wsRe      = regexp.MustCompile(`\s+`)
	commentRe = regexp.MustCompile(`(?m)//.*$`)
	tsRe      = regexp.MustCompile(`\b(Timestamp|TimeGenerated)\b`)
)

// normalizeBody is a query without comments, whitespace and the time column that
// differs between Defender XDR (Timestamp) and Sentinel (TimeGenerated).
func normalizeBody(b string) string {
	b = commentRe.ReplaceAllString(b, "")
	b = tsRe.ReplaceAllString(b, "T")
	return wsRe.ReplaceAllString(b, "")
}

// pairVariants merges the Defender XDR and Sentinel versions of one query, written
// one after the other in a file, into one rule with both bodies.
func pairVariants(bs []*built) []*built {
	var out []*built
	for i := 0; i < len(bs); i++ {
		b := bs[i]
		if i+1 < len(bs) {
			n := bs[i+1]
			labelled := b.label != "" && n.label != "" && b.label != n.label
			same := b.norm == n.norm && b.norm != ""
			if labelled || same {
				lbl := n.label
				if lbl == "" {
					lbl = timeLabel(n.r.Body)
				}
				b.r.Bodies = append(b.r.Bodies, rule.Variant{Label: lbl, Body: n.r.Body, Lang: "kusto"})
				if b.r.Title == "" {
					b.r.Title = n.r.Title
				}
				// Tables of either variant describe the rule (DeviceInfo vs. Sentinel tables).
				b.r.LogSource.Tables = dedupe(append(b.r.LogSource.Tables, n.r.LogSource.Tables...))
				if b.label == "" {
					b.label = timeLabel(b.r.Body)
				}
				if b.r.Extra == nil {
					b.r.Extra = map[string]string{}
				}
				if b.label != "" {
					b.r.Extra["variant"] = b.label
				}
				out = append(out, b)
				i++
				continue
			}
		}
		out = append(out, b)
	}
	return out
}

func timeLabel(body string) string {
	switch {
	case strings.Contains(body, "TimeGenerated"):
		return "Sentinel"
	case strings.Contains(body, "Timestamp"):
		return "Defender XDR"
	}
	return "variant"
}

var alertTableRe = regexp.MustCompile(`(?i)^(SecurityAlert|SecurityIncident|AlertInfo|AlertEvidence|.*Alerts?(_CL)?|.*Detections?_CL)$`)

// vendorFeed reports whether a rule only forwards another product's alerts: every
// table it reads is an alert table, or it selects a vendor's detection events.
func vendorFeed(r *rule.Rule) bool {
	ts := r.LogSource.Tables
	if len(ts) == 0 {
		return false
	}
	all := true
	for _, t := range ts {
		if !alertTableRe.MatchString(t) {
			all = false
		}
	}
	if all {
		return true
	}
	if len(ts) != 1 || r.Root == nil {
		return false
	}
	found := false
	for _, pp := range rule.Preds(r.Root) {
		f := strings.ToLower(pp.Pred.Field)
		if pp.Negated || (f != "eventtype" && f != "event_type" && f != "eventname" && f != "activitytype") {
			continue
		}
		for _, v := range pp.Pred.Values {
			lv := strings.ToLower(v.S)
			if strings.Contains(lv, "detectionsummary") || strings.HasSuffix(lv, "alert") {
				found = true
			}
		}
	}
	return found
}

// finish sets ids, indexes and titles of a file's rules.
func finish(src rule.Source, rs []*rule.Rule, fallbackTitle string) {
	titles := map[string]int{}
	for _, r := range rs {
		titles[r.Title]++
	}
	n := map[string]int{}
	for i, r := range rs {
		r.Source.Index = i
		if r.ID == "" {
			r.ID = rule.StableID(src.Repo, src.Path, i)
		}
		if r.Title == "" {
			r.Title = fallbackTitle
			titles[r.Title] += 2
		}
		if titles[r.Title] > 1 {
			n[r.Title]++
			r.Title = fmt.Sprintf("%s (%d)", r.Title, n[r.Title])
		}
		for j := range r.Diagnostics {
			r.Diagnostics[j].Pos.File = src.Path
		}
		for j := range r.Stages {
			r.Stages[j].Pos.File = src.Path
		}
		for j := range r.Params {
			r.Params[j].Pos.File = src.Path
		}
		rule.Walk(r.Root, func(nd *rule.Node, _ bool) bool {
			nd.Pos.File = src.Path
			if nd.Pred != nil {
				nd.Pred.Pos.File = src.Path
			}
			return true
		})
		for j := range r.Stages {
			rule.Walk(r.Stages[j].Node, func(nd *rule.Node, _ bool) bool {
				nd.Pos.File = src.Path
				if nd.Pred != nil {
					nd.Pred.Pos.File = src.Path
				}
				return true
			})
		}
		r.Techniques = dedupe(r.Techniques)
		r.Tactics = dedupe(r.Tactics)
	}
}

// techniques extracts ATT&CK technique IDs (T1021, T1021.002, T1021/002 in links).
func techniques(s string) []string {
	var out []string
	for _, m := range techRe.FindAllStringSubmatch(s, -1) {
		id := "T" + m[1]
		if m[2] != "" {
			id += "." + m[2]
		}
		out = append(out, id)
	}
	return out
}

var tacticNames = map[string]string{
	"TA0043": "reconnaissance", "TA0042": "resource-development", "TA0001": "initial-access", "TA0002": "execution",
	"TA0003": "persistence", "TA0004": "privilege-escalation", "TA0005": "defense-evasion", "TA0006": "credential-access",
	"TA0007": "discovery", "TA0008": "lateral-movement", "TA0009": "collection", "TA0011": "command-and-control",
	"TA0010": "exfiltration", "TA0040": "impact",
}

var knownTactics = map[string]bool{}

func init() {
	for _, v := range tacticNames {
		knownTactics[v] = true
	}
}

var camelRe = regexp.MustCompile(`([a-z])([A-Z])`)

// normTactic turns any tactic spelling (CommandAndControl, Command and control,
// attack.command_and_control, TA0011) into the ATT&CK short name.
func normTactic(s string) string {
	s = strings.TrimSpace(s)
	if t, ok := tacticNames[strings.ToUpper(s)]; ok {
		return t
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "attack."), "Attack.")
	s = camelRe.ReplaceAllString(s, "$1-$2")
	s = strings.ToLower(s)
	s = strings.NewReplacer("_", "-", " ", "-", "&", "and").Replace(s)
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	return strings.Trim(s, "-")
}
