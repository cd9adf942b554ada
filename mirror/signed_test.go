package mirror

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// A signed fetch: the signature over SHA256SUMS verifies against an
// allowed_signers entry for the key.
func TestFetchSigned(t *testing.T) {
	k := trusttest.NewKey(t, "mirror@example.com")
	signer, allowed := k.Signer, k.Allowed(t)

	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	o.Signer = signer
	out := filepath.Join(t.TempDir(), "slurm.tar")
	if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "slurm@3.0.12")}, out); err != nil {
		t.Fatal(err)
	}
	r, _ := readBundle(t, out)
	if r.Signature() == nil {
		t.Fatal("signed fetch wrote no signature")
	}
	id, err := allowed.Verify(r.Sums(), r.Signature(), manifest.Namespace, time.Now())
	if err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if id.Principal != "mirror@example.com" {
		t.Errorf("signed by %q", id.Principal)
	}
}
