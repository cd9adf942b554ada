package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/ccmirror/ccmirror/internal/regfile"
	"github.com/ccmirror/ccmirror/manifest"
)

// agentPrefix starts a keyPath that names a key held by ssh-agent.
const agentPrefix = "agent:"

// Signer signs bundles (the bytes of SHA256SUMS) with an OpenSSH key, either
// loaded from a private key file or held by ssh-agent. It implements
// manifest.Signer. Create it with LoadSigner.
type Signer struct {
	pub ssh.PublicKey
	// key signs directly when the private key was loaded from a file.
	key ssh.Signer
	// agentSock is the ssh-agent socket holding the key when key is nil;
	// Sign dials it for every signature so no connection is kept open.
	agentSock string
	// source names where the key came from, for error messages.
	source string
}

// Sign signs msg in namespace "ccmirror" with SHA-512, as "ssh-keygen -Y sign
// -n ccmirror" does (RSA keys use rsa-sha2-512), and returns the armored
// signature in the exact layout ssh-keygen writes.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	return s.SignNamespace(msg, manifest.Namespace)
}

// SignNamespace is Sign in another namespace, such as request files'
// "ccmirror-request", so one kind of signed file can never pass for another.
func (s *Signer) SignNamespace(msg []byte, namespace string) ([]byte, error) {
	if s == nil || s.pub == nil {
		return nil, errors.New("sign: no signing key loaded")
	}
	key := s.key
	if key == nil {
		conn, err := net.Dial("unix", s.agentSock)
		if err != nil {
			return nil, fmt.Errorf("sign with %s: connect to ssh-agent: %w", s.source, err)
		}
		defer conn.Close()
		key = &agentKey{ag: agent.NewClient(conn), pub: s.pub}
	}
	sig, err := sshsig.Sign(bytes.NewReader(msg), key, sshsig.HashSHA512, namespace)
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", s.source, err)
	}
	// Check the signature before handing it out: an agent or a faulty key
	// must not produce a bundle nobody can verify.
	if err := sshsig.Verify(bytes.NewReader(msg), sig, s.pub, sshsig.HashSHA512, namespace); err != nil {
		return nil, fmt.Errorf("sign with %s: the new signature does not verify: %w", s.source, err)
	}
	return armor(sig), nil
}

// PublicKey returns the public key whose signatures Sign produces; list it in
// allowed_signers to trust the bundles.
func (s *Signer) PublicKey() ssh.PublicKey {
	if s == nil {
		return nil
	}
	return s.pub
}

// maxKeyFile bounds a private key file (an RSA-16384 key is about 13 KiB).
const maxKeyFile = 1 << 20

// LoadSigner loads the signing key named by keyPath:
//
//   - an OpenSSH (or PEM) private key file: ed25519, ecdsa or rsa. When it is
//     passphrase-protected, the passphrase comes from $CCMIRROR_KEY_PASSPHRASE,
//     else from prompt(keyPath) when prompt is non-nil, else LoadSigner fails
//     saying how to supply it;
//   - "agent:": the only key held by ssh-agent ($SSH_AUTH_SOCK);
//   - "agent:SHA256:...": the ssh-agent key with that fingerprint;
//   - a public key file (KEY.pub): the ssh-agent key matching it.
func LoadSigner(keyPath string, prompt func(keyPath string) ([]byte, error)) (*Signer, error) {
	if keyPath == "" {
		return nil, errors.New("signing key: no key given (a private key file, KEY.pub for ssh-agent, or agent:)")
	}
	if sel, ok := strings.CutPrefix(keyPath, agentPrefix); ok {
		if sel == "" {
			return loadAgentSigner(keyPath, nil, "")
		}
		if !strings.HasPrefix(sel, "SHA256:") {
			sel = "SHA256:" + sel
		}
		return loadAgentSigner(keyPath, nil, sel)
	}
	data, err := regfile.ReadFile(keyPath, maxKeyFile, regfile.Options{})
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		key, err = parseEncrypted(keyPath, data, prompt)
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		pub, _, _, _, perr := ssh.ParseAuthorizedKey(data)
		if perr == nil {
			return loadAgentSigner(keyPath, pub, "")
		}
		return nil, fmt.Errorf("signing key %s: not an OpenSSH private or public key: %w", keyPath, err)
	}
	pub := key.PublicKey()
	if err := supportedKeyType(pub); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyPath, err)
	}
	return &Signer{pub: pub, key: key, source: fmt.Sprintf("%s key %s (%s)", pub.Type(), Fingerprint(pub), keyPath)}, nil
}

// parseEncrypted decrypts a passphrase-protected private key.
func parseEncrypted(keyPath string, data []byte, prompt func(string) ([]byte, error)) (ssh.Signer, error) {
	var pass []byte
	var from string
	switch {
	case os.Getenv(PassphraseEnv) != "":
		pass, from = []byte(os.Getenv(PassphraseEnv)), "$"+PassphraseEnv
	case prompt != nil:
		p, err := prompt(keyPath)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: read passphrase: %w", keyPath, err)
		}
		pass, from = p, "the prompt"
	default:
		return nil, fmt.Errorf("signing key %s is encrypted: set %s to its passphrase, run interactively to be prompted, or load it into ssh-agent and sign with %s.pub or agent:",
			keyPath, PassphraseEnv, keyPath)
	}
	defer clear(pass)
	key, err := ssh.ParsePrivateKeyWithPassphrase(data, pass)
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, fmt.Errorf("signing key %s: wrong passphrase (from %s)", keyPath, from)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyPath, err)
	}
	return key, nil
}

