package trust

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest"
)

// manifestSigner is manifest.Signer's method set, restated so this test
// does not depend on the manifest package's writer being built yet.
var _ interface{ Sign([]byte) ([]byte, error) } = (*Signer)(nil)

var sums = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  manifest.json\n")

func tamper(b []byte) []byte {
	c := bytes.Clone(b)
	c[0] ^= 1
	return c
}

// TestSignVerifiedByOpenSSH signs with ccmirror and checks the signature with
// ssh-keygen -Y verify, as an admin without ccmirror would.
func TestSignVerifiedByOpenSSH(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	for _, kind := range []keyKind{kindEd25519, kindECDSA, kindRSA} {
		t.Run(kind.name, func(t *testing.T) {
			k := sshKey(t, kind.name, kind, "")
			s, err := LoadSigner(k.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.PublicKey().Marshal(), k.pub.Marshal()) {
				t.Fatalf("PublicKey() = %s, want %s", Fingerprint(s.PublicKey()), Fingerprint(k.pub))
			}
			sig, err := s.Sign(sums)
			if err != nil {
				t.Fatal(err)
			}
			allowed := "release@example.com namespaces=\"ccmirror\" " + k.authKey + "\n"
			ok, out := opensshVerify(t, allowed, "release@example.com", "ccmirror", sig, sums, "")
			if !ok || !strings.Contains(out, `Good "ccmirror" signature for release@example.com`) {
				t.Fatalf("ssh-keygen -Y verify rejected a ccmirror signature:\n%s\n%s", out, sig)
			}
			if ok, out := opensshVerify(t, allowed, "release@example.com", "ccmirror", sig, tamper(sums), ""); ok {
				t.Fatalf("ssh-keygen -Y verify accepted a tampered message:\n%s", out)
			}
			if ok, _ := opensshVerify(t, allowed, "release@example.com", "file", sig, sums, ""); ok {
				t.Fatal("ssh-keygen -Y verify accepted the signature for namespace file")
			}

			parsed, err := unarmor(sig)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.HashAlgorithm != sshsig.HashSHA512 || parsed.Namespace != "ccmirror" {
				t.Errorf("hash %s namespace %q, want sha512 ccmirror", parsed.HashAlgorithm, parsed.Namespace)
			}
			if k.pub.Type() == ssh.KeyAlgoRSA && parsed.Signature.Format != ssh.KeyAlgoRSASHA512 {
				t.Errorf("RSA signature format %s, want %s", parsed.Signature.Format, ssh.KeyAlgoRSASHA512)
			}
		})
	}
}

// TestSignMatchesSSHKeygenBytes: Ed25519 signatures are deterministic, so a
// ccmirror signature must be byte for byte the file ssh-keygen writes.
func TestSignMatchesSSHKeygenBytes(t *testing.T) {
	k := sshKey(t, kindEd25519.name, kindEd25519, "")
	s, err := LoadSigner(k.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, len(sums), 100_000} {
		msg := bytes.Repeat([]byte("x"), size)
		got, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		want := opensshSign(t, nil, k.path, "ccmirror", msg)
		if !bytes.Equal(got, want) {
			t.Fatalf("message of %d bytes: ccmirror signature differs from ssh-keygen's:\n%s\nwant:\n%s", size, got, want)
		}
	}
}

