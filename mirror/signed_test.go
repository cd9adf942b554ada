package mirror

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"golang.org/x/crypto/ssh"
)

// A signed fetch: the signature over SHA256SUMS verifies against an
// allowed_signers entry for the key.
func TestFetchSigned(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "ccmirror test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := trust.LoadSigner(keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := trust.ParseAllowedSigners(strings.NewReader(`mirror@example.com namespaces="ccmirror" `+string(ssh.MarshalAuthorizedKey(sshPub))), "allowed_signers")
	if err != nil {
		t.Fatal(err)
	}

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