// supportedKeyType accepts the key types ssh-keygen signs files with.
func supportedKeyType(pub ssh.PublicKey) error {
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return nil
	}
	return fmt.Errorf("unsupported key type %s (use ed25519, ecdsa or rsa)", pub.Type())
}

// loadAgentSigner picks a key held by ssh-agent: the one equal to want, the
// one with fingerprint fp, or, when both are empty, the only one.
func loadAgentSigner(keyPath string, want ssh.PublicKey, fp string) (*Signer, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, fmt.Errorf("signing key %s: SSH_AUTH_SOCK is not set: start ssh-agent and ssh-add the key, or give the private key file", keyPath)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: connect to ssh-agent at %s: %w", keyPath, sock, err)
	}
	defer conn.Close()
	listed, err := agent.NewClient(conn).List()
	if err != nil {
		return nil, fmt.Errorf("signing key %s: list ssh-agent keys: %w", keyPath, err)
	}
	var keys []ssh.PublicKey
	for _, k := range listed {
		pub, err := ssh.ParsePublicKey(k.Blob)
		if err != nil {
			continue // a key type this library does not know cannot sign here
		}
		if _, isCert := pub.(*ssh.Certificate); isCert {
			continue
		}
		keys = append(keys, pub)
	}
	var fps []string
	for _, k := range keys {
		fps = append(fps, fmt.Sprintf("%s (%s)", Fingerprint(k), k.Type()))
	}
	var pub ssh.PublicKey
	switch {
	case want != nil:
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), want.Marshal()) {
				pub = k
				break
			}
		}
		if pub == nil {
			return nil, fmt.Errorf("signing key %s: ssh-agent does not hold key %s (it holds: %s); ssh-add the private key first",
				keyPath, Fingerprint(want), listOrNone(fps))
		}
	case fp != "":
		for _, k := range keys {
			if Fingerprint(k) == fp {
				pub = k
				break
			}
		}
		if pub == nil {
			return nil, fmt.Errorf("signing key %s: ssh-agent holds no key %s (it holds: %s)", keyPath, fp, listOrNone(fps))
		}
	default:
		switch len(keys) {
		case 0:
			return nil, fmt.Errorf("signing key %s: ssh-agent holds no keys; ssh-add one first", keyPath)
		case 1:
			pub = keys[0]
		default:
			return nil, fmt.Errorf("signing key %s: ssh-agent holds %d keys, choose one with agent:FINGERPRINT or KEY.pub: %s",
				keyPath, len(keys), strings.Join(fps, ", "))
		}
	}
	if err := supportedKeyType(pub); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyPath, err)
	}
	return &Signer{
		pub:       pub,
		agentSock: sock,
		source:    fmt.Sprintf("%s key %s (ssh-agent)", pub.Type(), Fingerprint(pub)),
	}, nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no keys"
	}
	return strings.Join(s, ", ")
}

// agentKey is an ssh.AlgorithmSigner backed by one ssh-agent key.
type agentKey struct {
	ag  agent.ExtendedAgent
	pub ssh.PublicKey
}

func (k *agentKey) PublicKey() ssh.PublicKey { return k.pub }

func (k *agentKey) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return k.SignWithAlgorithm(rand, data, "")
}

func (k *agentKey) SignWithAlgorithm(_ io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	var flags agent.SignatureFlags
	switch algorithm {
	case "", k.pub.Type():
	case ssh.KeyAlgoRSASHA256:
		flags = agent.SignatureFlagRsaSha256
	case ssh.KeyAlgoRSASHA512:
		flags = agent.SignatureFlagRsaSha512
	default:
		return nil, fmt.Errorf("ssh-agent: unsupported signature algorithm %s", algorithm)
	}
	sig, err := k.ag.SignWithFlags(k.pub, data, flags)
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}
	if algorithm != "" && sig.Format != algorithm {
		return nil, fmt.Errorf("ssh-agent returned a %s signature, want %s", sig.Format, algorithm)
	}
	return sig, nil
}

// SignatureSize is the length of every armored signature Sign makes, or 0
// when it varies from one signature to the next (ECDSA, security keys).
// It lets a bundle writer lay the bundle out before it is signed.
func (s *Signer) SignatureSize() int {
	if s == nil || s.pub == nil {
		return 0
	}
	var format string
	var n int
	switch s.pub.Type() {
	case ssh.KeyAlgoED25519:
		format, n = ssh.KeyAlgoED25519, ed25519.SignatureSize
	case ssh.KeyAlgoRSA:
		cpk, ok := s.pub.(ssh.CryptoPublicKey)
		if !ok {
			return 0
		}
		pk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return 0
		}
		format, n = ssh.KeyAlgoRSASHA512, pk.Size()
	default:
		return 0
	}
	sig := &sshsig.Signature{Version: 1, PublicKey: s.pub, Namespace: manifest.Namespace,
		HashAlgorithm: sshsig.HashSHA512, Signature: &ssh.Signature{Format: format, Blob: make([]byte, n)}}
	return len(armor(sig))
}
