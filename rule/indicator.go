package rule

// Indicator is one (field, kind, value) a rule tests, normalized so that the same test
// in any language yields the same Key and so counts together across the corpus.
type Indicator struct {
	// Field is the field as the rule writes it; Canonical is its name after field
	// equivalence (Image for NewProcessName, FolderPath, process_path...).
	Field     string `json:"field"`
	Canonical string `json:"canonical"`
	Kind      Kind   `json:"kind"`
	// Value is the value as the rule writes it (wildcards shown). Key is the normalized
	// value used for counting: case-folded unless the test is case-sensitive, never trimmed.
	Value      string   `json:"value"`
	Key        string   `json:"key"`
	Transforms []string `json:"transforms,omitempty"`
	// Negated marks indicators from exclusions (the rule suppresses these).
	Negated bool `json:"negated,omitempty"`
	// Stage is the index of the stage the indicator comes from.
	Stage int `json:"stage,omitempty"`
}
