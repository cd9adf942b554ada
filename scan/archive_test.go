package scan

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/scan/scantest"
)

func archiveTargets(as *ArchiveScan) []string {
	var out []string
	for _, f := range as.Findings {
		out = append(out, fmt.Sprintf("%s %s %s:%d", f.Kind, f.Target, f.File, f.Line))
	}
	return out
}

// TestScanArchiveFormats reads the same script from a tar, a tar.gz, a
// tgz and a zip blob, from a stream and (zip) from a file-like reader.
func TestScanArchiveFormats(t *testing.T) {
	files := map[string][]byte{"pkg/install.sh": []byte("#!/bin/bash\npip install wheel\n")}
	tgz := scantest.TarGz(files, nil)
	zr, _ := gzip.NewReader(bytes.NewReader(tgz))
	plain, _ := io.ReadAll(zr)
	zip := scantest.Zip(files)
	for _, tc := range []struct {
		name string
		data []byte
		r    io.Reader
	}{
		{"x.tar", plain, nil},
		{"x.tar.gz", tgz, nil},
		{"x.TGZ", tgz, nil},
		{"x.zip", zip, nil},
		{"x.zip", zip, bytes.NewReader(zip)}, // an io.ReaderAt: read in place
	} {
		r := tc.r
		if r == nil {
			r = io.MultiReader(bytes.NewReader(tc.data)) // a plain stream
		}
		as, err := ScanArchive(context.Background(), tc.name, r, int64(len(tc.data)), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := []string{"pip wheel blobs/" + tc.name + "!pkg/install.sh:2"}
		if got := archiveTargets(as); !reflect.DeepEqual(got, want) || as.Incomplete {
			t.Errorf("%s: %v (incomplete %v, notes %v), want %v", tc.name, got, as.Incomplete, as.Notes, want)
		}
	}
	if as, err := ScanArchive(context.Background(), "x.rpm", bytes.NewReader(tgz), -1, Limits{}); err != nil || len(as.Findings) != 0 {
		t.Errorf("a blob that is no archive: %v %+v", err, as)
	}
}

// rawTar builds a tar with arbitrary headers.
func rawTar(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := []byte(h.Linkname)
		if h.Typeflag == tar.TypeReg {
			body = []byte(h.Uname) // the content rides in Uname
			h.Size = int64(len(body))
			h.Uname = ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// TestScanArchiveHostile: links are never followed, climbing names are
// skipped, and every limit is reported as a note.
func TestScanArchiveHostile(t *testing.T) {
	ctx := context.Background()
	script := "pip install wheel\n"
	data := rawTar(t,
		tar.Header{Typeflag: tar.TypeSymlink, Name: "a/link.sh", Linkname: "/etc/passwd"},
		tar.Header{Typeflag: tar.TypeLink, Name: "a/hard.sh", Linkname: "a/ok.sh"},
		tar.Header{Typeflag: tar.TypeReg, Name: "../../escape.sh", Uname: "pip install escaped\n"},
		tar.Header{Typeflag: tar.TypeReg, Name: "/abs/ok.sh", Uname: script},
		tar.Header{Typeflag: tar.TypeFifo, Name: "a/fifo.sh"},
	)
	as, err := ScanArchive(ctx, "h.tar", bytes.NewReader(data), -1, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := archiveTargets(as); !reflect.DeepEqual(got, []string{"pip wheel blobs/h.tar!abs/ok.sh:1"}) {
		t.Errorf("findings %v", got)
	}
	if len(as.Notes) != 1 || as.Notes[0] != "blobs/h.tar: 2 links inside, not followed" || as.Incomplete {
		t.Errorf("notes %v incomplete %v", as.Notes, as.Incomplete)
	}

	many := func(n int, body string) []byte {
		var hs []tar.Header
		for i := 0; i < n; i++ {
			hs = append(hs, tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("s%d.sh", i), Uname: body})
		}
		return rawTar(t, hs...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		lim  Limits
		note string
	}{
		{"entries", many(10, script), Limits{MaxArchiveEntries: 3}, "more than 3 entries"},
		{"bytes", many(10, strings.Repeat("# padding\n", 100)), Limits{MaxArchiveBytes: 4096}, "more than 4096 bytes decompressed"},
		{"file size", many(1, strings.Repeat("# padding\n", 100)+script), Limits{MaxFileSize: 500}, "s0.sh: 1018 bytes, only the first 500 scanned"},
		{"line length", many(1, strings.Repeat("x", 300)+"\n"+script), Limits{MaxLineLength: 100}, "s0.sh:1: line longer than 100 bytes"},
		{"findings", many(5, script+"pip install b\n"), Limits{MaxFindings: 3}, "more than 3 findings"},
		{"corrupt", []byte("definitely not a tar archive, but long enough to hold a header........" + strings.Repeat("!", 600)), Limits{}, "not a readable tar archive"},
	} {
		as, err := ScanArchive(ctx, "l.tar", bytes.NewReader(tc.data), -1, tc.lim)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !as.Incomplete || !strings.Contains(strings.Join(as.Notes, "\n"), tc.note) {
			t.Errorf("%s: incomplete %v, notes %v, want one with %q", tc.name, as.Incomplete, as.Notes, tc.note)
		}
	}
	// Notes are bounded too: a tree of links.
	links := map[string]string{}
	for i := 0; i < 3*maxNotes; i++ {
		links[fmt.Sprintf("top/specs/default/cluster-init/files/l%04d", i)] = "/etc/passwd"
	}
	p, err := ScanTree(ctx, "x", "1", TagArchive(bytes.NewReader(scantest.TarGz(nil, links))), Limits{})
	if err != nil || len(p.Notes) != maxNotes+1 || !strings.HasPrefix(p.Notes[maxNotes], "more than 200 notes") {
		t.Errorf("%v: %d notes, last %q", err, len(p.Notes), p.Notes[len(p.Notes)-1])
	}

	// The line after a long one is still scanned.
	as, _ = ScanArchive(ctx, "l.tar", bytes.NewReader(many(1, strings.Repeat("x", 300)+"\n"+script)), -1, Limits{MaxLineLength: 100})
	if len(as.Findings) != 1 || as.Findings[0].Line != 2 {
		t.Errorf("after a long line: %+v", as.Findings)
	}
}

// errAfter fails with err after n bytes.
type errAfter struct {
	r   io.Reader
	n   int
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	if len(p) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

// TestScanArchiveSourceError: a failure of the reader itself (a bundle
// payload failing its hash) ends the scan with that error, it is not a
// damaged archive.
func TestScanArchiveSourceError(t *testing.T) {
	tgz := scantest.TarGz(map[string][]byte{"a.sh": bytes.Repeat([]byte("pip install x\n"), 2000)}, nil)
	for _, name := range []string{"x.tar.gz", "x.zip"} {
		data := tgz
		if name == "x.zip" {
			data = scantest.Zip(map[string][]byte{"a.sh": []byte("pip install x\n")})
		}
		_, err := ScanArchive(context.Background(), name, &errAfter{bytes.NewReader(data), len(data) / 2, manifest.ErrVerify}, -1, Limits{})
		if !errors.Is(err, manifest.ErrVerify) {
			t.Errorf("%s: %v, want the reader's ErrVerify", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanArchive(ctx, "x.tar.gz", bytes.NewReader(tgz), -1, Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

// TestTagArchive strips the top folder, skips the pax header, and marks
// links.
func TestTagArchive(t *testing.T) {
	p := scantest.Slurm4()
	var paths, skipped []string
	err := TagArchive(bytes.NewReader(p.TagArchive())).Walk(context.Background(), func(e Entry) error {
		if e.Skip != "" {
			skipped = append(skipped, e.Path+" "+e.Skip)
		} else {
			paths = append(paths, e.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(p.Source) || !reflect.DeepEqual(skipped, []string{"specs/default/cluster-init/files/hosts symbolic link"}) {
		t.Errorf("paths %v skipped %v", paths, skipped)
	}
	for _, pth := range paths {
		if _, ok := p.Source[pth]; !ok {
			t.Errorf("unexpected path %s", pth)
		}
	}
	if err := TagArchive(strings.NewReader("nope")).Walk(context.Background(), func(Entry) error { return nil }); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("not gzip: %v", err)
	}
}

// BenchmarkScanArchive scans a slurm-sized install archive: 500 scripts
// and 32 MiB of incompressible wheels.
func BenchmarkScanArchive(b *testing.B) {
	files := map[string][]byte{}
	for i := 0; i < 500; i++ {
		files[fmt.Sprintf("pkg/scripts/s%03d.sh", i)] = []byte(strings.Repeat("# setup\nexport A=1\n", 50) + "dnf install -y munge\ncurl -fsSL https://packages.microsoft.com/config/rhel/9/x.rpm -o /tmp/x.rpm\npip install wheel\n")
	}
	noise := make([]byte, 32<<20)
	for i := range noise {
		noise[i] = byte(i*2654435761>>13) ^ byte(i>>7)
	}
	files["pkg/packages/big-1.0-py3-none-any.whl"] = noise
	data := scantest.TarGz(files, nil)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		as, err := ScanArchive(context.Background(), "x.tar.gz", bytes.NewReader(data), int64(len(data)), Limits{})
		if err != nil || len(as.Findings) != 1500 {
			b.Fatalf("%v, %d findings", err, len(as.Findings))
		}
	}
}
