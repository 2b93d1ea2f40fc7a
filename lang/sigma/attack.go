package sigma

import "strings"

// tactics are the ATT&CK Enterprise tactic short names (x_mitre_shortname).
var tactics = map[string]bool{
	"reconnaissance": true, "resource-development": true, "initial-access": true, "execution": true,
	"persistence": true, "privilege-escalation": true, "defense-evasion": true, "credential-access": true,
	"discovery": true, "lateral-movement": true, "collection": true, "command-and-control": true,
	"exfiltration": true, "impact": true,
}

// attackFromTags normalizes ATT&CK tags in any spelling seen in the wild
// (attack.command_and_control, attack.Command_and_control, attack.credential-access,
// attack.t1558.004, attack.T1059) to tactic short names and technique IDs, in order of
// first appearance, without duplicates.
func attackFromTags(tags []string) (tacs, techs []string) {
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if len(t) < 7 || !strings.EqualFold(t[:7], "attack.") {
			continue
		}
		v := strings.ToLower(strings.TrimSpace(t[7:]))
		if id, ok := techniqueID(v); ok {
			if !seen[id] {
				seen[id] = true
				techs = append(techs, id)
			}
			continue
		}
		name := strings.NewReplacer("_", "-", " ", "-").Replace(v)
		if tactics[name] && !seen[name] {
			seen[name] = true
			tacs = append(tacs, name)
		}
	}
	return tacs, techs
}

// techniqueID accepts t1234 and t1234.567 (lower-cased input).
func techniqueID(v string) (string, bool) {
	if len(v) != 5 && len(v) != 9 || v[0] != 't' {
		return "", false
	}
	for i := 1; i < len(v); i++ {
		c := v[i]
		if i == 5 {
			if c != '.' {
				return "", false
			}
			continue
		}
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return strings.ToUpper(v), true
}
