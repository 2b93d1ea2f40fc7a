//go:build unix

package gitsource

import (
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on file, waiting for another sync (a CLI run next
// to serve --sync-every) to finish with the same repository. The lock goes with the
// process, so a crash never leaves a stale one.
func lockFile(file string) (unlock func(), err error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", file, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
