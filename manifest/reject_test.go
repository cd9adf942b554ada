package manifest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// rejectCase turns a valid bundle into a hostile or broken one. mutate gets
// the bundle's entries and returns the new entries plus the entry name the
// error must mention ("" when none); raw, when set, edits the final bytes.
type rejectCase struct {
	name   string
	vector string // file name under testdata/bundle-v1/bad/ ("" = not a vector)
	mutate func(t testing.TB, es []rawEntry) ([]rawEntry, string)
	raw    func(b []byte) []byte
	want   string // substring of the error
}

func lastPayload(es []rawEntry) *rawEntry { return &es[len(es)-1] }

func insertAt(es []rawEntry, i int, e rawEntry) []rawEntry {
	out := append([]rawEntry{}, es[:i]...)
	out = append(out, e)
	return append(out, es[i:]...)
}

// rewriteSums replaces SHA256SUMS (entry 0) by edit(old lines).
func rewriteSums(es []rawEntry, edit func(lines []string) []string) {
	lines := strings.Split(strings.TrimSuffix(string(es[0].body), "\n"), "\n")
	body := []byte(strings.Join(edit(lines), "\n") + "\n")
	es[0].body, es[0].hdr.Size = body, int64(len(body))
}

var rejectCases = []rejectCase{
	{name: "symlink payload", vector: "symlink.tar", want: "symbolic link",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			p := lastPayload(es)
			p.hdr.Typeflag, p.hdr.Linkname, p.hdr.Size, p.body = tar.TypeSymlink, "/etc/shadow", 0, nil
			return es, p.hdr.Name
		}},
	{name: "hard link payload", want: "hard link",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			p := lastPayload(es)
			p.hdr.Typeflag, p.hdr.Linkname, p.hdr.Size, p.body = tar.TypeLink, SumsName, 0, nil
			return es, p.hdr.Name
		}},
	{name: "directory entry", want: "directory",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			d := rawEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "projects/", Mode: 0o755}}
			return insertAt(es, payloadStart(t, es), d), "projects/"
		}},
	{name: "device entry", want: "device",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			d := rawEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "projects/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}
			return insertAt(es, payloadStart(t, es), d), "projects/null"
		}},
	{name: "fifo entry", want: "FIFO",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			d := rawEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "projects/fifo", Mode: 0o644}}
			return insertAt(es, payloadStart(t, es), d), "projects/fifo"
		}},
	{name: "pax global header", want: "pax global header",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			g := rawEntry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
				PAXRecords: map[string]string{"comment": "x"}}}
			return insertAt(es, 0, g), ""
		}},
	{name: "absolute path", vector: "absolute-path.tar", want: "absolute path",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return insertAt(es, payloadStart(t, es), regular("/etc/cron.d/evil", []byte("x"))), "/etc/cron.d/evil"
		}},
	{name: "dot-dot path", vector: "dotdot-path.tar", want: "leaves the bundle",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return insertAt(es, payloadStart(t, es), regular("projects/../../evil", []byte("x"))), "projects/../../evil"
		}},
	{name: "unclean path", want: "not a clean path",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return insertAt(es, payloadStart(t, es), regular("projects/./x", []byte("x"))), "projects/./x"
		}},
	{name: "duplicate payload", vector: "duplicate.tar", want: "duplicate",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			p := *lastPayload(es)
			return append(es, p), p.hdr.Name
		}},
	{name: "unlisted payload at the end", vector: "unlisted.tar", want: "not listed in SHA256SUMS",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return append(es, regular("projects/extra/blobs/extra.rpm", []byte("extra"))), "projects/extra/blobs/extra.rpm"
		}},
	{name: "unlisted payload first", want: "not listed in SHA256SUMS",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return insertAt(es, payloadStart(t, es), regular("projects/a", []byte("x"))), "projects/a"
		}},
	{name: "missing payload", vector: "missing.tar", want: "bundle ends before",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return es[:len(es)-1], lastPayload(es).hdr.Name
		}},
	{name: "payload out of order", vector: "reordered.tar", want: "out of order",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			i := payloadStart(t, es)
			es[i], es[i+1] = es[i+1], es[i]
			return es, es[i].hdr.Name
		}},
	{name: "manifest.json first", vector: "sums-not-first.tar", want: "comes first, want SHA256SUMS",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			i := payloadStart(t, es) - 1
			es[0], es[i] = es[i], es[0]
			return es, ManifestName
		}},
	{name: "no SHA256SUMS", want: "comes first, want SHA256SUMS",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return es[1:], ManifestName
		}},
	{name: "payload before manifest.json", want: "where manifest.json belongs",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			i := payloadStart(t, es)
			es[i-1], es[i] = es[i], es[i-1]
			return es, es[i-1].hdr.Name
		}},
	{name: "signature after manifest.json", want: "out of place",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return insertAt(es, payloadStart(t, es), regular(SignatureName, fakeSig)), SignatureName
		}},
	{name: "SHA256SUMS twice", want: "out of place",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return append(es, es[0]), SumsName
		}},
	{name: "ends after SHA256SUMS", want: "ends before manifest.json",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return es[:1], ""
		}},
	{name: "empty signature", want: "is empty",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			return insertAt(es, 1, regular(SignatureName, nil)), SignatureName
		}},
	{name: "size differs from manifest", vector: "size-mismatch.tar", want: "manifest says",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			p := lastPayload(es)
			p.body = append(append([]byte{}, p.body...), '!')
			p.hdr.Size++
			return es, p.hdr.Name
		}},
	{name: "hash mismatch", vector: "hash-mismatch.tar", want: "sha256",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			i := payloadStart(t, es)
			for ; i < len(es) && len(es[i].body) == 0; i++ {
			}
			es[i].body = append([]byte{}, es[i].body...)
			es[i].body[len(es[i].body)/2] ^= 0x20
			return es, es[i].hdr.Name
		}},
	{name: "manifest.json differs from SHA256SUMS", vector: "manifest-mismatch.tar", want: "manifest.json: sha256",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			m := &es[payloadStart(t, es)-1]
			m.body = bytes.Replace(m.body, []byte(`"tool": "`), []byte(`"tool": "X`), 1)
			m.hdr.Size = int64(len(m.body))
			return es, ManifestName
		}},
	{name: "SHA256SUMS lists an undeclared file", want: "does not declare",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			rewriteSums(es, func(l []string) []string {
				return append(l, strings.Repeat("0", 64)+"  zzz/extra")
			})
			return es, "zzz/extra"
		}},
	{name: "SHA256SUMS misses a declared file", want: "does not list",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			var gone string
			rewriteSums(es, func(l []string) []string {
				gone = l[len(l)-1][66:]
				return l[:len(l)-1]
			})
			return es, gone
		}},
	{name: "SHA256SUMS hash differs from manifest.json", want: "in SHA256SUMS",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			var p string
			rewriteSums(es, func(l []string) []string {
				last := l[len(l)-1]
				p = last[66:]
				l[len(l)-1] = strings.Repeat("0", 64) + last[64:]
				return l
			})
			return es, p
		}},
	{name: "SHA256SUMS upper-case hex", want: "lower-case hex",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			rewriteSums(es, func(l []string) []string {
				l[0] = strings.ToUpper(l[0][:64]) + l[0][64:]
				return l
			})
			return es, ""
		}},
	{name: "manifest.json not JSON", want: "manifest.json",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			m := &es[payloadStart(t, es)-1]
			m.body, m.hdr.Size = []byte("{"), 1
			rewriteSums(es, func(l []string) []string {
				for i := range l {
					if strings.HasSuffix(l[i], "  "+ManifestName) {
						l[i] = hexSum([]byte("{")) + "  " + ManifestName
					}
				}
				return l
			})
			return es, ""
		}},
	{name: "SHA256SUMS over the size limit", want: "limit",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			h := es[0].hdr
			h.Size = MaxSumsSize + 1
			return []rawEntry{{hdr: h, headerOnly: true}}, SumsName
		}},
	{name: "signature over the size limit", want: "limit",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			h := es[0].hdr
			h.Name, h.Size = SignatureName, MaxSignatureSize+1
			return []rawEntry{es[0], {hdr: h, headerOnly: true}}, SignatureName
		}},
	{name: "manifest.json over the size limit", want: "limit",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			h := es[0].hdr
			h.Name, h.Size = ManifestName, MaxManifestSize+1
			return []rawEntry{es[0], {hdr: h, headerOnly: true}}, ManifestName
		}},
	{name: "setuid payload", want: "mode",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			p := lastPayload(es)
			p.hdr.Mode = 0o4755
			return es, p.hdr.Name
		}},
	{name: "sparse payload", want: "sparse",
		mutate: func(t testing.TB, es []rawEntry) ([]rawEntry, string) {
			p := lastPayload(es)
			p.rawPAX = map[string]string{"GNU.sparse.major": "0", "GNU.sparse.minor": "1",
				"GNU.sparse.numblocks": "1", "GNU.sparse.size": fmt.Sprint(p.hdr.Size), "GNU.sparse.map": "0," + fmt.Sprint(p.hdr.Size)}
			return es, p.hdr.Name
		}},
	{name: "non-zero data after the archive", vector: "trailing-garbage.tar", want: "after the end of the tar archive",
		raw: func(b []byte) []byte { return append(b, "rm -rf /\n"...) }},
	{name: "header after the end marker", want: "after the end of the tar archive",
		raw: func(b []byte) []byte { return append(b, regularTar("late", "x")...) }},
	{name: "too much zero padding", want: "after the end of the tar archive",
		raw: func(b []byte) []byte { return append(b, make([]byte, maxTrailer+4096)...) }},
	{name: "truncated inside a payload", vector: "truncated.tar", want: "truncated",
		raw: func(b []byte) []byte { return b[:len(b)-1024-512+3] }}, // 3 bytes into the last payload
	{name: "truncated inside a header", want: "truncated",
		raw: func(b []byte) []byte {
			h, _ := tar.NewReader(bytes.NewReader(b)).Next()
			return b[:512+(h.Size+511)/512*512+100] // 100 bytes into the second header
		}},
	{name: "truncated inside padding", want: "bundle ends before",
		raw: func(b []byte) []byte {
			h, _ := tar.NewReader(bytes.NewReader(b)).Next()
			return b[:512+h.Size+1] // SHA256SUMS complete, its padding cut
		}},
	{name: "empty file", want: "empty",
		raw: func(b []byte) []byte { return nil }},
	{name: "only the end marker", want: "empty",
		raw: func(b []byte) []byte { return make([]byte, 1024) }},
	{name: "not a tar", want: "verification failed",
		raw: func(b []byte) []byte { return bytes.Repeat([]byte("PK\x03\x04 zip, not tar "), 100) }},
}

