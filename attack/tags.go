package attack

import (
	"strings"
	"unicode"
)

// Kind is what an ATT&CK reference names.
type Kind string

const (
	KindTactic     Kind = "tactic"
	KindTechnique  Kind = "technique"
	KindGroup      Kind = "group"      // G0016
	KindSoftware   Kind = "software"   // S0154
	KindMitigation Kind = "mitigation" // M1042
	KindDataSource Kind = "datasource" // DS0009
	KindNone       Kind = ""           // not an ATT&CK tag (cve.2021-1675, detection.threat_hunting)
)

// NormalizeTag reads one tag as rules write it and returns what it names, without a
// bundle: techniques as upper-case IDs ("T1558.004"), tactics as kill-chain short names
// ("command-and-control") or, when written as an ID, "TA0011"; groups, software,
// mitigations and data sources as upper-case IDs. Accepted spellings include
// attack.command_and_control, attack.Command_and_control, attack.credential-access,
// attack.t1558.004, Sentinel's CommandAndControl, "Command and Control" and bare IDs.
// Tags outside ATT&CK return KindNone.
func NormalizeTag(tag string) (Kind, string) {
	s := strings.TrimSpace(tag)
	if hasAttackPrefix(s) {
		s = s[7:]
	}
	if k, id, ok := idKind(s); ok {
		return k, id
	}
	if s == "" || strings.ContainsAny(s, ".:/") {
		return KindNone, ""
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || r == '_' || r == '-' || r == ' ') {
			return KindNone, ""
		}
	}
	// Outside the attack. namespace a word is a tactic only when the caller knows the tag
	// list holds tactics (Sentinel's tactics field); ResolveTags ignores unknown ones.
	return KindTactic, shortName(s)
}

func hasAttackPrefix(tag string) bool {
	t := strings.TrimSpace(tag)
	return len(t) > 7 && strings.EqualFold(t[:7], "attack.")
}

// idKind recognises ATT&CK IDs: T1234, T1234.001, TA0001, G0001, S0001, M1001, DS0001.
func idKind(s string) (Kind, string, bool) {
	u := strings.ToUpper(s)
	digits := func(x string, n int) bool {
		if len(x) != n {
			return false
		}
		for _, r := range x {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	switch {
	case strings.HasPrefix(u, "TA") && digits(u[2:], 4):
		return KindTactic, u, true
	case strings.HasPrefix(u, "DS") && digits(u[2:], 4):
		return KindDataSource, u, true
	case strings.HasPrefix(u, "T"):
		rest := u[1:]
		if digits(rest, 4) || (len(rest) == 8 && rest[4] == '.' && digits(rest[:4], 4) && digits(rest[5:], 3)) {
			return KindTechnique, u, true
		}
	case strings.HasPrefix(u, "G") && digits(u[1:], 4):
		return KindGroup, u, true
	case strings.HasPrefix(u, "S") && digits(u[1:], 4):
		return KindSoftware, u, true
	case strings.HasPrefix(u, "M") && digits(u[1:], 4):
		return KindMitigation, u, true
	}
	return "", "", false
}

// shortName turns "Command_and_control", "credential-access", "Command and Control" and
// "CommandAndControl" into the kill-chain form "command-and-control".
func shortName(s string) string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == '_' || r == '-' || r == ' ':
			flush()
		case unicode.IsUpper(r) && i > 0 && unicode.IsLower(rs[i-1]):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	return strings.Join(words, "-")
}

// Ref is a tag resolved against a bundle.
type Ref struct {
	Tag  string `json:"tag"`
	Kind Kind   `json:"kind"`
	// ID is the normalized form: technique ID, tactic short name, or group/software ID.
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Known is false when the bundle has no such tactic or technique (a typo, or an ID
	// from another domain); groups and software are not checked and stay unknown.
	Known      bool   `json:"known"`
	Revoked    bool   `json:"revoked,omitempty"`
	RevokedBy  string `json:"revoked_by,omitempty"`
	Deprecated bool   `json:"deprecated,omitempty"`
}

// Resolve normalizes tag and looks it up. Tactics written as IDs come back as short names.
func (m *Matrix) Resolve(tag string) Ref {
	k, id := NormalizeTag(tag)
	ref := Ref{Tag: tag, Kind: k, ID: id}
	switch k {
	case KindTactic:
		if t, ok := m.Tactic(id); ok {
			ref.ID, ref.Name, ref.Known = t.Short, t.Name, true
		}
	case KindTechnique:
		if t, ok := m.Technique(id); ok {
			ref.Name, ref.Known = t.Name, true
			ref.Revoked, ref.RevokedBy, ref.Deprecated = t.Revoked, t.RevokedBy, t.Deprecated
		}
	}
	return ref
}

// Resolution sorts a rule's tags into ATT&CK tactics and techniques.
type Resolution struct {
	// Tactics are known tactic short names in matrix order, without duplicates.
	Tactics []string `json:"tactics,omitempty"`
	// Techniques are technique IDs in the order first written, without duplicates,
	// including unknown, revoked and deprecated ones (Flagged says which).
	Techniques []string `json:"techniques,omitempty"`
	// Flagged lists the refs a page should warn about: unknown tactics or techniques,
	// revoked and deprecated techniques.
	Flagged []Ref `json:"flagged,omitempty"`
}

// ResolveTags resolves every tag; tags outside ATT&CK are ignored.
func (m *Matrix) ResolveTags(tags []string) Resolution {
	var res Resolution
	seenTa, seenTe := map[string]bool{}, map[string]bool{}
	var tactics []*Tactic
	for _, tag := range tags {
		ref := m.Resolve(tag)
		switch ref.Kind {
		case KindTactic:
			if !ref.Known {
				// A plain word outside the attack. namespace ("sysmon") is just another tag.
				if hasAttackPrefix(tag) {
					res.Flagged = append(res.Flagged, ref)
				}
				continue
			}
			if !seenTa[ref.ID] {
				seenTa[ref.ID] = true
				t, _ := m.Tactic(ref.ID)
				tactics = append(tactics, t)
			}
		case KindTechnique:
			if !seenTe[ref.ID] {
				seenTe[ref.ID] = true
				res.Techniques = append(res.Techniques, ref.ID)
				if !ref.Known || ref.Revoked || ref.Deprecated {
					res.Flagged = append(res.Flagged, ref)
				}
			}
		}
	}
	sortTactics(tactics)
	for _, t := range tactics {
		res.Tactics = append(res.Tactics, t.Short)
	}
	return res
}

func sortTactics(ts []*Tactic) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Order < ts[j-1].Order; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}
