package trust

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/manifest"
)

// wrongFileError is a file given as allowed_signers that is recognisably
// something else. It matches errclass.ErrUsage: the user named the wrong
// file, and the message says what to write instead.
type wrongFileError struct{ msg string }

func (e *wrongFileError) Error() string        { return e.msg }
func (e *wrongFileError) Is(target error) bool { return target == errclass.ErrUsage }

// lineFor is the allowed_signers line trusting pub for bundles.
func lineFor(principal string, pub ssh.PublicKey) string {
	return fmt.Sprintf("%s namespaces=%q %s", principal, manifest.Namespace, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))))
}

// maxSuggestedLine is the longest allowed_signers line a message spells
// out; longer keys (RSA) get the command that writes the line instead.
const maxSuggestedLine = 120

// recipe is the shell command that writes the allowed_signers line for a
// public key file.
func recipe(principal, pubFile string) string {
	return fmt.Sprintf(`echo "%s namespaces=\"%s\" $(cut -d' ' -f1,2 %s)" > allowed_signers`, principal, manifest.Namespace, pubFile)
}

// recognizeWrongFile says what the first meaningful line of a would-be
// allowed_signers file really is, when it is an OpenSSH public key (a .pub
// file: "ssh-ed25519 AAAA… comment") or a private key, or nil.
func recognizeWrongFile(name, line string) error {
	s := strings.TrimSpace(line)
	if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		return &wrongFileError{fmt.Sprintf("%s: binary data, not an allowed_signers file (a bundle? the order is --allowed-signers FILE BUNDLE)", name)}
	}
	if strings.HasPrefix(s, "-----BEGIN ") && strings.Contains(s, "PRIVATE KEY") {
		return &wrongFileError{fmt.Sprintf("%s: a PRIVATE key, not an allowed_signers file (keep it on the signing machine); from its .pub write: %s",
			name, recipe("mirror@example", filepath.Base(name)+".pub"))}
	}
	tok, _ := field(s)
	if !knownKeyType(tok) {
		return nil
	}
	principal, write := "mirror@example", ""
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err == nil {
		if c := strings.TrimSpace(comment); c != "" && !strings.ContainsAny(c, " \t\",") {
			principal = c
		}
		write = lineFor(principal, pub)
	}
	if write == "" || len(write) > maxSuggestedLine {
		write = recipe(principal, name)
	}
	return &wrongFileError{fmt.Sprintf("%s: a public key (.pub), not an allowed_signers file; write: %s", name, write)}
}
