package asynchash

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
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
