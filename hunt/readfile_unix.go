//go:build unix

package hunt

import (
	"os"
	"syscall"
)

// readFile reads a whole file of at most limit bytes (errTooLarge beyond). A hunt
// reads every rule file at start-up, to hash it for the rule cache: through os.Open,
// each of SigmaHQ's 2,400 Windows rule files was also registered with the network
// poller (an fcntl and a failing epoll_ctl each), 0.02 CPU-seconds of a start-up of
// 0.4. Errors are the *os.PathError os.Open and Read would give.
func readFile(path string, limit int64) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	size := 0
	if syscall.Fstat(fd, &st) == nil {
		if st.Size > limit {
			return nil, errTooLarge
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			size = int(st.Size)
		}
	}
	// One byte more than the size, so that reading the whole file ends with EOF
	// without growing the buffer; a file that grew meanwhile is still read whole.
	data := make([]byte, 0, size+1)
	for {
		n, err := syscall.Read(fd, data[len(data):cap(data)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return data, nil
		}
		data = data[:len(data)+n]
		if int64(len(data)) > limit {
			return nil, errTooLarge
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}
