package staging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ccmirror/ccmirror/manifest"
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

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// A project whose source fails to build (its project.ini names another
// project) fails the install as soon as the build fails: the blobs after
// the source are not all read first.
func TestInstallStopsAtFailedBuild(t *testing.T) {
	e := newEnv(t)
	k, _ := testKeys(t)
	p := demoProject(t, "1.0.0", "one")
	src := demoSource("1.0.0", "one")
	src[0].body = strings.Replace(src[0].body, "name = demo", "name = other", 1)
	p.src = makeSource(t, "cyclecloud-demo-1.0.0", src)
	for i := range 20 {
		p.blobs[fmt.Sprintf("big-%02d.rpm", i)] = filler(fmt.Sprint("big", i), 1<<20)
	}
	bundle := makeBundle(t, []testProject{p}, k.signer)
	failed := make(chan struct{})
	e.sw.hook = func(point string) {
		switch {
		case point == "build-failed:demo":
			close(failed)
		case strings.HasPrefix(point, "payload:projects/demo/blobs/big-00"):
			<-failed // the build fails while the first blob is written
		}
	}
	cr := &countingReader{r: bytes.NewReader(bundle)}
	_, err := install(context.Background(), cr, "test.tar", e.opts, e.sw)
	if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), `project.ini names project "other"`) {
		t.Fatalf("err = %v, want the project.ini mismatch (ErrVerify)", err)
	}
	if cr.n > int64(len(bundle))/2 {
		t.Errorf("read %d of the bundle's %d bytes after the build failed", cr.n, len(bundle))
	}
}
