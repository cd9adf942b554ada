package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCheckedReaderChecksBeforeParsing: the signature check sees the raw
// head bytes before SHA256SUMS or manifest.json is parsed, so a bundle
// nobody vouched for is refused by the check, not by the parsers; and a
// bundle the check accepts is then parsed and cross-checked as before.
func TestCheckedReaderChecksBeforeParsing(t *testing.T) {
	t.Parallel()
	good := demoBundle().write(t, nil)
	errUntrusted := errors.New("untrusted")
	cases := []struct {
		name    string
		edit    func(es []rawEntry)
		wantErr string // when the check accepts
	}{
		{"valid", func([]rawEntry) {}, ""},
		{"manifest.json is not JSON", func(es []rawEntry) {
			es[1].body, es[1].hdr.Size = []byte("{not json"), 9
		}, "manifest.json"},
		{"SHA256SUMS is malformed", func(es []rawEntry) {
			es[0].body, es[0].hdr.Size = []byte("nonsense\n"), 9
		}, SumsName},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			es := rawEntries(t, good)
			tc.edit(es)
			b := buildTar(t, es)
			var gotSums []byte
			_, err := NewCheckedReader(bytes.NewReader(b), func(sums, sig []byte) error {
				gotSums = sums
				if sig != nil {
					t.Errorf("unsigned bundle: check got a signature")
				}
				return errUntrusted
			})
			if !errors.Is(err, errUntrusted) {
				t.Fatalf("refusing check: %v, want the check's error", err)
			}
			if !bytes.Equal(gotSums, es[0].body) {
				t.Errorf("check got %q, want the raw SHA256SUMS", gotSums)
			}
			rd, err := NewCheckedReader(bytes.NewReader(b), func(sums, sig []byte) error { return nil })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("accepting check: %v", err)
			case tc.wantErr == "" && rd.Manifest() == nil:
				t.Fatal("no manifest")
			case tc.wantErr != "" && (!isVerify(err) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("accepting check: %v, want ErrVerify naming %s", err, tc.wantErr)
			}
		})
	}
}

// TestValidateFolderOfAnother: a path that is the folder of another is
// found whatever sorts between them; shared blobs of many versions pass.
func TestValidateFolderOfAnother(t *testing.T) {
	t.Parallel()
	cases := []struct {
		paths []string
		p, q  string
	}{
		{paths: []string{"a", "a/b"}, p: "a", q: "a/b"},
		{paths: []string{"a", "a b/x", "a-b", "a.c", "a/c"}, p: "a", q: "a/c"},
		{paths: []string{"x/a", "x/a!/b", "x/a/b/c"}, p: "x/a", q: "x/a/b/c"},
		{paths: []string{"a/b", "a/c", "ab/c", "a b"}},
		{paths: []string{"only"}},
	}
	for _, tc := range cases {
		set := map[string]bool{}
		for _, p := range tc.paths {
			set[p] = true
		}
		p, q, ok := folderOfAnother(set)
		if ok != (tc.p != "") || p != tc.p || q != tc.q {
			t.Errorf("%q: got %q %q %v, want %q %q", tc.paths, p, q, ok, tc.p, tc.q)
		}
	}
}

// hostileManifest is large and shaped to make a quadratic check crawl:
// thousands of versions of one project sharing blobs declared late, and
// blob names nested hundreds of folders deep.
func hostileManifest(versions, deep int) *Manifest {
	m := &Manifest{Schema: Schema, Created: time.Unix(0, 0).UTC(), Tool: "t"}
	sum := strings.Repeat("a", 64)
	deepName := strings.TrimSuffix(strings.Repeat("d/", 500), "/")
	for i := range versions {
		v := fmt.Sprintf("1.%d", i)
		p := Project{Name: "p", Version: v, Source: File{Path: SourcePath("p", v), SHA256: sum}}
		p.Blobs = append(p.Blobs, Blob{Name: "own-" + v, Path: BlobPath("p", "own-"+v), SHA256: sum})
		if i >= versions/2 {
			p.Blobs = append(p.Blobs, Blob{Name: "shared", Path: BlobPath("p", "shared"), SHA256: sum})
		}
		if i < deep {
			n := fmt.Sprintf("%s/f%d", deepName, i)
			p.Blobs = append(p.Blobs, Blob{Name: n, Path: BlobPath("p", n), SHA256: sum})
		}
		m.Projects = append(m.Projects, p)
	}
	return m
}

func TestValidateHostileManifest(t *testing.T) {
	t.Parallel()
	m := hostileManifest(20000, 2000)
	if err := m.Validate(); err != nil {
		t.Fatalf("valid hostile manifest refused: %v", err)
	}
	m.Projects[len(m.Projects)-1].Blobs[1].Size = 1 // shared blob, other size
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("shared blob with another size: %v, want listed twice", err)
	}
}

// BenchmarkValidateHostile: go test -bench ValidateHostile ./manifest/
// (about 60 MiB of manifest.json).
func BenchmarkValidateHostile(b *testing.B) {
	m := hostileManifest(65000, 8000)
	js, _ := m.Marshal()
	b.SetBytes(int64(len(js)))
	for b.Loop() {
		if _, err := Parse(js); err != nil {
			b.Fatal(err)
		}
	}
}
