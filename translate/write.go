package translate

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// catInfo says how each target selects one kind of event (a Sigma category).
type catInfo struct {
	kqlTable    string // Defender XDR table
	sentinelIDs string // SecurityEvent EventID filter for --schema sentinel ("" = none)
	cimModel    string // CIM data model.dataset for tstats (Endpoint.Processes)
	cimDataset  string // the field prefix and fieldmap context (Processes)
	cimBy       []string
	eqlCategory string // EQL event category
	eqlType     string // event.type value ("" = any)
	indexes     []string
	udmType     string // UDM metadata.event_type
	dataSource  string // ESCU data_source / Sigma note
}

var categories = map[string]catInfo{
	"process_creation": {
		kqlTable: "DeviceProcessEvents", sentinelIDs: "4688",
		cimModel: "Endpoint.Processes", cimDataset: "Processes",
		cimBy:       []string{"dest", "user", "parent_process_name", "process_name", "process", "process_id", "parent_process_id"},
		eqlCategory: "process", eqlType: "start",
		indexes: []string{"logs-endpoint.events.process-*", "logs-windows.sysmon_operational-*", "winlogbeat-*"},
		udmType: "PROCESS_LAUNCH", dataSource: "Sysmon EventID 1",
	},
	"file_event": {
		kqlTable: "DeviceFileEvents",
		cimModel: "Endpoint.Filesystem", cimDataset: "Filesystem",
		cimBy:       []string{"dest", "user", "file_path", "file_name", "process_guid"},
		eqlCategory: "file", eqlType: "creation",
		indexes: []string{"logs-endpoint.events.file-*", "logs-windows.sysmon_operational-*", "winlogbeat-*"},
		udmType: "FILE_CREATION", dataSource: "Sysmon EventID 11",
	},
	"image_load": {
		kqlTable:    "DeviceImageLoadEvents",
		eqlCategory: "library",
		indexes:     []string{"logs-endpoint.events.library-*", "logs-windows.sysmon_operational-*", "winlogbeat-*"},
		dataSource:  "Sysmon EventID 7",
	},
	"network_connection": {
		// No CIM model: Network_Traffic also holds firewall and flow logs, so it is not
		// the endpoint connection events a Sysmon 3 rule reads.
		kqlTable:    "DeviceNetworkEvents",
		eqlCategory: "network",
		indexes:     []string{"logs-endpoint.events.network-*", "logs-windows.sysmon_operational-*", "winlogbeat-*"},
		udmType:     "NETWORK_CONNECTION", dataSource: "Sysmon EventID 3",
	},
}

// writer carries one translation's state: what it assumed and what it dropped.
type writer struct {
	fm      *fieldmap.Map
	t       Target
	sc      *schema
	cat     catInfo
	lossy   bool
	assumed map[string]bool
	dropped []string
	readCtx []string // field-map contexts the target's parser will give the translation
}

// column finds the target schema's name for a canonical field; nameOnly asks for the
// column holding only the file name (FileName, process.name, process_name).
func (w *writer) column(canonical string, nameOnly bool) (string, bool) {
	ctxs := w.sc.contexts(w.cat)
	for _, ctx := range ctxs {
		for _, e := range w.fm.Entries {
			if e.NameOnly == nameOnly && strings.EqualFold(e.Context, ctx) && strings.EqualFold(e.Canonical, canonical) {
				// The column must read back as the same field where the translation
				// will be read: a UDM principal.process.file.full_path is the parent
				// image of a process launch but the acting image of a file event.
				if back, ok := w.fm.Exact(w.readCtx, e.Field); !ok || !strings.EqualFold(back.Canonical, canonical) || back.NameOnly != nameOnly {
					continue
				}
				if nameOnly {
					w.assumed[fmt.Sprintf("%s is the file name of %s (%s)", e.Field, canonical, ctx)] = true
				} else if !strings.EqualFold(e.Field, canonical) {
					w.assumed[fmt.Sprintf("%s = %s (%s)", canonical, e.Field, ctx)] = true
				}
				return e.Field, true
			}
		}
	}
	return "", false
}

// atom is one single-valued test, ready for a language to spell.
type atom struct {
	canon string // canonical field, for messages
	field string // target column
	kind  rule.Kind
	v     rule.Value
	cased bool
	flags string // regex flags i, m, s
	elem  bool
	enc   []string // encodings (Sigma only: others get expanded values)
}

