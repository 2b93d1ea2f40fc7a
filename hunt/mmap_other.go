//go:build !unix

package hunt

import "os"

// mapParts maps files on Unix only; elsewhere files are read (jsonParts).
func mapParts(path string, fh *os.File, send func(Part) bool) (bool, error) { return false, nil }
