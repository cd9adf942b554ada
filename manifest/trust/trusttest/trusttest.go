// Package trusttest makes throwaway OpenSSH signing keys for tests: an
// ed25519 private key file, its signer, and the allowed_signers line that
// trusts it.
package trusttest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest/trust"
)

// Key is a test signing key.
type Key struct {
	// Path is the unencrypted OpenSSH private key file.
	Path string
	// Signer signs with it (namespace "ccmirror").
	Signer *trust.Signer
	// AllowedLine is an allowed_signers line trusting the key for the
	// principal and namespaces NewKey was given, with a newline.
	AllowedLine string
}

// NewKey writes a fresh ed25519 key into a test folder. The allowed_signers
// line names principal and the namespaces (default "ccmirror").
func NewKey(t testing.TB, principal string, namespaces ...string) *Key {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, principal)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing_key")
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := trust.LoadSigner(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(namespaces) == 0 {
		namespaces = []string{"ccmirror"}
	}
	line := fmt.Sprintf("%s namespaces=%q %s\n", principal, strings.Join(namespaces, ","),
		strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))))
	return &Key{Path: path, Signer: s, AllowedLine: line}
}

// AllowedSignersFile writes an allowed_signers file trusting k and returns
// its path.
func (k *Key) AllowedSignersFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(path, []byte(k.AllowedLine), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Allowed returns k's allowed_signers line, parsed.
func (k *Key) Allowed(t testing.TB) *trust.AllowedSigners {
	t.Helper()
	a, err := trust.ParseAllowedSigners(strings.NewReader(k.AllowedLine), "allowed_signers")
	if err != nil {
		t.Fatal(err)
	}
	return a
}
