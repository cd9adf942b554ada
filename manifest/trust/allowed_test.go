package trust

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest"
)

// goKey returns a deterministic in-process Ed25519 signer and its
// allowed_signers key text, for tests that need no ssh-keygen.
func goKey(t testing.TB, seed byte) (*Signer, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(make32(seed))
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{pub: key.PublicKey(), key: key, source: "test key"}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey())))
}

func make32(b byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = b
	}
	return s
}

// TestAllowedSignersVerify checks trust decisions against a table and, for
// every row, that ssh-keygen -Y verify decides the same with the same file.
func TestAllowedSignersVerify(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	alice := sshKey(t, kindEd25519.name, kindEd25519, "")
	bob := sshKey(t, kindECDSA.name, kindECDSA, "")
	carol := sshKey(t, "ed25519-other", kindEd25519, "")
	sign := func(k *testKey) []byte {
		s, err := LoadSigner(k.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(sums)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	sigAlice, sigBob, sigCarol := sign(alice), sign(bob), sign(carol)
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	const nowSSH = "20260615120000Z"
	A, B := alice.authKey, bob.authKey

	tests := []struct {
		name      string
		file      string
		sig       []byte
		msg       []byte // nil: sums
		principal string // for ssh-keygen -I
		want      string // wanted Identity.Principal; "" when an error is wanted
		wantErr   []string
	}{
		{name: "several keys", file: "alice@example.com " + A + "\nbob@example.com " + B + "\n",
			sig: sigBob, principal: "bob@example.com", want: "bob@example.com"},
		{name: "wildcard principal", file: "*@example.com,!mallory@example.com " + A,
			sig: sigAlice, principal: "alice@example.com", want: "*@example.com"},
		{name: "negated principal first", file: "!mallory@example.com,release-?@example.com " + A,
			sig: sigAlice, principal: "release-1@example.com", want: "release-?@example.com"},
		{name: "quoted principal", file: `"alice smith@example.com" ` + A,
			sig: sigAlice, principal: "alice smith@example.com", want: "alice smith@example.com"},
		{name: "namespace in list", file: `alice@example.com namespaces="git,ccmirror" ` + A,
			sig: sigAlice, principal: "alice@example.com", want: "alice@example.com"},
		{name: "namespace wildcard", file: `alice@example.com namespaces="ccm*" ` + A,
			sig: sigAlice, principal: "alice@example.com", want: "alice@example.com"},
		{name: "upper-case option names", file: `alice@example.com NAMESPACES="ccmirror",Valid-After="20260101Z" ` + A,
			sig: sigAlice, principal: "alice@example.com", want: "alice@example.com"},
		{name: "namespace denied", file: `alice@example.com namespaces="file,git" ` + A,
			sig: sigAlice, principal: "alice@example.com",
			wantErr: []string{`namespace "ccmirror" not allowed for this key`, "allowed_signers:1"}},
		{name: "namespace negated", file: `alice@example.com namespaces="*,!ccmirror" ` + A,
			sig: sigAlice, principal: "alice@example.com", wantErr: []string{`namespace "ccmirror" not allowed`}},
		{name: "inside window", file: `alice@example.com valid-after="20260101Z",valid-before="20270101Z" ` + A,
			sig: sigAlice, principal: "alice@example.com", want: "alice@example.com"},
		{name: "not yet valid", file: `alice@example.com valid-after="20270101Z" ` + A,
			sig: sigAlice, principal: "alice@example.com",
			wantErr: []string{"key " + Fingerprint(alice.pub) + " is not valid before 2027-01-01"}},
		{name: "expired", file: `alice@example.com valid-before="20260601Z" ` + A,
			sig: sigAlice, principal: "alice@example.com", wantErr: []string{"expired: not valid after 2026-06-01"}},
		{name: "valid-after is inclusive", file: `alice@example.com valid-after="` + nowSSH + `" ` + A,
			sig: sigAlice, principal: "alice@example.com", want: "alice@example.com"},
		{name: "valid-before is inclusive", file: `alice@example.com valid-before="` + nowSSH + `" ` + A,
			sig: sigAlice, principal: "alice@example.com", want: "alice@example.com"},
		{name: "valid one minute later", file: `alice@example.com valid-after="202606151201UTC" ` + A,
			sig: sigAlice, principal: "alice@example.com", wantErr: []string{"not valid before 2026-06-15T12:01:00Z"}},
		{name: "rotation: old line expired, new line valid",
			file: "old@example.com valid-before=\"20260101Z\" " + A + "\nnew@example.com valid-after=\"20260101Z\" " + A + "\n",
			sig:  sigAlice, principal: "new@example.com", want: "new@example.com"},
		{name: "every line fails",
			file: "a@example.com valid-before=\"20260101Z\" " + A + "\na@example.com namespaces=\"git\" " + A + "\n",
			sig:  sigAlice, principal: "a@example.com",
			wantErr: []string{"expired", "allowed_signers:1", `namespace "ccmirror" not allowed`, "allowed_signers:2"}},
		{name: "unlisted key", file: "alice@example.com " + A + "\nbob@example.com " + B + "\n",
			sig: sigCarol, principal: "alice@example.com",
			wantErr: []string{"signed by " + Fingerprint(carol.pub) + " (ssh-ed25519) which is not in allowed_signers allowed_signers"}},
		{name: "empty file", file: "# nobody yet\n", sig: sigAlice, principal: "alice@example.com",
			wantErr: []string{"not in allowed_signers", "lists no keys"}},
		{name: "all principals negated", file: "!mallory@example.com,!eve@example.com " + A,
			sig: sigAlice, principal: "alice@example.com", wantErr: []string{"all negated", "matches no one", "allowed_signers:1"}},
		{name: "unknown option line skipped, next line used", file: "a@example.com no-touch-required " + A + "\nalice@example.com " + A + "\n",
			sig: sigAlice, principal: "alice@example.com", want: "alice@example.com"},
		{name: "cert-authority line skipped", file: "*@example.com cert-authority " + A + "\n",
			sig: sigAlice, principal: "alice@example.com", wantErr: []string{"not in allowed_signers", "lists no keys"}},
		{name: "tampered message", file: "alice@example.com " + A, sig: sigAlice, msg: tamper(sums),
			principal: "alice@example.com", wantErr: []string{"bad signature by " + Fingerprint(alice.pub)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.msg
			if msg == nil {
				msg = sums
			}
			a, err := ParseAllowedSigners(strings.NewReader(tc.file), "allowed_signers")
			if err != nil {
				t.Fatal(err)
			}
			id, err := a.Verify(msg, tc.sig, "ccmirror", now)
			if tc.want != "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.Principal != tc.want {
					t.Errorf("principal %q, want %q", id.Principal, tc.want)
				}
			} else {
				if !errors.Is(err, manifest.ErrVerify) {
					t.Fatalf("Verify error = %v, want ErrVerify", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
			}
			ok, out := opensshVerify(t, tc.file, tc.principal, "ccmirror", tc.sig, msg, nowSSH)
			if ok != (tc.want != "") {
				t.Errorf("ssh-keygen -Y verify accepted=%v, ccmirror accepted=%v:\n%s", ok, tc.want != "", out)
			}
		})
	}
}

// TestVerifyRejects covers malformed signatures and misuse; every failure
// must wrap manifest.ErrVerify.
func TestVerifyRejects(t *testing.T) {
	s, key := goKey(t, 1)
	a, err := ParseAllowedSigners(strings.NewReader("me@example.com "+key+"\n"), "trusted")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(sums)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(sums, sig, "ccmirror", time.Time{}); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	body := strings.TrimSuffix(strings.TrimPrefix(string(sig), armorBegin+"\n"), armorEnd+"\n")
	tests := []struct {
		name      string
		a         *AllowedSigners
		sig       string
		namespace string
		want      string
	}{
		{"empty", a, "", "ccmirror", "signature is empty"},
		{"not armored", a, "hello\n", "ccmirror", "not an armored SSH signature"},
		{"no end line", a, armorBegin + "\n" + body, "ccmirror", "malformed armor"},
		{"wrong type", a, strings.ReplaceAll(string(sig), "SSH SIGNATURE", "SSH SIG"), "ccmirror", "not an armored SSH signature"},
		{"trailing garbage", a, string(sig) + "extra\n", "ccmirror", "unexpected data after the signature"},
		{"corrupt body", a, armorBegin + "\nU1NIU0lHAAAAAQ==\n" + armorEnd + "\n", "ccmirror", "malformed signature"},
		{"other namespace wanted", a, string(sig), "git", `made for namespace "ccmirror", want "git"`},
		{"empty namespace", a, string(sig), "", "empty namespace"},
		{"no allowed signers", nil, string(sig), "ccmirror", "no allowed_signers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.a.Verify(sums, []byte(tc.sig), tc.namespace, time.Time{})
			if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify error = %v, want ErrVerify mentioning %q", err, tc.want)
			}
		})
	}
	// Surrounding white space and CRLF line ends (a signature copied through
	// a Windows machine) are fine.
	crlf := "\r\n" + strings.ReplaceAll(string(sig), "\n", "\r\n") + "\r\n"
	if _, err := a.Verify(sums, []byte(crlf), "ccmirror", time.Time{}); err != nil {
		t.Errorf("CRLF signature rejected: %v", err)
	}
}

