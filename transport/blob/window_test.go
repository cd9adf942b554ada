package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"testing"
	"time"
)

// TestPullWindow: while the check holds the hasher at the start of the
// blob, the ranges downloading in parallel write no further than the
// window past it (the partial file never grows beyond), and once the check
// reads on, the pull completes with the right bytes.
func TestPullWindow(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	const rs = 256 << 10
	src, data := randomFile(t, dir, "src.tar", 24*rs+17)
	url := base + "/" + newContainerName(t) + "/window.tar"
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	const conc = 8
	window := int64(max(2*rs, conc*rs/4, minWindow))
	if window >= int64(len(data))/2 {
		t.Fatalf("window %d is not small against the blob (%d bytes): the test would prove nothing", window, len(data))
	}
	dst := dir + "/dst.tar"
	var largest int64
	check := func(r io.Reader, _ bool) (Checked, error) {
		h := sha256.New()
		head := make([]byte, 64<<10)
		if _, err := io.ReadFull(r, head); err != nil {
			return Checked{}, err
		}
		h.Write(head)
		// Give the workers the time to run ahead, if they could; stop
		// early when they did.
		for range 50 {
			if st, err := os.Stat(dst + PartialSuffix); err == nil {
				largest = max(largest, st.Size())
				if largest > int64(len(head))+window {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := io.Copy(h, r); err != nil {
			return Checked{}, err
		}
		return Checked{SHA256: hex.EncodeToString(h.Sum(nil))}, nil
	}
	res, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: conc, Check: check})
	if err != nil {
		t.Fatal(err)
	}
	if largest > 64<<10+window {
		t.Errorf("with the hasher held at 64 KiB the partial file grew to %d bytes; the window is %d", largest, window)
	}
	if largest == 0 {
		t.Error("the partial file was never seen")
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if sha(got) != sha(data) || res.SHA256 != sha(data) {
		t.Errorf("pulled %d bytes, sha ok %v, result sha ok %v", len(got), sha(got) == sha(data), res.SHA256 == sha(data))
	}
}
