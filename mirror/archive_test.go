package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

type tarEntry struct {
	name, body, link string
	typ              byte
}

func makeTarGz(t testing.TB, entries []tarEntry) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": e.body}}
		} else if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestScanArchive(t *testing.T) {
	ini := "[project]\nname = x\nversion = 1.0\n"
	tests := []struct {
		name      string
		entries   []tarEntry
		wantTop   string
		wantBlobs []string
		wantErr   string
	}{
		{name: "github tag archive", entries: []tarEntry{
			{typ: tar.TypeXGlobalHeader, body: "0123abcd"},
			{name: "r-1.0/", typ: tar.TypeDir},
			{name: "r-1.0/blobs/", typ: tar.TypeDir},
			{name: "r-1.0/blobs/vnet.json", typ: tar.TypeReg, body: "{}"},
			{name: "r-1.0/blobs/sub/a.rpm", typ: tar.TypeReg, body: "a"},
			{name: "r-1.0/blobs/link", typ: tar.TypeSymlink, link: "/etc/passwd"},
			{name: "r-1.0/project.ini", typ: tar.TypeReg, body: ini},
			{name: "r-1.0/specs/default/cluster-init/files/project.ini", typ: tar.TypeReg, body: "not this one"},
		}, wantTop: "r-1.0", wantBlobs: []string{"sub/a.rpm", "vnet.json"}},
		{name: "project.ini a symlink", entries: []tarEntry{
			{name: "r-1.0/project.ini", typ: tar.TypeSymlink, link: "/etc/passwd"},
		}, wantErr: "no r-1.0/project.ini"},
		{name: "project.ini only deeper", entries: []tarEntry{
			{name: "r-1.0/sub/project.ini", typ: tar.TypeReg, body: ini},
		}, wantErr: "no r-1.0/project.ini"},
		{name: "empty", entries: nil, wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scanArchiveReader(context.Background(), bytes.NewReader(makeTarGz(t, tt.entries)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.top != tt.wantTop || string(s.projectINI) != ini {
				t.Errorf("top %q project.ini %q", s.top, s.projectINI)
			}
			var got []string
			for b := range s.blobs {
				got = append(got, b)
			}
			if len(got) != len(tt.wantBlobs) {
				t.Errorf("blobs %v, want %v", got, tt.wantBlobs)
			}
			for _, b := range tt.wantBlobs {
				if !s.blobs[b] {
					t.Errorf("blob %s not found", b)
				}
			}
		})
	}
	if _, err := scanArchiveReader(context.Background(), strings.NewReader("not gzip")); !errors.Is(err, manifest.ErrVerify) {
		t.Errorf("garbage archive: %v, want ErrVerify", err)
	}
}

func FuzzScanArchive(f *testing.F) {
	f.Add(makeTarGz(f, []tarEntry{
		{typ: tar.TypeXGlobalHeader, body: "c0ffee"},
		{name: "r-1/blobs/a", typ: tar.TypeReg, body: "x"},
		{name: "r-1/project.ini", typ: tar.TypeReg, body: "[project]\nname=x\nversion=1\n"},
	}))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := scanArchiveReader(context.Background(), bytes.NewReader(b))
		if err != nil {
			return
		}
		if s.projectINI == nil || s.top == "" {
			t.Fatalf("success without project.ini: %+v", s)
		}
		for name := range s.blobs {
			if !manifest.ValidBlobName(name) {
				t.Fatalf("unsafe blob name %q accepted", name)
			}
		}
	})
}

func FuzzRetryHeaders(f *testing.F) {
	f.Add(403, "0", "1700000000", "")
	f.Add(429, "", "", "120")
	f.Add(429, "", "", "Fri, 31 Dec 1999 23:59:59 GMT")
	f.Add(403, "0", "-99999999999999999", "-1")
	f.Add(429, "", "", "9227000000")
	f.Add(403, "0", "99999999999999999", "")
	f.Fuzz(func(t *testing.T, status int, remaining, reset, retry string) {
		resp := &httpResponse{status: status, h: map[string]string{"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": reset, "Retry-After": retry}}
		wait, _, limited := rateLimited(resp.build())
		if limited && (wait < 0 || wait > maxHeaderWait+2*time.Second) {
			t.Fatalf("wait %v out of range", wait)
		}
		if d, ok := retryAfter(resp.build()); ok && (d < 0 || d > maxHeaderWait) {
			t.Fatalf("Retry-After %q: wait %v out of range", retry, d)
		}
	})
}
