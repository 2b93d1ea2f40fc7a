//go:build !unix

package gitsource

// lockFile does not lock where flock is missing: concurrent syncs of one repository
// are then the caller's to avoid.
func lockFile(string) (func(), error) { return func() {}, nil }