// TestVerifyOpenSSHSignature checks signatures made by ssh-keygen -Y sign.
func TestVerifyOpenSSHSignature(t *testing.T) {
	for _, kind := range []keyKind{kindEd25519, kindECDSA, kindRSA} {
		t.Run(kind.name, func(t *testing.T) {
			k := sshKey(t, kind.name, kind, "")
			allowed, err := ParseAllowedSigners(strings.NewReader("release@example.com "+k.authKey+" comment here\n"), "allowed_signers")
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name    string
				sig     []byte
				msg     []byte
				wantErr string
			}{
				{"sha512", opensshSign(t, nil, k.path, "ccmirror", sums), sums, ""},
				{"sha256", opensshSign(t, nil, k.path, "ccmirror", sums, "-O", "hashalg=sha256"), sums, ""},
				{"tampered message", opensshSign(t, nil, k.path, "ccmirror", sums), tamper(sums), "bad signature"},
				{"other namespace", opensshSign(t, nil, k.path, "git", sums), sums, `made for namespace "git", want "ccmirror"`},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					id, err := allowed.Verify(tc.msg, tc.sig, "ccmirror", time.Time{})
					if tc.wantErr != "" {
						if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tc.wantErr) {
							t.Fatalf("Verify error = %v, want ErrVerify with %q", err, tc.wantErr)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					want := Identity{Principal: "release@example.com", Fingerprint: ssh.FingerprintSHA256(k.pub), KeyType: k.pub.Type()}
					if *id != want {
						t.Fatalf("identity %+v, want %+v", *id, want)
					}
				})
			}
		})
	}
}

// TestPassphrase loads an encrypted key with the passphrase from the
// environment or the prompt, and fails clearly otherwise.
func TestPassphrase(t *testing.T) {
	const pass = "correct horse battery staple"
	k := sshKey(t, "ed25519-encrypted", kindEd25519, pass)
	prompt := func(answer string, err error) func(string) ([]byte, error) {
		return func(keyPath string) ([]byte, error) {
			if keyPath != k.path {
				t.Errorf("prompt asked for %q, want %q", keyPath, k.path)
			}
			return []byte(answer), err
		}
	}
	failPrompt := func(string) ([]byte, error) {
		t.Error("prompt called although the passphrase is in the environment")
		return nil, errors.New("no terminal")
	}
	tests := []struct {
		name    string
		env     string
		prompt  func(string) ([]byte, error)
		wantErr []string
	}{
		{name: "env", env: pass, prompt: failPrompt},
		{name: "prompt", prompt: prompt(pass, nil)},
		{name: "wrong env", env: "hunter2", prompt: failPrompt, wantErr: []string{"wrong passphrase", "$" + PassphraseEnv, k.path}},
		{name: "wrong prompt", prompt: prompt("hunter2", nil), wantErr: []string{"wrong passphrase", "prompt"}},
		{name: "prompt fails", prompt: prompt("", errors.New("no terminal")), wantErr: []string{"read passphrase", "no terminal"}},
		{name: "no way to ask", wantErr: []string{"is encrypted", PassphraseEnv, "agent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(PassphraseEnv, tc.env)
			s, err := LoadSigner(k.path, tc.prompt)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("LoadSigner succeeded, want an error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.Sign(sums)
			if err != nil {
				t.Fatal(err)
			}
			if ok, out := opensshVerify(t, "me@example.com "+k.authKey+"\n", "me@example.com", "ccmirror", sig, sums, ""); !ok {
				t.Fatalf("ssh-keygen rejected the signature:\n%s", out)
			}
		})
	}
}

func TestLoadSignerErrors(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"empty path", "", "no key given"},
		{"missing file", filepath.Join(dir, "nope"), "no such file"},
		{"not a key", writeFile(t, dir, "junk", []byte("hello\n")), "not an OpenSSH private or public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSigner(tc.path, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadSigner(%q) error = %v, want %q", tc.path, err, tc.want)
			}
		})
	}
}

// startAgent starts a real ssh-agent on a socket in a temporary directory,
// points SSH_AUTH_SOCK at it and kills it when the test ends.
func startAgent(t *testing.T) string {
	t.Helper()
	requireTool(t, "ssh-agent")
	requireTool(t, "ssh-add")
	dir, err := os.MkdirTemp("", "agent") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.Stderr = os.Stderr // -D prints the environment to stdout; not needed
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The socket file appears at bind, before the agent listens: wait
		// until a connection is accepted.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not accept connections within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	return sock
}

func sshAdd(t *testing.T, sock string, k *testKey) {
	t.Helper()
	run(t, []string{"SSH_AUTH_SOCK=" + sock}, nil, "ssh-add", "-q", k.path)
}

