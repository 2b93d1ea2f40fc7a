package rule

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Severity of a diagnostic.
type Severity string

const (
	Error   Severity = "error"   // the rule's meaning could not be fully determined
	Warning Severity = "warning" // accepted, but not as the specification writes it
)

// Diagnostic is a located problem found while reading a rule.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	// Code is stable and groups diagnostics in stats: "sigma/condition/unknown-ref",
	// "sigma/yaml", "kql/parse/unexpected-token".
	Code    string `json:"code"`
	Pos     Pos    `json:"pos"`
	Message string `json:"message"`
}

// String formats the diagnostic as compilers do: "file:line:col: severity: message [code]".
func (d Diagnostic) String() string {
	loc := d.Pos.File
	if d.Pos.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, d.Pos.Line)
		if d.Pos.Col > 0 {
			loc = fmt.Sprintf("%s:%d", loc, d.Pos.Col)
		}
	}
	return fmt.Sprintf("%s: %s: %s [%s]", loc, d.Severity, d.Message, d.Code)
}

// StableID derives an id for rules without an upstream one, stable across ingests as
// long as the repository, path and position in the file do not change.
func StableID(repo, path string, index int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", repo, path, index)))
	return hex.EncodeToString(h[:8])
}
