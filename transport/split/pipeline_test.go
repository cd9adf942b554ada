package split

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/manifest"
)

// TestReadManyChunks: parts larger than the hasher's chunks, and a last
// part shorter than one, come out as the bundle, byte for byte, through
// reads of every size.
func TestReadManyChunks(t *testing.T) {
	const size = 5*readChunk + 12345
	dir, data, pub := splitFixture(t, size, 2*readChunk+1)
	for _, bufLen := range []int{1 << 10, readChunk - 1, 3 * readChunk} {
		rc, _, err := Open(context.Background(), filepath.Join(dir, ListName(bundleName)), verifier(pub))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(bufio(rc, bufLen))
		rc.Close()
		if err != nil {
			t.Fatalf("read with %d-byte reads: %v", bufLen, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read with %d-byte reads: %d bytes differ from the %d-byte bundle", bufLen, len(got), len(data))
		}
	}
}

// bufio reads r in reads of n bytes.
func bufio(r io.Reader, n int) io.Reader {
	return readerFunc(func(p []byte) (int, error) { return r.Read(p[:min(len(p), n)]) })
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestUncheckedListWholeHash: without a signature to vouch for the part
// hashes, the joined bundle's hash is checked too.
func TestUncheckedListWholeHash(t *testing.T) {
	dir, _, _ := splitFixture(t, 3000, 1000)
	lp := filepath.Join(dir, ListName(bundleName))
	b, err := os.ReadFile(lp)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseList(b)
	if err != nil {
		t.Fatal(err)
	}
	l.SHA256 = strings.Repeat("0", 64)
	if b, err = l.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, _, err := Open(context.Background(), lp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), "joined bundle") {
		t.Fatalf("err = %v, want a mismatch of the joined bundle", err)
	}
}

// TestCloseMidPart: closing before the end stops the hasher and later
// reads fail.
func TestCloseMidPart(t *testing.T) {
	dir, _, pub := splitFixture(t, 4*readChunk, readChunk)
	rc, _, err := Open(context.Background(), filepath.Join(dir, ListName(bundleName)), verifier(pub))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, readChunk+10)); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := rc.Read(make([]byte, 10)); !errors.Is(err, errClosed) {
		t.Errorf("read after close: %v", err)
	}
}
