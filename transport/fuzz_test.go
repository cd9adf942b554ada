package transport

import (
	"errors"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// FuzzCheckHead: whatever a file starts with, checkHead never panics, and
// its error is a verification error on one line without raw bytes.
func FuzzCheckHead(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte(`{"schema": "ccmirror.parts/v1"}`))
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\n"))
	f.Add([]byte("\x1f\x8b\x08"))
	f.Add(tarOf(f, "SHA256SUMS", "x"))
	f.Add(tarOf(f, "other\x00name", ""))
	f.Fuzz(func(t *testing.T, head []byte) {
		if len(head) > headSize {
			head = head[:headSize]
		}
		err := checkHead(head)
		if err == nil {
			return
		}
		if !errors.Is(err, errclass.ErrVerify) {
			t.Fatalf("error %v is not a verification error", err)
		}
		if strings.ContainsAny(err.Error(), "\x00\n\r\x1b") || len(err.Error()) > 300 {
			t.Fatalf("error carries raw bytes or runs long: %q", err)
		}
	})
}