// TestAgent signs with keys held by a real ssh-agent.
func TestAgent(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	ed := sshKey(t, kindEd25519.name, kindEd25519, "")
	rsa := sshKey(t, kindRSA.name, kindRSA, "")
	other := sshKey(t, "ed25519-other", kindEd25519, "")
	sock := startAgent(t)
	allowed := "ed@example.com " + ed.authKey + "\nrsa@example.com " + rsa.authKey + "\n"

	check := func(t *testing.T, keyPath string, want *testKey, principal string) {
		t.Helper()
		s, err := LoadSigner(keyPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.PublicKey().Marshal(), want.pub.Marshal()) {
			t.Fatalf("LoadSigner(%q) picked %s, want %s", keyPath, Fingerprint(s.PublicKey()), Fingerprint(want.pub))
		}
		sig, err := s.Sign(sums)
		if err != nil {
			t.Fatal(err)
		}
		if ok, out := opensshVerify(t, allowed, principal, "ccmirror", sig, sums, ""); !ok {
			t.Fatalf("ssh-keygen rejected the agent signature:\n%s", out)
		}
	}
	wantErr := func(t *testing.T, keyPath string, want ...string) {
		t.Helper()
		_, err := LoadSigner(keyPath, nil)
		if err == nil {
			t.Fatalf("LoadSigner(%q) succeeded, want an error", keyPath)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}

	wantErr(t, "agent:", "holds no keys")
	sshAdd(t, sock, ed)
	t.Run("only key", func(t *testing.T) { check(t, "agent:", ed, "ed@example.com") })
	sshAdd(t, sock, rsa)
	t.Run("several keys", func(t *testing.T) {
		wantErr(t, "agent:", "2 keys", Fingerprint(ed.pub), Fingerprint(rsa.pub))
	})
	t.Run("by fingerprint", func(t *testing.T) { check(t, "agent:"+Fingerprint(rsa.pub), rsa, "rsa@example.com") })
	t.Run("by fingerprint without prefix", func(t *testing.T) {
		check(t, "agent:"+strings.TrimPrefix(Fingerprint(ed.pub), "SHA256:"), ed, "ed@example.com")
	})
	t.Run("by pub file", func(t *testing.T) { check(t, rsa.path+".pub", rsa, "rsa@example.com") })
	t.Run("unknown fingerprint", func(t *testing.T) {
		wantErr(t, "agent:"+Fingerprint(other.pub), "holds no key "+Fingerprint(other.pub), Fingerprint(ed.pub))
	})
	t.Run("pub file not in agent", func(t *testing.T) {
		wantErr(t, other.path+".pub", "does not hold key "+Fingerprint(other.pub), "ssh-add")
	})
	t.Run("no agent", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		wantErr(t, "agent:", "SSH_AUTH_SOCK is not set")
	})
	t.Run("agent gone", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", filepath.Join(t.TempDir(), "missing.sock"))
		wantErr(t, "agent:", "connect to ssh-agent")
	})
}

// TestSignedBundleRoundTrip signs with every key kind and verifies with
// Verify, the path a bundle takes from fetch to install.
func TestSignedBundleRoundTrip(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	var lines []string
	var signers []*Signer
	for i, kind := range []keyKind{kindEd25519, kindECDSA, kindRSA} {
		k := sshKey(t, kind.name, kind, "")
		s, err := LoadSigner(k.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
		lines = append(lines, fmt.Sprintf("signer%d@example.com namespaces=\"ccmirror\" %s", i, k.authKey))
	}
	allowed, err := ParseAllowedSigners(strings.NewReader(strings.Join(lines, "\n")), "allowed_signers")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range signers {
		sig, err := s.Sign(sums)
		if err != nil {
			t.Fatal(err)
		}
		id, err := allowed.Verify(sums, sig, manifest.Namespace, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("signer%d@example.com", i); id.Principal != want {
			t.Errorf("principal %q, want %q", id.Principal, want)
		}
		if _, err := allowed.Verify(tamper(sums), sig, manifest.Namespace, time.Now()); !errors.Is(err, manifest.ErrVerify) {
			t.Errorf("tampered message: error %v, want ErrVerify", err)
		}
	}
}
