package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(map[bool]string{false: "unsigned", true: "signed"}[signed], func(t *testing.T) {
			tb := demoBundle()
			var signer *fakeSigner
			var s Signer
			if signed {
				signer = &fakeSigner{sig: fakeSig}
				s = signer
			}
			b := tb.write(t, s)

			br, err := NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			wantSums := []Sum{{ManifestName, hexSum(br.ManifestBytes())}}
			for _, f := range tb.m.Files() {
				wantSums = append(wantSums, Sum{f.Path, f.SHA256})
			}
			if got, want := string(br.Sums()), string(FormatSums(wantSums)); got != want {
				t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", got, want)
			}
			if signed {
				if !bytes.Equal(br.Signature(), fakeSig) {
					t.Errorf("Signature() = %q, want the signer's bytes", br.Signature())
				}
				if !bytes.Equal(signer.msg, br.Sums()) {
					t.Errorf("signer was given %q, want the SHA256SUMS bytes", signer.msg)
				}
			} else if br.Signature() != nil {
				t.Errorf("unsigned bundle has signature %q", br.Signature())
			}
			wantM, _ := tb.m.Marshal()
			if !bytes.Equal(br.ManifestBytes(), wantM) {
				t.Errorf("manifest.json differs:\n%s\nwant:\n%s", br.ManifestBytes(), wantM)
			}
			if gotM, _ := br.Manifest().Marshal(); !bytes.Equal(gotM, wantM) {
				t.Errorf("Manifest() differs from the written manifest")
			}
			var got []string
			for {
				p, err := br.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				data, err := io.ReadAll(p)
				if err != nil {
					t.Fatalf("read %s: %v", p.File.Path, err)
				}
				if !bytes.Equal(data, tb.data[p.File.Path]) {
					t.Errorf("%s: content differs", p.File.Path)
				}
				wantMode := tb.modes[p.File.Path]
				if wantMode == 0 {
					wantMode = 0o644
				}
				if p.Mode != wantMode {
					t.Errorf("%s: mode %#o, want %#o", p.File.Path, p.Mode, wantMode)
				}
				got = append(got, p.File.Path)
			}
			var want []string
			for _, f := range tb.m.Files() {
				want = append(want, f.Path)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("payload order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if _, err := br.Next(); err != io.EOF {
				t.Errorf("Next after the end = %v, want io.EOF", err)
			}
		})
	}
}

// The tar itself: plain regular entries in the documented order, owned by
// 0:0 without names, stamped with the manifest's creation time.
func TestWriteBundleTarHeaders(t *testing.T) {
	tb := demoBundle()
	tb.m.Created = time.Date(2024, 1, 2, 3, 4, 5, 999, time.FixedZone("X", 3600))
	b := tb.write(t, &fakeSigner{sig: fakeSig})
	tr := tar.NewReader(bytes.NewReader(b))
	want := []string{SumsName, SignatureName, ManifestName}
	for _, f := range tb.m.Files() {
		want = append(want, f.Path)
	}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d entries, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != want[i] {
			t.Errorf("entry %d is %s, want %s", i, h.Name, want[i])
		}
		if h.Typeflag != tar.TypeReg || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: type %q uid %d gid %d uname %q gname %q, want regular 0:0 without names",
				h.Name, h.Typeflag, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(time.Date(2024, 1, 2, 2, 4, 5, 0, time.UTC)) {
			t.Errorf("%s: mtime %v, want the manifest creation time to the second", h.Name, h.ModTime)
		}
		if h.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want USTAR for short names", h.Name, h.Format)
		}
	}
	if tail := b[len(b)-1024:]; !bytes.Equal(tail, make([]byte, 1024)) {
		t.Error("archive does not end with two zero blocks")
	}
}

func TestWriteBundleDeterministic(t *testing.T) {
	a := demoBundle().write(t, &fakeSigner{sig: fakeSig})
	b := demoBundle().write(t, &fakeSigner{sig: fakeSig})
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same bundle differ")
	}
}

