package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/staging"
)

// TestMakeReadsStagedFilesSafely: whoever can write the staging tree plants
// a symlink to a secret outside it, a FIFO, a device and a huge sparse file
// among the blobs and as a project.ini. plan finishes, lists none of them in
// request.json (no hash or size of a file it did not stage), warns about
// each, and never prints the secret.
func TestMakeReadsStagedFilesSafely(t *testing.T) {
	t.Parallel()
	root, blobs := stagedTree(t)
	projects := staging.ProjectsDir(root)
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:SECRET-HASH:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(projects, "slurm", "blobs", "evil.rpm")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(projects, "slurm", "blobs", "fifo.rpm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := syscall.Mknod(filepath.Join(projects, "slurm", "blobs", "zero.rpm"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
			t.Fatal(err)
		}
	}
	sparse := filepath.Join(projects, "pbspro", "blobs", "huge.rpm")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// mylocal's project.ini becomes a FIFO.
	ini := filepath.Join(projects, "mylocal", "1.0.0", "project.ini")
	if err := os.Remove(ini); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(ini, 0o644); err != nil {
		t.Fatal(err)
	}

	cs := fakeCycleServer(t, []rec{slurm250}, false)
	req, rep, err := Make(context.Background(), Options{Root: root, CyclePath: cs, Hostname: "h", Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("root:SECRET-HASH:19000::::::\n"))
	secretSum := hex.EncodeToString(h[:])
	for _, p := range req.Inventory {
		for _, b := range p.Blobs {
			if b.SHA256 == secretSum || b.Name == "evil.rpm" || b.Name == "fifo.rpm" || b.Name == "zero.rpm" || b.Name == "huge.rpm" {
				t.Errorf("inventory lists planted %s/%s (%s, %d bytes)", p.Name, b.Name, b.SHA256, b.Size)
			}
		}
	}
	for k, content := range blobs {
		name, blob, _ := strings.Cut(k, " ")
		if b, ok := req.StagedBlob(name, blob); !ok || b.Size != int64(len(content)) {
			t.Errorf("real blob %s missing from the inventory: %+v %v", k, b, ok)
		}
	}
	all := strings.Join(rep.Warnings, "\n")
	for _, want := range []string{"evil.rpm is a symbolic link", "fifo.rpm is a FIFO", "huge.rpm is a sparse file"} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning %q in:\n%s", want, all)
		}
	}
	if os.Geteuid() == 0 && !strings.Contains(all, "zero.rpm is a device") {
		t.Errorf("no warning about the device in:\n%s", all)
	}
	if strings.Contains(all, "SECRET") {
		t.Errorf("warnings print the secret's content:\n%s", all)
	}
}
