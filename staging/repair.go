package staging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/ccmirror/ccmirror/internal/beneath"
)

// A staged print names the exact state of a staged version folder: the
// sha256 of every entry's path, type, permission bits, size, content hash
// and link target, in path order. plan records it for an incomplete
// version (request.Item.Staged), fetch --request carries it into the
// bundle (manifest.Project.Replaces), and install replaces a folder
// without --force only while it still has that print: the repair the
// request asked for, of a folder nobody changed since.

// printPrefix marks a staged print ("sha256:" and 64 hex digits).
const printPrefix = "sha256:"

// stagedPrint is the print of a walked version folder.
func stagedPrint(entries []treeEntry) string {
	h := sha256.New()
	fmt.Fprintf(h, "ccmirror staged print v1\n")
	for _, e := range entries {
		fmt.Fprintf(h, "%q %s %s %d %s %q\n", e.Path, e.Type, e.Mode, e.Size, e.SHA256, e.Target)
	}
	return printPrefix + hex.EncodeToString(h.Sum(nil))
}

// VersionPrint returns the staged print of the version folder
// name/version under root's projects folder, read through handles (no
// symlink followed).
func VersionPrint(ctx context.Context, root, name, version string) (string, error) {
	d, err := beneath.OpenDir(ProjectsDir(root))
	if err != nil {
		return "", err
	}
	defer d.Close()
	v, err := d.OpenDir(filepath.Join(name, version))
	if err != nil {
		return "", err
	}
	defer v.Close()
	entries, err := walkTree(ctx, v)
	if err != nil {
		return "", err
	}
	return stagedPrint(entries), nil
}
