// Package ingest walks rule sources, hands each file to the language parser that
// recognizes it, derives indicators and stores the result in the catalog.
package ingest

import "github.com/ruledex/ruledex/rule"

// Parser is what each language package (lang/sigma, lang/kql, lang/spl) provides.
type Parser interface {
	// Language is the language this parser produces.
	Language() rule.Language
	// Detect reports whether the file at path (relative to its source root, forward
	// slashes) with content data is in this parser's language. It must be cheap: it runs
	// on every file of every ingest.
	Detect(path string, data []byte) bool
	// Parse reads every rule in data. src carries Repo, RepoURL, Path, Commit and
	// UpstreamURL; Parse fills Line and Index per rule and sets each rule's ID (upstream
	// id, else rule.StableID(src.Repo, src.Path, index)), Language, Class, Body, Stages,
	// Root and Diagnostics (Pos.File = src.Path). File-level problems that belong to no
	// rule (a YAML syntax error before any rule) are returned as diags. Parse never
	// panics and never leaves a rule out silently: a rule it cannot model is returned
	// with an error diagnostic.
	Parse(src rule.Source, data []byte) (rules []*rule.Rule, diags []rule.Diagnostic)
}

// RootAware is implemented by parsers that need to see a whole source tree before
// parsing its files (SPL detections reference macros defined in macros/*.yml).
// Begin is called once per ingested root, before any Parse of files under it.
type RootAware interface {
	Begin(root string) error
}