// place turns a canonical predicate into target atoms (one per value, after expanding
// encodings the target cannot spell), and says whether they combine with OR or AND.
func (w *writer) place(p *rule.Pred, keepEnc bool) ([]atom, rule.Op, error) {
	op := rule.OpOr
	if p.All {
		op = rule.OpAnd
	}
	var flags []string
	var enc []string
	for _, t := range p.Transforms {
		switch {
		case t == rule.TCased:
		case t == rule.TIgnoreCase || t == rule.TMultiline || t == rule.TDotAll:
			flags = append(flags, t)
		case t == rule.TElem:
			// An array test (ECS process.args) has no column of its own once on
			// canonical fields; writing it on the command line would be a substring
			// test, which is not the same.
			return nil, "", fail(w.t, "%s is tested element by element (an array such as process.args)", p.Field)
		case rule.IsEncoding(t):
			enc = append(enc, t)
		default:
			return nil, "", fail(w.t, "%s uses the %s modifier, which %s cannot express", p.Field, t, w.t.Display())
		}
	}
	vals := p.Values
	if len(enc) > 0 && !keepEnc {
		vals = nil
		for _, v := range p.Values {
			vs, err := rule.ExpandValue(p, v)
			if err != nil {
				return nil, "", fail(w.t, "%v", err)
			}
			vals = append(vals, vs...)
		}
		enc = nil
	}
	if p.Kind == rule.IsNull || p.Kind == rule.IsNotNull || len(vals) == 0 {
		vals = []rule.Value{{}}
	}
	var out []atom
	for _, v := range vals {
		a := atom{canon: p.Field, kind: p.Kind, v: v, cased: p.Cased(), flags: strings.Join(flags, ""), elem: p.Has(rule.TElem), enc: enc}
		if v.Type == rule.Null {
			a.kind = rule.IsNull
		}
		if p.Field == "" {
			a.kind = rule.Keyword
		} else if err := w.columnFor(p.Field, &a); err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	return out, op, nil
}

// columnFor sets a.field. Image ends_with \x.exe is written on the name column as
// name == x.exe where the schema has one (the usual Defender/CIM/ECS idiom); the two
// tests are exactly equivalent when x.exe holds no backslash.
func (w *writer) columnFor(canonical string, a *atom) error {
	if w.sc.native {
		a.field = canonical
		return nil
	}
	if a.kind == rule.EndsW && !a.v.Wild && strings.HasPrefix(a.v.S, `\`) && !strings.Contains(a.v.S[1:], `\`) && len(a.v.S) > 1 {
		if f, ok := w.column(canonical, true); ok {
			a.field, a.kind, a.v.S = f, rule.Eq, a.v.S[1:]
			return nil
		}
	}
	f, ok := w.column(canonical, false)
	if !ok {
		return fail(w.t, "field %s has no column in the %s schema", canonical, w.sc.name)
	}
	a.field = f
	return nil
}

// noLetters reports whether case cannot matter for s.
func noLetters(s string) bool { return strings.ToLower(s) == strings.ToUpper(s) }

// expr writes a canonical tree with a language's atom writer and boolean words.
type boolStyle struct {
	and, or string
	not     func(string) string
	// list writes an OR of equality tests on one column as the language's list
	// membership (KQL in~, EQL `: (...)`); nil or false means plain ORs.
	list func(as []atom) (string, bool)
}

func (w *writer) expr(n *node, st boolStyle, atomFn func(atom) (string, error), keepEnc bool) (string, error) {
	switch n.op {
	case rule.OpPred:
		as, op, err := w.place(n.p, keepEnc)
		if err != nil {
			return "", err
		}
		if st.list != nil && op == rule.OpOr && len(as) > 1 {
			if s, ok := st.list(as); ok {
				return s, nil
			}
		}
		parts := make([]string, 0, len(as))
		for _, a := range as {
			s, err := atomFn(a)
			if err != nil {
				if w.lossy {
					w.dropped = append(w.dropped, err.Error())
					continue
				}
				return "", err
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			return "", fail(w.t, "nothing of %s could be written", n.p.Field)
		}
		return join(parts, op, st), nil
	case rule.OpAnd, rule.OpOr:
		parts := make([]string, 0, len(n.kids))
		for _, k := range n.kids {
			s, err := w.expr(k, st, atomFn, keepEnc)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return join(parts, n.op, st), nil
	case rule.OpNot:
		s, err := w.expr(n.kids[0], st, atomFn, keepEnc)
		if err != nil {
			return "", err
		}
		return st.not(s), nil
	}
	return "", fail(w.t, "unexpected %s node", n.op)
}

// sameEqColumn reports whether every atom is a literal string equality on one column
// with one case sensitivity.
func sameEqColumn(as []atom) bool {
	for _, a := range as {
		if a.kind != rule.Eq || a.v.Type == rule.Number || a.field != as[0].field || a.cased != as[0].cased {
			return false
		}
		if _, lit := globLiteral(a.v); !lit {
			return false
		}
	}
	return true
}

func join(parts []string, op rule.Op, st boolStyle) string {
	if len(parts) == 1 {
		return parts[0]
	}
	sep := " " + st.and + " "
	if op == rule.OpOr {
		sep = " " + st.or + " "
	}
	return "(" + strings.Join(parts, sep) + ")"
}

// trimOuter removes one pair of parentheses around a whole expression.
func trimOuter(s string) string {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return s
	}
	depth := 0
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			if c == '\\' {
				i++
			} else if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'' || c == '`':
			inStr = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 && i != len(s)-1 {
				return s
			}
		}
	}
	return s[1 : len(s)-1]
}

// splitTop breaks a top-level AND into lines for readability.
func splitTop(s, and string) []string {
	whole := s
	s = trimOuter(s)
	var out []string
	depth, start := 0, 0
	inStr := byte(0)
	sep := " " + and + " "
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			if c == '\\' && inStr != '`' {
				i++
			} else if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'' || c == '`':
			inStr = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && strings.HasPrefix(s[i:], sep):
			out = append(out, s[start:i])
			start = i + len(sep)
			i += len(sep) - 1
		}
	}
	if len(out) == 0 {
		// Not an AND: keep the parentheses, so a top-level OR stays one conjunct
		// of whatever the caller puts before it.
		return []string{whole}
	}
	return append(out, s[start:])
}

// globLiteral returns a value's literal text when it has no wildcards.
func globLiteral(v rule.Value) (string, bool) {
	if !v.Wild {
		return v.S, true
	}
	var b strings.Builder
	for _, g := range rule.GlobParts(v.S) {
		if g.Wild != 0 {
			return "", false
		}
		b.WriteString(g.Lit)
	}
	return b.String(), true
}
