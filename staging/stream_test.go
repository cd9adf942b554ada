package staging

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// failAfter accepts n bytes, then fails every write.
type failAfter struct {
	n   int
	got int
}

var errDiskFull = errors.New("disk full")

func (w *failAfter) Write(p []byte) (int, error) {
	if w.got+len(p) > w.n {
		return 0, errDiskFull
	}
	w.got += len(p)
	return len(p), nil
}

func TestPipeCopy(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: several buffers
	errBad := errors.New("sha256 mismatch")
	bufs := func() [][]byte { return [][]byte{make([]byte, 1<<20), make([]byte, 1<<20), make([]byte, 1<<20)} }
	for _, tc := range []struct {
		name    string
		r       io.Reader
		w       io.Writer
		wantErr error
		wantN   int64
	}{
		{"whole", bytes.NewReader(data), &bytes.Buffer{}, nil, int64(len(data))},
		{"small reads", iotest.HalfReader(bytes.NewReader(data)), &bytes.Buffer{}, nil, int64(len(data))},
		{"empty", bytes.NewReader(nil), &bytes.Buffer{}, nil, 0},
		{"reader fails at the end", io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errBad)), &bytes.Buffer{}, errBad, int64(len(data))},
		{"writer fails", bytes.NewReader(data), &failAfter{n: 2 << 20}, errDiskFull, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := pipeCopy(tc.w, tc.r, bufs())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantN >= 0 && n != tc.wantN {
				t.Errorf("n = %d, want %d", n, tc.wantN)
			}
			if b, ok := tc.w.(*bytes.Buffer); ok && tc.wantErr == nil && !bytes.Equal(b.Bytes(), data[:n]) {
				t.Error("the bytes written differ from the bytes read")
			}
			if f, ok := tc.w.(*failAfter); ok && f.got != 2<<20 {
				t.Errorf("writer got %d bytes before failing, want %d", f.got, 2<<20)
			}
		})
	}
}
