package page

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"text/tabwriter"
)

// IndicatorsIntro explains the corpus column, on text and HTML pages alike.
const IndicatorsIntro = "Each row is a field, a kind of test and the values the rule looks for. " +
	"The corpus count says how many rules in the whole catalog test the same field (after field " +
	"equivalence across languages), kind and value, split by language; a widely shared indicator is " +
	"well-established, a blank count means only this rule tests it."

// WriteText renders the page as plain text, sections in page order, empty ones left out.
func WriteText(w io.Writer, p *Rule) error { return writeText(w, p) }

// newTable returns a tabwriter whose output, on Flush, is written to bw without the
// trailing blanks of padded last columns.
func newTable(bw io.Writer) *table {
	t := &table{out: bw}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, 3, ' ', 0)
	return t
}

type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func (t *table) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	for _, l := range strings.SplitAfter(t.buf.String(), "\n") {
		if l == "" {
			continue
		}
		io.WriteString(t.out, strings.TrimRight(l, " \n")+"\n")
	}
	t.buf.Reset()
	return nil
}

func writeText(w io.Writer, p *Rule) error {
	bw := bufio.NewWriter(w)
	var names []string
	for _, c := range p.Breadcrumb {
		names = append(names, c.Name)
	}
	section := func(title string) {
		bw.WriteString("\n" + title + "\n\n")
	}
	bw.WriteString(strings.Join(names, " › ") + "\n\n")
	bw.WriteString(p.Title + "\n")
	if p.Banner != "" {
		bw.WriteString("\n" + p.Banner + "\n")
	}
	if len(p.Meta) > 0 {
		bw.WriteString("\n")
		for _, m := range p.Meta {
			bw.WriteString(m.Label + "\n" + m.Value + "\n")
			if m.Link != "" && m.Link != m.Value {
				bw.WriteString(m.Link + "\n")
			}
		}
	}
	if len(p.Risk) > 0 {
		section("Risk")
		for _, m := range p.Risk {
			bw.WriteString(m.Label + "\n" + m.Value + "\n")
		}
	}
	if p.Description != "" {
		bw.WriteString("\n" + p.Description + "\n")
	}
	if len(p.References) > 0 {
		section("References")
		for _, r := range p.References {
			bw.WriteString("- " + r + "\n")
		}
	}
	if len(p.Attack) > 0 {
		section("MITRE ATT&CK coverage")
		tw := newTable(bw)
		tw.Write([]byte("Tactic\tTechniques\n"))
		for _, row := range p.Attack {
			name := row.Tactic.Name
			switch {
			case row.Tactic.Short == "":
				name = "(tactic unknown)"
			case !row.Tactic.Named:
				name += " (tactic not tagged)"
			}
			if len(row.Techniques) == 0 {
				tw.Write([]byte(name + "\t(no technique tagged)\n"))
				continue
			}
			for i, t := range row.Techniques {
				cell := ""
				if i == 0 {
					cell = name
				}
				tw.Write([]byte(cell + "\t" + techniqueText(t) + "\n"))
			}
		}
		tw.Flush()
	}
	if len(p.Events) > 0 {
		section("Event coverage")
		tw := newTable(bw)
		tw.Write([]byte("Provider\tEvent ID\tTitle\n"))
		for _, e := range p.Events {
			tw.Write([]byte(e.Provider + "\t" + itoa(e.EventID) + "\t" + e.Title + "\n"))
		}
		tw.Flush()
		if len(p.AbsentFields) > 0 {
			bw.WriteString("\n" + AbsentFieldsNote + "\n")
			for _, a := range p.AbsentFields {
				bw.WriteString("- " + a.Field + ": not in " + strings.Join(a.Events, ", ") + "\n")
			}
		}
	}
	if len(p.Settings) > 0 {
		section("Parameters")
		tw := newTable(bw)
		tw.Write([]byte("Parameter\tValue\n"))
		for _, st := range p.Settings {
			tw.Write([]byte(oneLine(st.Name) + "\t" + oneLine(st.Value) + "\n"))
		}
		tw.Flush()
	}
	for _, b := range p.Bodies {
		title := "Rule body " + b.Lang
		if b.Label != "" {
			title = "Rule body (" + b.Label + ") " + b.Lang
		}
		section(strings.TrimSpace(title))
		bw.WriteString(strings.TrimRight(b.Text, "\n") + "\n")
	}
	if len(p.Stages) > 0 {
		section("Stages and Predicates")
		alt := 0
		for i, s := range p.Stages {
			if i > 0 {
				bw.WriteString("\n")
			}
			if s.Alt != alt && s.Alt > 0 {
				alt = s.Alt
				bw.WriteString("Alternative " + itoa(s.Alt) + " of " + itoa(p.Alternatives) + " (the rule matches when any one alternative holds)\n\n")
			}
			bw.WriteString(s.Title + "\n")
			if s.Text != "" {
				bw.WriteString("\n" + strings.TrimRight(s.Text, "\n") + "\n")
			}
		}
	}
	if len(p.Computed) > 0 {
		section("Computed columns")
		tw := newTable(bw)
		tw.Write([]byte("Column\tDefinition\tStage\n"))
		for _, c := range p.Computed {
			tw.Write([]byte(oneLine(c.Name) + "\t" + oneLine(c.Definition) + "\t" + itoa(c.Stage) + "\n"))
		}
		tw.Flush()
	}
	if len(p.Exclusions) > 0 {
		section("Exclusions")
		tw := newTable(bw)
		tw.Write([]byte("Stage\tField\tKind\tExcluded values\n"))
		for _, e := range p.Exclusions {
			kind := string(e.Kind) + transformsText(e.Transforms)
			for i, v := range e.Values {
				if i == 0 {
					tw.Write([]byte(e.StageLabel + "\t" + e.Field + "\t" + kind + "\t" + oneLine(v) + "\n"))
				} else {
					tw.Write([]byte("\t\t\t" + oneLine(v) + "\n"))
				}
			}
			if len(e.Values) == 0 {
				tw.Write([]byte(e.StageLabel + "\t" + e.Field + "\t" + kind + "\t\n"))
			}
		}
		tw.Flush()
	}
	if len(p.Indicators) > 0 {
		section("Indicators")
		bw.WriteString(IndicatorsIntro + "\n\n")
		tw := newTable(bw)
		tw.Write([]byte("Field\tKind\tValues\t\n"))
		for _, row := range p.Indicators {
			field := row.Field
			if field == "" {
				field = "(any field)"
			}
			kind := string(row.Kind) + transformsText(row.Transforms)
			for i, v := range row.Values {
				val := oneLine(v.Value)
				if val == "" {
					val = "-"
				}
				if i == 0 {
					tw.Write([]byte(field + "\t" + kind + "\t" + val + "\t" + v.CorpusText() + "\n"))
				} else {
					tw.Write([]byte("\t\t" + val + "\t" + v.CorpusText() + "\n"))
				}
			}
		}
		tw.Flush()
	}
	if len(p.Outputs) > 0 {
		section("Output fields")
		bw.WriteString(strings.Join(p.Outputs, ", ") + "\n")
	}
	for _, d := range p.Docs {
		// Markdown reads well as text; it is shown as written.
		section(oneLine(d.Title))
		bw.WriteString(strings.TrimRight(d.Markdown, "\n") + "\n")
	}
	if !p.Neighbors.Empty() {
		section("Neighbors")
		group := func(title string, rows []NeighborRow) {
			if len(rows) == 0 {
				return
			}
			bw.WriteString(title + "\n\n")
			tw := newTable(bw)
			for _, n := range rows {
				tw.Write([]byte("  " + oneLine(n.Title) + "\t" + n.Language + "\t" + n.Basis + "\t" + n.Difference + "\n"))
			}
			tw.Flush()
			bw.WriteString("\n")
		}
		if p.Neighbors.ClassURL != "" && p.Neighbors.ClassSize > 1 {
			bw.WriteString("Equivalence class " + p.Neighbors.ClassURL + " (" + itoa(p.Neighbors.ClassSize) + " rules)\n\n")
		}
		group("Equivalent rules", p.Neighbors.Equivalent)
		group("Stricter alternatives", p.Neighbors.Stricter)
		group("Broader alternatives", p.Neighbors.Broader)
	}
	if len(p.Translations) > 0 {
		section("In other languages")
		for _, t := range p.Translations {
			if t.Unavailable != "" {
				bw.WriteString(t.Name + ": not translated: " + oneLine(t.Unavailable) + "\n")
				continue
			}
			bw.WriteString(t.Name + " (" + t.Schema + ", verified by reading it back)\n")
			for _, a := range t.Assumptions {
				bw.WriteString("  assumes " + oneLine(a) + "\n")
			}
			for _, l := range strings.Split(strings.TrimRight(t.Query, "\n"), "\n") {
				bw.WriteString("    " + l + "\n")
			}
			bw.WriteString("\n")
		}
	}
	if len(p.Diagnostics) > 0 {
		section("Diagnostics")
		for _, d := range p.Diagnostics {
			bw.WriteString(d.String() + "\n")
		}
	}
	return bw.Flush()
}

func techniqueText(t TechniqueRef) string {
	s := t.ID
	if t.Name != "" {
		s += " " + t.Name
	}
	switch {
	case t.Revoked && t.RevokedBy != "":
		s += " (revoked, replaced by " + t.RevokedBy + ")"
	case t.Revoked:
		s += " (revoked)"
	case t.Deprecated:
		s += " (deprecated)"
	case t.Unknown:
		s += " (not in ATT&CK)"
	}
	return s
}

func transformsText(ts []string) string {
	if len(ts) == 0 {
		return ""
	}
	return " (" + strings.Join(ts, ", ") + ")"
}

// oneLine keeps table rows on one line: a value with line breaks or tabs shows them
// escaped, and one with leading or trailing blanks is quoted so they stay visible
// (' /transfer ' and '/transfer' are different indicators).
func oneLine(s string) string {
	s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
	if s != strings.TrimSpace(s) {
		s = "'" + s + "'"
	}
	return s
}
