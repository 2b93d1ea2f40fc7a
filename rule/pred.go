package rule

// Kind is what a predicate tests. The names are the ones pages and the API show.
type Kind string

const (
	Eq        Kind = "eq"          // field equals value
	Ne        Kind = "ne"          // field differs from value (Sigma neq, KQL !=)
	Match     Kind = "match"       // value is a substring of field (Sigma contains, KQL contains)
	StartsW   Kind = "starts_with" // field starts with value
	EndsW     Kind = "ends_with"   // field ends with value
	Glob      Kind = "glob"        // field matches a wildcard pattern that is none of the above (Sigma `a*b`)
	Regex     Kind = "regex"       // field matches a regular expression (flags in Transforms: i, m, s)
	CIDR      Kind = "cidr"        // field is an IP in the network
	In        Kind = "in"          // field equals one of Values (KQL in/in~); Sigma lists are Eq with several Values
	Gt        Kind = "gt"
	Ge        Kind = "ge"
	Lt        Kind = "lt"
	Le        Kind = "le"
	IsNull    Kind = "is_null"     // field is absent or empty (Sigma `null`, exists: false)
	IsNotNull Kind = "is_not_null" // field is present (Sigma exists: true, KQL isnotempty)
	Keyword   Kind = "keyword"     // value appears anywhere in the event (Sigma keyword lists); Field is ""
	FieldRef  Kind = "fieldref"    // field equals the field named by Value (Sigma fieldref)

	// Term kinds are KQL's `has` family: the field is split into terms (maximal runs of
	// ASCII letters and digits) and value is matched on term boundaries. `has x` holds
	// when x occurs in the field with no letter or digit immediately before or after it;
	// so `has "shadowcopy"` does not hold on "shadowcopies". A term kind implies the
	// substring kind with the same value (term x ⊂ match x), never the reverse.
	Term       Kind = "term"        // value occurs bounded by non-alphanumerics on both sides (KQL has)
	TermPrefix Kind = "term_prefix" // value occurs with a non-alphanumeric (or start) before it (KQL hasprefix)
	TermSuffix Kind = "term_suffix" // value occurs with a non-alphanumeric (or end) after it (KQL hassuffix)
)

// Transforms are applied to the values, in order, before comparing. Names are Sigma's
// modifier names where Sigma has one, so pages can show them as written.
const (
	TCased        = "cased"        // case-sensitive comparison (default is case-insensitive)
	TWindash      = "windash"      // also try -, /, en dash, em dash, horizontal bar for a leading dash
	TBase64       = "base64"       // compare against the base64 of the value
	TBase64Offset = "base64offset" // the three base64 encodings at offsets 0..2
	TUTF16LE      = "utf16le"      // encode the value as UTF-16LE before base64
	TUTF16BE      = "utf16be"
	TUTF16        = "utf16"  // with BOM
	TWide         = "wide"   // alias of utf16le
	TExpand       = "expand" // value holds %placeholders% to be expanded from configuration
	TIgnoreCase   = "i"      // regex flag
	TMultiline    = "m"      // regex flag
	TDotAll       = "s"      // regex flag
	// TElem: the field is an array (ECS process.args, UDM repeated fields) and the test
	// holds when it holds for at least one element (EQL `process.args : "x"` is element
	// equality, not a substring of the joined command line). With All on the predicate
	// (YARA-L `all`), every element must pass.
	TElem = "elem"
	// Date-part transforms compare one component of a timestamp field.
	TMinute = "minute"
	THour   = "hour"
	TDay    = "day"
	TWeek   = "week"
	TMonth  = "month"
	TYear   = "year"
)

// ValueType is the type a value was written with.
type ValueType string

const (
	String ValueType = "string"
	Number ValueType = "number"
	Bool   ValueType = "bool"
	Null   ValueType = "null"
	// ListRef: S names a list kept outside the rule (a YARA-L reference list `%name`),
	// whose contents are unknown; the value is opaque and must never be compared as text.
	ListRef ValueType = "list"
)

// Value is one value of a predicate.
//
// S holds the value text. When Wild is false S is the literal text (escapes removed).
// When Wild is true S is a pattern in ruledex glob syntax: `*` any run, `?` one
// character, `\*` `\?` `\\` the literal characters; every other character, including a
// backslash before anything else, is literal. Parsers for languages without wildcards
// always set Wild false.
type Value struct {
	S    string    `json:"s"`
	Type ValueType `json:"type,omitempty"` // "" means String
	Wild bool      `json:"wild,omitempty"`
}

// Pred is one predicate: Field Kind Values, under Transforms.
type Pred struct {
	// Field is the field name as written in the rule ("NewProcessName", "Processes.process_name").
	// Empty for keywords.
	Field string `json:"field,omitempty"`
	Kind  Kind   `json:"kind"`
	// Values are OR-ed unless All is set (Sigma `|all`, KQL has_all), then AND-ed.
	Values []Value `json:"values,omitempty"`
	All    bool    `json:"all,omitempty"`
	// Transforms in the order written (see the T* constants).
	Transforms []string `json:"transforms,omitempty"`
	// Native is the predicate as written in the rule's own syntax, for display
	// ("NewProcessName|endswith", "ProcessCommandLine has_any"); optional.
	Native string `json:"native,omitempty"`
	Pos    Pos    `json:"pos,omitzero"`
}

// Cased reports whether comparisons are case-sensitive.
func (p *Pred) Cased() bool { return p.Has(TCased) }

// Has reports whether transform t applies.
func (p *Pred) Has(t string) bool {
	for _, x := range p.Transforms {
		if x == t {
			return true
		}
	}
	return false
}
