package trust

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

func FuzzParseAllowedSigners(f *testing.F) {
	s, key := goKey(f, 7)
	sig, err := s.Sign(sums)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"",
		"# comment\n\n",
		"me@example.com " + key + "\n",
		"me@example.com " + key + " comment with spaces\r\n",
		`*@example.com,!bad@example.com namespaces="ccmirror",valid-after="20260101Z",valid-before="202701011200" ` + key,
		`"quoted principal" NAMESPACES="a\"b" ` + key,
		`me@example.com cert-authority ` + key,
		`me@example.com namespaces=ccmirror ` + key,
		`me@example.com valid-after="20260230" ` + key,
		`me@example.com namespaces="x", ` + key,
		`"unterminated ` + key,
		"me@example.com ssh-ed25519 AAAA\n",
		"me@example.com\n",
		"a\"b\"c " + key,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, file string) {
		a, err := ParseAllowedSigners(strings.NewReader(file), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, e := range a.entries {
			if e.key == nil || e.principals == "" || e.line < 1 {
				t.Fatalf("incomplete entry %+v", e)
			}
			if !e.after.IsZero() && !e.before.IsZero() && !e.before.After(e.after) {
				t.Fatalf("line %d: accepted an empty validity window", e.line)
			}
		}
		// Whatever the file says, Verify must decide without panicking and
		// any refusal must be a verification error.
		if _, err := a.Verify(sums, sig, "ccmirror", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)); err != nil && !errors.Is(err, manifest.ErrVerify) {
			t.Fatalf("Verify error %v does not wrap ErrVerify", err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	s, key := goKey(f, 8)
	a, err := ParseAllowedSigners(strings.NewReader("me@example.com "+key+"\n"), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	sig, err := s.Sign(sums)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sums, sig)
	f.Add(tamper(sums), sig)
	f.Add(sums, bytes.ReplaceAll(sig, []byte("\n"), []byte("\r\n")))
	f.Add(sums, []byte(armorBegin+"\nU1NIU0lHAAAAAQ==\n"+armorEnd+"\n"))
	f.Add(sums, []byte("garbage"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, msg, armored []byte) {
		id, err := a.Verify(msg, armored, "ccmirror", time.Time{})
		if err != nil {
			if !errors.Is(err, manifest.ErrVerify) {
				t.Fatalf("error %v does not wrap ErrVerify", err)
			}
			return
		}
		if id.Fingerprint != Fingerprint(s.PublicKey()) || id.Principal != "me@example.com" {
			t.Fatalf("accepted with identity %+v", *id)
		}
		if !bytes.Equal(msg, sums) {
			t.Fatalf("accepted a signature over %q, which the key never signed", msg)
		}
	})
}