func TestWriteBundleLongPath(t *testing.T) {
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("n", 200) + ".rpm"
	tb := newTestBundle("demo", "1.0.0", []byte("src"), map[string][]byte{long: []byte("long")})
	b := tb.write(t, nil)
	if err := readAll(bytes.NewReader(b)); err != nil {
		t.Fatalf("bundle with a %d-byte path rejected: %v", len(BlobPath("demo", long)), err)
	}
}

type errCloser struct {
	io.Reader
	err error
}

func (e errCloser) Close() error { return e.err }

func TestWriteBundleErrors(t *testing.T) {
	boom := errors.New("boom")
	open := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	blobPath := BlobPath("demo", "a.rpm")
	cases := []struct {
		name       string
		edit       func(tb *testBundle, es []Entry) []Entry
		ctx        func() context.Context
		signer     Signer
		want       string
		wantVerify bool
		wantIs     error
	}{
		{name: "invalid manifest", want: "schema",
			edit: func(tb *testBundle, es []Entry) []Entry { tb.m.Schema = "v0"; return es }},
		{name: "entry missing", want: "no entry given",
			edit: func(tb *testBundle, es []Entry) []Entry { return es[1:] }},
		{name: "entry not in manifest", want: "not declared",
			edit: func(tb *testBundle, es []Entry) []Entry {
				return append(es, Entry{Path: "projects/demo/blobs/zz", Open: open(nil), SHA256: hexSum(nil)})
			}},
		{name: "entry twice", want: "given twice",
			edit: func(tb *testBundle, es []Entry) []Entry { return append(es, es[0]) }},
		{name: "entry size differs from manifest", want: "manifest says",
			edit: func(tb *testBundle, es []Entry) []Entry { es[1].Size++; return es }},
		{name: "entry without Open", want: "no Open",
			edit: func(tb *testBundle, es []Entry) []Entry { es[1].Open = nil; return es }},
		{name: "bad mode", want: "mode",
			edit: func(tb *testBundle, es []Entry) []Entry { es[1].Mode = 0o4755; return es }},
		{name: "content differs from hash", want: "sha256", wantVerify: true,
			edit: func(tb *testBundle, es []Entry) []Entry {
				es[1].Open = open(bytes.Repeat([]byte("b"), int(es[1].Size)))
				return es
			}},
		{name: "content shorter", want: "bytes, want", wantVerify: true,
			edit: func(tb *testBundle, es []Entry) []Entry { es[1].Open = open([]byte("a")); return es }},
		{name: "content longer", want: "longer than", wantVerify: true,
			edit: func(tb *testBundle, es []Entry) []Entry {
				es[1].Open = open(bytes.Repeat([]byte("a"), int(es[1].Size)+1))
				return es
			}},
		{name: "open fails", want: blobPath, wantIs: boom,
			edit: func(tb *testBundle, es []Entry) []Entry {
				es[1].Open = func() (io.ReadCloser, error) { return nil, boom }
				return es
			}},
		{name: "read fails", want: blobPath, wantIs: boom,
			edit: func(tb *testBundle, es []Entry) []Entry {
				es[1].Open = func() (io.ReadCloser, error) { return errCloser{Reader: errReader{boom}}, nil }
				return es
			}},
		{name: "close fails", want: blobPath, wantIs: boom,
			edit: func(tb *testBundle, es []Entry) []Entry {
				b := tb.data[es[1].Path]
				es[1].Open = func() (io.ReadCloser, error) { return errCloser{bytes.NewReader(b), boom}, nil }
				return es
			}},
		{name: "signer fails", want: "sign SHA256SUMS", wantIs: boom, signer: &fakeSigner{err: boom}},
		{name: "signer returns nothing", want: "signature is 0 bytes", signer: &fakeSigner{}},
		{name: "context cancelled", wantIs: context.Canceled,
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := demoBundle()
			es := tb.entries()
			if es[1].Path != blobPath {
				t.Fatalf("entry 1 is %s, test expects %s", es[1].Path, blobPath)
			}
			if c.edit != nil {
				es = c.edit(tb, es)
			}
			ctx := context.Background()
			if c.ctx != nil {
				ctx = c.ctx()
			}
			err := WriteBundle(ctx, io.Discard, tb.m, es, c.signer)
			if err == nil {
				t.Fatal("WriteBundle succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if isVerify(err) != c.wantVerify {
				t.Errorf("errors.Is(err, ErrVerify) = %v, want %v (%v)", isVerify(err), c.wantVerify, err)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Errorf("error %v does not wrap %v", err, c.wantIs)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// A caller that reads exactly Size bytes (io.ReadFull) must still learn
// about a hash mismatch: the Read delivering the last byte reports it.
func TestPayloadReportsMismatchOnLastByte(t *testing.T) {
	good := demoBundle().write(t, nil)
	es := rawEntries(t, good)
	i := payloadStart(t, es) + 1 // a.rpm
	es[i].body = bytes.Repeat([]byte("b"), len(es[i].body))
	br, err := NewReader(bytes.NewReader(buildTar(t, es)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.Next(); err != nil {
		t.Fatal(err)
	}
	p, err := br.Next()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, p.File.Size)
	_, err = io.ReadFull(p, buf)
	if !isVerify(err) || !strings.Contains(err.Error(), p.File.Path) {
		t.Fatalf("ReadFull of the whole payload = %v, want ErrVerify naming %s", err, p.File.Path)
	}
	if _, err2 := br.Next(); !isVerify(err2) {
		t.Fatalf("Next after a failed payload = %v, want the ErrVerify error again", err2)
	}
}

// Skipping payloads (calling Next without reading) still verifies them.
func TestNextVerifiesSkippedPayloads(t *testing.T) {
	good := demoBundle().write(t, nil)
	br, err := NewReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next on a valid bundle: %v", err)
		}
		n++
	}
	if n != len(demoBundle().m.Files()) {
		t.Fatalf("saw %d payloads, want %d", n, len(demoBundle().m.Files()))
	}

	es := rawEntries(t, good)
	i := payloadStart(t, es) + 1
	es[i].body = bytes.Repeat([]byte("b"), len(es[i].body))
	br, err = NewReader(bytes.NewReader(buildTar(t, es)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err = br.Next()
		if err != nil {
			break
		}
	}
	if !isVerify(err) || !strings.Contains(err.Error(), es[i].hdr.Name) {
		t.Fatalf("skipping a corrupt payload: %v, want ErrVerify naming %s", err, es[i].hdr.Name)
	}
	if _, err2 := br.Next(); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("error is not sticky: %v then %v", err, err2)
	}
}

// Reading a bundle from a stream (a USB stick, a pipe from Azure) must not
// hold a payload in memory.
func TestStreamingMemoryIsFlat(t *testing.T) {
	const size = 64 << 20
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(zeros{}, size)); err != nil {
		t.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	tb := newTestBundle("big", "1.0.0", []byte("src"), map[string][]byte{"small.rpm": []byte("x")})
	p := &tb.m.Projects[0]
	p.Blobs = append(p.Blobs, Blob{Name: "huge.bin", Path: BlobPath("big", "huge.bin"), Size: size, SHA256: sum})
	entries := tb.entries()
	for i := range entries {
		if entries[i].Path == BlobPath("big", "huge.bin") {
			entries[i].Open = func() (io.ReadCloser, error) { return io.NopCloser(io.LimitReader(zeros{}, size)), nil }
		}
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteBundle(context.Background(), pw, tb.m, entries, nil)) }()
	var total int64
	br, err := NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, p)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	runtime.ReadMemStats(&after)
	if total < size {
		t.Fatalf("read %d payload bytes, want at least %d", total, size)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("streamed %d MiB, allocated %d KiB", total>>20, alloc>>10)
	if alloc > 8<<20 {
		t.Fatalf("writing and reading a %d MiB payload allocated %d MiB", size>>20, alloc>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