func TestParseAllowedSignersErrors(t *testing.T) {
	_, key := goKey(t, 2)
	typ, b64, _ := strings.Cut(key, " ")
	_, rsaLike := goKey(t, 3)
	_, otherB64, _ := strings.Cut(rsaLike, " ")
	tests := []struct {
		name string
		file string
		want string // after "trusted:LINE: "
		line string
	}{
		{"missing key", "a@x\n", "missing key", "1"},
		{"missing key after options", `a@x namespaces="ccmirror"`, "missing key after the options", "1"},
		{"missing base64", "a@x " + typ, "missing base64 key", "1"},
		{"bad base64", "a@x " + typ + " !!!notbase64", "bad base64", "1"},
		{"truncated key", "a@x " + typ + " " + b64[:20], "invalid ssh-ed25519 key", "1"},
		{"type mismatch", "a@x ssh-rsa " + b64, "key type ssh-rsa does not match the key, which is ssh-ed25519", "1"},
		{"unsupported key type", "a@x ssh-foo " + otherB64, `unsupported key type "ssh-foo"`, "1"},
		{"unquoted value", "a@x namespaces=ccmirror " + key, "must be in double quotes", "1"},
		{"unterminated option quote", `a@x namespaces="ccmirror ` + key, "missing closing double quote", "1"},
		{"unterminated principal quote", `"a@x ` + key, "principals: missing closing double quote", "1"},
		{"trailing comma", `a@x namespaces="ccmirror", ` + key, "unexpected end after a comma", "1"},
		{"empty option", `a@x ,namespaces="ccmirror" ` + key, "empty option", "1"},
		{"junk after value", `a@x namespaces="ccmirror"x ` + key, "unexpected", "1"},
		{"duplicate namespaces", `a@x namespaces="a",namespaces="b" ` + key, `multiple "namespaces"`, "1"},
		{"duplicate valid-after", `a@x valid-after="20260101",valid-after="20260102" ` + key, `multiple "valid-after"`, "1"},
		{"short time", `a@x valid-after="2026" ` + key, `invalid valid-after time "2026"`, "1"},
		{"bad date", `a@x valid-before="20260230Z" ` + key, "no such date", "1"},
		{"letters in time", `a@x valid-before="2026O101" ` + key, "digits only", "1"},
		{"before not after after", `a@x valid-after="20270101Z",valid-before="20260101Z" ` + key, "valid-before is not after valid-after", "1"},
		{"empty principals", `"" ` + key, "empty principals", "1"},
		{"good lines then bad", "a@x " + key + "\n  # indented comment\nb@x\n", "missing key", "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAllowedSigners(strings.NewReader(tc.file), "trusted")
			if err == nil {
				t.Fatal("ParseAllowedSigners succeeded, want an error")
			}
			if prefix := "trusted:" + tc.line + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestParseAllowedSignersSkips: as ssh-keygen does, cert-authority lines
// and lines with unknown options are skipped with a warning naming the
// line, and the other lines still count.
func TestParseAllowedSignersSkips(t *testing.T) {
	_, key := goKey(t, 2)
	tests := []struct {
		name, file, want, line string
	}{
		{"cert-authority", "# CA\n\n*@example.com cert-authority " + key, "cert-authority is not supported", "3"},
		{"cert-authority with others", `a@x namespaces="ccmirror",cert-authority ` + key, "cert-authority is not supported", "1"},
		{"unknown option", "a@x no-touch-required " + key, `unknown option "no-touch-required"`, "1"},
		{"unknown option after a known one", `a@x namespaces="ccmirror",verify-required ` + key, `unknown option "verify-required"`, "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAllowedSigners(strings.NewReader(tc.file+"\nok@x "+key+"\n"), "trusted")
			if err != nil {
				t.Fatalf("ParseAllowedSigners: %v, want the line skipped", err)
			}
			if len(a.entries) != 1 || a.entries[0].principals != "ok@x" {
				t.Errorf("entries %+v, want only ok@x", a.entries)
			}
			w := a.Warnings()
			if len(w) != 1 || !strings.HasPrefix(w[0], "trusted:"+tc.line+": skipped: ") || !strings.Contains(w[0], tc.want) {
				t.Errorf("warnings %q, want one for line %s mentioning %q", w, tc.line, tc.want)
			}
		})
	}
}

func TestParseAllowedSignersAccepts(t *testing.T) {
	_, key := goKey(t, 4)
	tests := []struct {
		name       string
		file       string
		entries    int
		principals string
		namespaces string // "-" for none
	}{
		{"comments blank lines CRLF", "# header\r\n\r\n   \r\n\t# indented\r\nme@x " + key + "\r\n", 1, "me@x", "-"},
		{"key comment", "me@x " + key + " laptop key 2026\n", 1, "me@x", "-"},
		{"tabs between fields", "me@x\t\tnamespaces=\"ccmirror\"\t" + key + "\n", 1, "me@x", "ccmirror"},
		{"escaped quote", `me@x namespaces="a\"b,ccmirror" ` + key, 1, "me@x", `a"b,ccmirror`},
		{"quoted space in option", `me@x namespaces="a b,ccmirror" ` + key, 1, "me@x", "a b,ccmirror"},
		{"no trailing newline", "me@x " + key, 1, "me@x", "-"},
		{"two lines", "a@x " + key + "\nb@x " + key + "\n", 2, "a@x", "-"},
		{"only comments", "# nothing\n", 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAllowedSigners(strings.NewReader(tc.file), "trusted")
			if err != nil {
				t.Fatal(err)
			}
			if len(a.entries) != tc.entries {
				t.Fatalf("%d entries, want %d", len(a.entries), tc.entries)
			}
			if tc.entries == 0 {
				return
			}
			e := a.entries[0]
			if e.principals != tc.principals {
				t.Errorf("principals %q, want %q", e.principals, tc.principals)
			}
			got := "-"
			if e.namespaces != nil {
				got = *e.namespaces
			}
			if got != tc.namespaces {
				t.Errorf("namespaces %q, want %q", got, tc.namespaces)
			}
		})
	}
}

func TestLoadAllowedSigners(t *testing.T) {
	s, key := goKey(t, 5)
	dir := t.TempDir()
	path := writeFile(t, dir, "allowed_signers", []byte("ops@example.com namespaces=\"ccmirror\" "+key+"\n"))
	a, err := LoadAllowedSigners(path)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(sums)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(sums, sig, "ccmirror", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if id.Principal != "ops@example.com" || id.KeyType != ssh.KeyAlgoED25519 || id.Fingerprint != Fingerprint(s.PublicKey()) {
		t.Errorf("identity %+v", *id)
	}
	// Error messages name the file by its path.
	other, _ := goKey(t, 6)
	sig2, err := other.Sign(sums)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(sums, sig2, "ccmirror", time.Time{}); err == nil || !strings.Contains(err.Error(), "not in allowed_signers "+path) {
		t.Errorf("unknown signer error = %v, want it to name %s", err, path)
	}
	bad := writeFile(t, dir, "bad", []byte("ops@example.com\n"))
	if _, err := LoadAllowedSigners(bad); err == nil || !strings.Contains(err.Error(), bad+":1: missing key") {
		t.Errorf("malformed file error = %v", err)
	}
	if _, err := LoadAllowedSigners(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error = %v, want ErrNotExist", err)
	}
}

func TestLocalTime(t *testing.T) {
	// Without Z, OpenSSH reads times in the local time zone.
	got, err := parseSignerTime("20260615123456")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 6, 15, 12, 34, 56, 0, time.Local); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPatternList(t *testing.T) {
	tests := []struct {
		s, list string
		want    bool
	}{
		{"ccmirror", "ccmirror", true},
		{"ccmirror", "git,ccmirror", true},
		{"ccmirror", "ccm*", true},
		{"ccmirror", "c?irror", false},
		{"ccmirror", "cc?irror", true},
		{"ccmirror", "*", true},
		{"ccmirror", "*,!ccmirror", false},
		{"ccmirror", "!git", false}, // only negations: nothing positive matched
		{"ccmirror", "", false},
		{"a@example.com", "*@example.com", true},
		{"a@example.org", "*@example.com", false},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*a*a*a*c", false},
	}
	for _, tc := range tests {
		if got := matchPatternList(tc.s, tc.list); got != tc.want {
			t.Errorf("matchPatternList(%q, %q) = %v, want %v", tc.s, tc.list, got, tc.want)
		}
	}
}