// regularTar is a one-file tar without end marker.
func regularTar(name, body string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644})
	_, _ = tw.Write([]byte(body))
	_ = tw.Flush()
	return buf.Bytes()
}

// applyReject builds the hostile variant of a valid bundle.
func applyReject(t testing.TB, c rejectCase, good []byte) ([]byte, string) {
	t.Helper()
	b, name := good, ""
	if c.mutate != nil {
		var es []rawEntry
		es, name = c.mutate(t, rawEntries(t, good))
		b = buildTar(t, es)
	}
	if c.raw != nil {
		b = c.raw(append([]byte{}, b...))
	}
	return b, name
}

func TestReaderRejects(t *testing.T) {
	good := demoBundle().write(t, nil)
	if err := readAll(bytes.NewReader(good)); err != nil {
		t.Fatalf("valid bundle rejected: %v", err)
	}
	for _, c := range rejectCases {
		t.Run(c.name, func(t *testing.T) {
			b, name := applyReject(t, c, good)
			err := readAll(bytes.NewReader(b))
			if err == nil {
				t.Fatal("bundle accepted")
			}
			if !isVerify(err) {
				t.Fatalf("error does not wrap ErrVerify: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if name != "" && !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name entry %q", err, name)
			}
		})
	}
}

// A failing disk or network is not a bad bundle: its error passes through
// without ErrVerify, wherever the stream breaks.
func TestReaderSourceErrorIsNotVerify(t *testing.T) {
	good := demoBundle().write(t, &fakeSigner{sig: fakeSig})
	boom := errors.New("disk on fire")
	for _, cut := range []int{0, 100, 600, 1500, len(good) / 2, len(good) - 700, len(good) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			r := io.MultiReader(bytes.NewReader(good[:cut]), iotest.ErrReader(boom))
			err := readAll(r)
			if !errors.Is(err, boom) {
				t.Fatalf("got %v, want the source error", err)
			}
			if isVerify(err) {
				t.Fatalf("source error reported as verification failure: %v", err)
			}
		})
	}
}
