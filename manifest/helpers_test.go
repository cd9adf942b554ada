package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeSigner returns fixed bytes; signature checking belongs to manifest/trust.
type fakeSigner struct {
	sig []byte
	err error
	msg []byte // last message signed
}

func (s *fakeSigner) Sign(msg []byte) ([]byte, error) {
	s.msg = append([]byte(nil), msg...)
	return s.sig, s.err
}

var fakeSig = []byte("-----BEGIN SSH SIGNATURE-----\nZmFrZSBzaWduYXR1cmUgZm9yIHRlc3Rz\n-----END SSH SIGNATURE-----\n")

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testBundle is a manifest plus the bytes of every payload file.
type testBundle struct {
	m     *Manifest
	data  map[string][]byte
	modes map[string]int64
}

// newTestBundle builds a one-project bundle with the given source bytes and
// blobs (name -> content).
func newTestBundle(name, version string, source []byte, blobs map[string][]byte) *testBundle {
	tb := &testBundle{data: map[string][]byte{}, modes: map[string]int64{}}
	p := Project{
		Name:       name,
		Version:    version,
		Repository: "example/cyclecloud-" + name,
		Tag:        version,
		Commit:     strings.Repeat("ab", 20),
		ReleaseURL: "https://github.com/example/cyclecloud-" + name + "/releases/tag/" + version,
		Source: File{
			Path:   SourcePath(name, version),
			Size:   int64(len(source)),
			SHA256: hexSum(source),
			URL:    "https://github.com/example/cyclecloud-" + name + "/archive/refs/tags/" + version + ".tar.gz",
		},
		Blobs: []Blob{},
	}
	tb.data[p.Source.Path] = source
	names := make([]string, 0, len(blobs))
	for n := range blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := Blob{
			Name:    n,
			Path:    BlobPath(name, n),
			Size:    int64(len(blobs[n])),
			SHA256:  hexSum(blobs[n]),
			URL:     "https://github.com/example/cyclecloud-" + name + "/releases/download/" + version + "/" + n,
			Release: version,
			Origin:  "release",
			Digest:  "sha256:" + hexSum(blobs[n]),
		}
		p.Blobs = append(p.Blobs, b)
		tb.data[b.Path] = blobs[n]
	}
	tb.m = &Manifest{
		Schema:   Schema,
		Created:  time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Tool:     "ccmirror test",
		Projects: []Project{p},
	}
	return tb
}

// demoBundle has a source, a blob in a sub-folder, an executable blob and
// an empty blob.
func demoBundle() *testBundle {
	tb := newTestBundle("demo", "1.0.0", []byte("pretend this is a gzip tar\n"), map[string][]byte{
		"a.rpm":     bytes.Repeat([]byte("a"), 3000),
		"sub/b.rpm": []byte("bee\n"),
		"run.sh":    []byte("#!/bin/sh\necho hi\n"),
		"empty.txt": {},
	})
	tb.modes[BlobPath("demo", "run.sh")] = 0o755
	return tb
}

func (tb *testBundle) entries() []Entry {
	var es []Entry
	for _, f := range tb.m.Files() {
		b := tb.data[f.Path]
		es = append(es, Entry{
			Path: f.Path, Size: f.Size, SHA256: f.SHA256, Mode: tb.modes[f.Path],
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		})
	}
	return es
}

func (tb *testBundle) write(t testing.TB, signer Signer) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteBundle(context.Background(), &buf, tb.m, tb.entries(), signer); err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	return buf.Bytes()
}

// rawEntry is one tar entry of a hand-built (possibly hostile) bundle.
type rawEntry struct {
	hdr        tar.Header
	body       []byte
	headerOnly bool              // write only the header, then stop the archive
	rawPAX     map[string]string // emit these PAX records verbatim (archive/tar refuses GNU.sparse.*)
}

// rawEntries splits a tar into its entries.
func rawEntries(t testing.TB, b []byte) []rawEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []rawEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("split tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("split tar: %v", err)
		}
		out = append(out, rawEntry{hdr: tar.Header{
			Typeflag: h.Typeflag, Name: h.Name, Linkname: h.Linkname, Size: h.Size,
			Mode: h.Mode, ModTime: h.ModTime, PAXRecords: h.PAXRecords,
		}, body: body})
	}
}

// buildTar writes entries as a tar archive with its end marker.
func buildTar(t testing.TB, es []rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		if e.rawPAX != nil {
			if err := tw.Flush(); err != nil {
				t.Fatalf("build tar: %v", err)
			}
			buf.Write(paxHeaderBlock(t, e.rawPAX))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("build tar: %s: %v", h.Name, err)
		}
		if e.headerOnly {
			_ = tw.Flush() // fails (body missing); the header is out
			return buf.Bytes()
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("build tar: %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("build tar: %v", err)
	}
	return buf.Bytes()
}

func regular(name string, body []byte) rawEntry {
	return rawEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644,
		ModTime: time.Unix(1700000000, 0)}, body: body}
}

// readAll reads a whole bundle as a verifier would, returning the first error.
func readAll(r io.Reader) error {
	br, err := NewReader(r)
	if err != nil {
		return err
	}
	for {
		p, err := br.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return err
		}
	}
}

// payloadStart is the index of the first payload entry (after manifest.json).
func payloadStart(t testing.TB, es []rawEntry) int {
	t.Helper()
	for i, e := range es {
		if e.hdr.Name == ManifestName {
			return i + 1
		}
	}
	t.Fatal("no manifest.json entry")
	return 0
}

func isVerify(err error) bool { return errors.Is(err, ErrVerify) }

// paxHeaderBlock encodes a PAX extended header ('x') by hand.
func paxHeaderBlock(t testing.TB, records map[string]string) []byte {
	t.Helper()
	var body []byte
	for _, k := range slices.Sorted(maps.Keys(records)) {
		rec := " " + k + "=" + records[k] + "\n"
		n := len(rec)
		for len(strconv.Itoa(n))+len(rec) != n {
			n = len(strconv.Itoa(n)) + len(rec)
		}
		body = append(body, strconv.Itoa(n)+rec...)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/x", Size: int64(len(body)), Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b[:512] {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}
