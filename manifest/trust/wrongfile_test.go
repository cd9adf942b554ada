package trust

import (
	"errors"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// TestWrongFileAsAllowedSigners: a public key, a private key or binary data
// given as allowed_signers is named for what it is, with the line to
// write, as a usage error.
func TestWrongFileAsAllowedSigners(t *testing.T) {
	_, key := goKey(t, 7)
	rsa := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ" + strings.Repeat("A", 500)
	tests := []struct {
		name, file string
		want       []string
	}{
		{"public key", key + " ops@example.com\n", []string{"k: a public key (.pub)", `write: ops@example.com namespaces="ccmirror" ` + key}},
		{"public key without comment", key + "\n", []string{`write: mirror@example namespaces="ccmirror" ` + key}},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
			[]string{"k: a PRIVATE key", `echo "mirror@example namespaces=\"ccmirror\" $(cut -d' ' -f1,2 k.pub)"`}},
		{"PEM private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n", []string{"PRIVATE key"}},
		{"binary", "SHA256SUMS\x00\x00\x00\x000000644\x00", []string{"k: binary data", "--allowed-signers FILE BUNDLE"}},
		{"one huge line", strings.Repeat("x", maxLine+10), []string{"k: not an allowed_signers file", "--allowed-signers FILE BUNDLE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAllowedSigners(strings.NewReader(tc.file), "k")
			if !errors.Is(err, errclass.ErrUsage) {
				t.Fatalf("error %v, want a usage error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.ContainsAny(err.Error(), "\x00\n") {
				t.Errorf("error carries raw bytes: %q", err)
			}
		})
	}
	// A long RSA key gets the command, not a 700-character line.
	if _, err := ParseAllowedSigners(strings.NewReader(rsa+" ops\n"), "k.pub"); err == nil || len(err.Error()) > 200 {
		t.Errorf("RSA .pub: %v", err)
	}
	// After a good line, a bad one is judged as OpenSSH does (here: skipped
	// with a warning naming k:2), not as a wrong file.
	a, err := ParseAllowedSigners(strings.NewReader("a@x "+key+"\n"+key+"\n"), "k")
	if errors.Is(err, errclass.ErrUsage) || (err == nil && (len(a.Warnings()) == 0 || !strings.HasPrefix(a.Warnings()[0], "k:2: "))) {
		t.Errorf("bad second line: %v", err)
	}
}
