package blob

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
)

// minimalBundle copies the format's minimal test vector into dir and
// returns its path and the sha256 of its SHA256SUMS entry, read here with
// archive/tar, not the manifest package.
func minimalBundle(t *testing.T, dir string) (path, head string) {
	t.Helper()
	b, err := os.ReadFile("../../testdata/bundle-v1/minimal.tar")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "minimal.tar")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(strings.NewReader(string(b)))
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "SHA256SUMS" {
		t.Fatalf("first entry %v (%v), want SHA256SUMS", hdr, err)
	}
	sums, _ := io.ReadAll(tr)
	h := sha256.Sum256(sums)
	return path, hex.EncodeToString(h[:])
}

// blobClient is a client of the blob at url with Azurite's key.
func blobClient(t *testing.T, url string) *blob.Client {
	t.Helper()
	loc, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cc, _, err := newContainerClient(loc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cc.NewBlobClient(loc.Path)
}

// TestPullByHead: Push records a bundle's head hash; a Pull whose check
// reports the head it proved the bundle against is told it needs no
// whole-file sum, and fails, leaving nothing, when that head is not the one
// the blob records. A blob pushed before the head was recorded gets it on
// the next push, without an upload.
func TestPullByHead(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, head := minimalBundle(t, dir)
	url := base + "/" + newContainerName(t) + "/minimal.tar"
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	bc := blobClient(t, url)
	props, err := bc.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := metaValue(props.Metadata, MetaHeadSHA256); got != head {
		t.Fatalf("pushed bundle's %s = %q, want %s", MetaHeadSHA256, got, head)
	}

	// reports returns a check that reads every byte and reports head.
	var asked []bool
	reports := func(head string) func(io.Reader, bool) (Checked, error) {
		return func(r io.Reader, wantSum bool) (Checked, error) {
			asked = append(asked, wantSum)
			_, err := io.Copy(io.Discard, r)
			return Checked{HeadSHA256: head}, err
		}
	}
	dst := filepath.Join(dir, "good.tar")
	res, err := Pull(ctx, url, dst, Options{Check: reports(head)})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] {
		t.Errorf("Check was told wantSHA256 %v, want [false]", asked)
	}
	if !res.Checked || res.HeadSHA256 != head || res.SHA256 != "" {
		t.Errorf("result %+v: want checked by head %s, no whole-file sum", res, head)
	}

	bad := filepath.Join(dir, "bad.tar")
	other := strings.Repeat("0", 64)
	_, err = Pull(ctx, url, bad, Options{Check: reports(other)})
	if !isVerify(err) || !strings.Contains(err.Error(), "SHA256SUMS sha256 "+other) || !strings.Contains(err.Error(), head) {
		t.Fatalf("pull of a bundle whose head is not the recorded one: %v", err)
	}
	for _, p := range []string{bad, bad + PartialSuffix, bad + PartialSuffix + ETagSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after the head check failed", p)
		}
	}

	// As pushed by an older ccmirror: only ccmirror_sha256 (and a key of
	// someone else's, kept). The check is asked for the whole sum, and the
	// next push adds the head.
	sha := metaValue(props.Metadata, MetaSHA256)
	theirs := "kept"
	if _, err := bc.SetMetadata(ctx, map[string]*string{MetaSHA256: &sha, "owner_note": &theirs}, nil); err != nil {
		t.Fatal(err)
	}
	asked = nil
	res, err = Pull(ctx, url, filepath.Join(dir, "old.tar"), Options{Check: reports(head)})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || !asked[0] || res.SHA256 != sha || res.HeadSHA256 != "" || !res.Checked {
		t.Errorf("pull of a blob without %s: asked %v, result %+v; want the whole sum asked for and checked", MetaHeadSHA256, asked, res)
	}
	again, err := Push(ctx, src, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	props, err = bc.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Skipped || metaValue(props.Metadata, MetaHeadSHA256) != head || metaValue(props.Metadata, MetaSHA256) != sha || metaValue(props.Metadata, "owner_note") != theirs {
		t.Errorf("push over an old blob: skipped %v, metadata %v; want no upload and the head added", again.Skipped, props.Metadata)
	}
	if again.ETag != etagString(props.ETag) {
		t.Errorf("push reported ETag %s, blob has %s", again.ETag, etagString(props.ETag))
	}
}
