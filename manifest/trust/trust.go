// Package trust signs and verifies ccmirror bundles with OpenSSH signatures
// (the "ssh-keygen -Y sign" format, PROTOCOL.sshsig) and decides whom to trust
// with an OpenSSH allowed_signers file.
//
// Signatures made here verify with
//
//	ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n ccmirror -s SHA256SUMS.sig < SHA256SUMS
//
// and signatures made by "ssh-keygen -Y sign -n ccmirror" verify here.
package trust

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// PassphraseEnv is the environment variable LoadSigner reads the passphrase
// of an encrypted private key from.
const PassphraseEnv = "CCMIRROR_KEY_PASSPHRASE"

const (
	armorBegin = "-----BEGIN SSH SIGNATURE-----"
	armorEnd   = "-----END SSH SIGNATURE-----"
	// armorWidth is the base64 line width ssh-keygen uses (sshbuf_dtob64).
	armorWidth = 70
)

// Fingerprint returns the OpenSSH SHA256 fingerprint of a public key, as
// "ssh-keygen -l" prints it: "SHA256:" followed by unpadded base64.
func Fingerprint(pub ssh.PublicKey) string {
	if pub == nil {
		return "(no key)"
	}
	return ssh.FingerprintSHA256(pub)
}

// armor encodes a signature exactly as ssh-keygen writes it: the PEM-style
// header, base64 wrapped at 70 columns, the footer and a final newline.
func armor(sig *sshsig.Signature) []byte {
	b64 := base64.StdEncoding.EncodeToString(sig.Marshal())
	var buf bytes.Buffer
	buf.Grow(len(b64) + len(b64)/armorWidth + len(armorBegin) + len(armorEnd) + 4)
	buf.WriteString(armorBegin + "\n")
	for len(b64) > armorWidth {
		buf.WriteString(b64[:armorWidth])
		buf.WriteByte('\n')
		b64 = b64[armorWidth:]
	}
	buf.WriteString(b64)
	buf.WriteByte('\n')
	buf.WriteString(armorEnd + "\n")
	return buf.Bytes()
}

// unarmor decodes an armored signature strictly: it must start with the
// BEGIN line (leading blank lines aside), carry no PEM headers and have
// nothing but white space after the END line.
func unarmor(b []byte) (*sshsig.Signature, error) {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("signature is empty")
	}
	if !bytes.HasPrefix(trimmed, []byte(armorBegin)) {
		return nil, fmt.Errorf("not an armored SSH signature (want a %q line)", armorBegin)
	}
	p, rest := pem.Decode(trimmed)
	if p == nil {
		return nil, fmt.Errorf("malformed armor (want base64 between %q and %q)", armorBegin, armorEnd)
	}
	if p.Type != sshsig.PEMType {
		return nil, fmt.Errorf("armor type %q, want %q", p.Type, sshsig.PEMType)
	}
	if len(p.Headers) != 0 {
		return nil, errors.New("unexpected headers in armored signature")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the signature")
	}
	sig, err := sshsig.ParseSignature(p.Bytes)
	if err != nil {
		return nil, fmt.Errorf("malformed signature: %w", err)
	}
	return sig, nil
}

// formatTime prints an allowed_signers timestamp for error messages: a bare
// date for midnight UTC, RFC 3339 otherwise.
func formatTime(t time.Time) string {
	if _, off := t.Zone(); off == 0 {
		t = t.UTC()
		if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
			return t.Format("2006-01-02")
		}
	}
	return t.Format(time.RFC3339)
}
