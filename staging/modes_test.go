package staging

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ccmirror/ccmirror/manifest"
)

// TestModesArePolicy: a signed bundle whose tar headers (not covered by the
// signature) say 0777, and whose signed source archive asks for
// world-writable, setuid and setgid files and folders, stages blobs 0644,
// files 0755 or 0644 and folders 0755; a setuid header on a payload entry is
// refused.
func TestModesArePolicy(t *testing.T) {
	t.Parallel()
	k, _ := testKeys(t)
	p := demoProject(t, "1.0.0", "one")
	src := demoSource("1.0.0", "one")
	for i := range src {
		switch src[i].mode {
		case 0o755:
			src[i].mode = 0o4777
		case 0o644:
			src[i].mode = 0o2666
		}
	}
	src = append(src, srcEntry{name: "specs/default/cluster-init/files/private", mode: 0o600, body: "p\n"},
		srcEntry{name: "specs/default/cluster-init/files/sticky", mode: 0o1711, body: "s\n"})
	p.src = makeSource(t, "cyclecloud-demo-1.0.0", src)
	good := makeBundle(t, []testProject{p}, k.signer)
	loose := editTar(func(es []tarEntry) []tarEntry {
		for _, e := range es {
			e.hdr.Mode = 0o777
		}
		return es
	})(t, good)

	e := newEnv(t)
	e.mustInstall(loose)
	err := filepath.WalkDir(ProjectsDir(e.root), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		_, _, mode := statOwner(t, path)
		rel, _ := filepath.Rel(ProjectsDir(e.root), path)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
		case d.IsDir():
			if mode != dirMode {
				t.Errorf("folder %s: mode %o, want %o", rel, mode, dirMode)
			}
		case filepath.Dir(rel) == filepath.Join("demo", "blobs"):
			if mode != blobMode {
				t.Errorf("blob %s: mode %o, want %o", rel, mode, blobMode)
			}
		default:
			if mode != fileMode && mode != execMode {
				t.Errorf("file %s: mode %o, want 0644 or 0755", rel, mode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]os.FileMode{
		"demo/1.0.0/default/cluster-init/scripts/10.sh":         execMode,
		"demo/1.0.0/default/cluster-init/files/config.txt":      fileMode,
		"demo/1.0.0/default/cluster-init/files/private":         fileMode,
		"demo/1.0.0/default/cluster-init/files/sticky":          execMode,
		"demo/1.0.0/project.ini":                                fileMode,
		"demo/blobs/shared-1.0.whl":                             blobMode,
		"demo/1.0.0/x/chef/site-cookbooks/x/recipes/default.rb": fileMode,
	} {
		if _, _, mode := statOwner(t, e.staged(rel)); mode != want {
			t.Errorf("%s: mode %o, want %o", rel, mode, want)
		}
	}

	// A payload header with more than permission bits is a clear refusal.
	setuid := editTar(func(es []tarEntry) []tarEntry {
		for _, e := range es {
			if e.hdr.Name == manifest.BlobPath("demo", "shared-1.0.whl") {
				e.hdr.Mode = 0o4755
			}
		}
		return es
	})(t, good)
	e2 := newEnv(t)
	before := snapshot(t, stagingTree(e2.root))
	if _, err := e2.install(setuid); !errors.Is(err, manifest.ErrVerify) {
		t.Fatalf("setuid payload header: %v, want ErrVerify", err)
	}
	assertUnchanged(t, e2.root, before)
}
