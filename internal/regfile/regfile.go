// Package regfile opens files that must be regular files without ever
// blocking: a FIFO or device named where a file belongs (an allowed_signers
// file, a request signature, a staged blob planted by someone else) would
// make a plain open, or the read after it, wait forever. Open uses
// O_NONBLOCK, checks what it opened on the handle, and refuses anything but
// a regular file; NoFollow also refuses a symbolic link in the last
// element. Errors name the path and what it is, never its content.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Options tune Open and ReadFile.
type Options struct {
	// NoFollow refuses a symbolic link as the last path element
	// (O_NOFOLLOW) instead of opening what it points to.
	NoFollow bool
}

// ErrNotRegular marks a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path read-only. It never blocks on a FIFO or device, and
// returns an error wrapping ErrNotRegular for anything but a regular file.
func Open(path string, o Options) (*os.File, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
	if o.NoFollow {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if o.NoFollow && errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link: %w (not followed)", path, ErrNotRegular)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is %s: %w", path, Describe(fi.Mode()), ErrNotRegular)
	}
	return f, nil
}

// ReadFile reads a whole regular file of at most max bytes (Open's rules).
func ReadFile(path string, max int64, o Options) ([]byte, error) {
	f, err := Open(path, o)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// Describe names a file type for messages: "a FIFO", "a device", ...
func Describe(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "not a regular file"
	}
}
