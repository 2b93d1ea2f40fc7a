package kql

// version names this parser's output for the parse cache (ingest.Versioned): bump it
// whenever the IR produced for the same file changes, so unchanged files are parsed
// again by the next ingest instead of keeping a stale reading.
const version = "kql-3"

// Version implements ingest.Versioned.
func (Parser) Version() string { return version }
