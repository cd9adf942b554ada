package errclass

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestLocal(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "open", Path: "rel/x", Err: syscall.ENOSPC}, "write /abs/x: no space left on device (ENOSPC)"},
		{fmt.Errorf("wrapped: %w", syscall.EROFS), "write /abs/x: wrapped: read-only file system (EROFS)"},
		{syscall.EINVAL, "write /abs/x: invalid argument"},
	} {
		err := Local("write", "/abs/x", tc.err)
		if err.Error() != tc.want {
			t.Errorf("Local(%v) = %q, want %q", tc.err, err, tc.want)
		}
		var no syscall.Errno
		if !errors.As(err, &no) {
			t.Errorf("Local(%v) lost its errno", tc.err)
		}
	}
}
