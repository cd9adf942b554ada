package asynchash

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestSum: the sum equals crypto/sha256's for writes of every shape: none,
// tiny, across chunk boundaries, larger than all chunks together.
func TestSum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 6*chunk+12345)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"nothing", nil},
		{"one byte", []int{1}},
		{"exactly a chunk", []int{chunk}},
		{"chunk plus one", []int{chunk, 1}},
		{"odd writes", []int{7, chunk - 3, 2*chunk + 11, 100}},
		{"more than every chunk at once", []int{len(data)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			off := 0
			for _, n := range tc.sizes {
				buf := bytes.Clone(data[off : off+n])
				a.Write(buf)
				clear(buf) // Write copied it: reusing the buffer is safe
				off += n
			}
			want := sha256.Sum256(data[:off])
			if got := a.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Fatalf("sum %x, want %x", got, want)
			}
		})
	}
}

// TestReader: what a Reader hands out is r's bytes, read in any pieces,
// and Sum is their SHA-256 (with what was left unread); r's error passes
// through.
func TestReader(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 5*readChunk+777)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, tc := range []struct {
		name     string
		size     int
		piece    int // bytes asked for per Read
		readOnly int // bytes read before Sum (Sum reads the rest)
	}{
		{"empty", 0, 100, 0},
		{"small, one byte at a time", 1000, 1, 1000},
		{"a chunk exactly", readChunk, readChunk, readChunk},
		{"several chunks, odd pieces", len(data), 4093, len(data)},
		{"Sum reads the rest", len(data), 8192, readChunk + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewReader(bytes.NewReader(data[:tc.size]))
			var got []byte
			buf := make([]byte, tc.piece)
			for len(got) < tc.readOnly {
				n, err := a.Read(buf[:min(tc.piece, tc.readOnly-len(got))])
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("read back %d bytes that differ from the source", len(got))
			}
			sum, err := a.Sum()
			if err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256(data[:tc.size])
			if sum != hex.EncodeToString(want[:]) {
				t.Fatalf("Sum %s, want %x", sum, want)
			}
		})
	}
	t.Run("error passes through", func(t *testing.T) {
		boom := errors.New("disk on fire")
		a := NewReader(io.MultiReader(bytes.NewReader(data[:readChunk+3]), iotest.ErrReader(boom)))
		if _, err := a.Sum(); !errors.Is(err, boom) {
			t.Fatalf("Sum error %v, want %v", err, boom)
		}
	})
}
