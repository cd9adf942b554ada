package split

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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

// TestReaderSHA256: the joined bundle's sha256 is known only once every
// part was read and checked, then it is that of the bytes read, with a
// signed list and with an unchecked one, and it outlives Close.
func TestReaderSHA256(t *testing.T) {
	dir, data, pub := splitFixture(t, 3*readChunk+777, readChunk)
	want := fmt.Sprintf("%x", sha256.Sum256(data))
	lp := filepath.Join(dir, ListName(bundleName))
	for name, verify := range map[string]func(msg, sig []byte) error{"signed": verifier(pub), "unchecked": nil} {
		rc, _, err := Open(context.Background(), lp, verify)
		if err != nil {
			t.Fatal(err)
		}
		if sum, err := rc.SHA256(); err == nil {
			t.Errorf("%s: SHA256 before reading = %s, want an error", name, sum)
		}
		if _, err := io.ReadFull(rc, make([]byte, len(data))); err != nil {
			t.Fatal(err)
		}
		if sum, err := rc.SHA256(); err == nil {
			t.Errorf("%s: SHA256 before io.EOF = %s, want an error", name, sum)
		}
		if n, err := rc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("%s: read past the end: %d, %v", name, n, err)
		}
		rc.Close()
		if sum, err := rc.SHA256(); err != nil || sum != want {
			t.Errorf("%s: SHA256 = %q, %v; want %s", name, sum, err, want)
		}
	}
}

// TestReaderSHA256Tampered: a tampered part fails the read and leaves no
// sha256 to take.
func TestReaderSHA256Tampered(t *testing.T) {
	dir, _, pub := splitFixture(t, 3*readChunk, readChunk)
	p := filepath.Join(dir, PartName(bundleName, 3, 3))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, _, err := Open(context.Background(), filepath.Join(dir, ListName(bundleName)), verifier(pub))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), filepath.Base(p)) {
		t.Fatalf("read of a tampered part: %v", err)
	}
	if sum, err := rc.SHA256(); err == nil {
		t.Errorf("SHA256 after a failed read = %s, want an error", sum)
	}
}

// TestPartChangedAfterOpen: the loader opens each part only when it gets
// to it, so a part removed or cut short after Open fails the read there,
// naming it, after every byte of the parts before it. Parts are larger
// than all the chunks read ahead, so before the first Read the loader
// cannot have got past the first part.
func TestPartChangedAfterOpen(t *testing.T) {
	const partSize = (readChunks + 1) * readChunk
	for name, tc := range map[string]struct {
		change func(path string) error
		want   string
	}{
		"removed":   {os.Remove, ": missing"},
		"truncated": {func(p string) error { return os.Truncate(p, 10) }, ": ended "},
	} {
		dir, data, pub := splitFixture(t, 3*partSize+500, partSize)
		rc, _, err := Open(context.Background(), filepath.Join(dir, ListName(bundleName)), verifier(pub))
		if err != nil {
			t.Fatal(err)
		}
		third := PartName(bundleName, 3, 4)
		if err := tc.change(filepath.Join(dir, third)); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), third+tc.want) {
			t.Errorf("%s: read: %v, want ErrVerify naming %s%s", name, err, third, tc.want)
		}
		if len(got) < 2*partSize || !bytes.Equal(got[:2*partSize], data[:2*partSize]) {
			t.Errorf("%s: %d bytes came through, want the first two parts", name, len(got))
		}
	}
}
