package request

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/ccmirror/ccmirror/manifest"
)

const hashA = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

func sample() *Request {
	return &Request{
		Schema:   Schema,
		Created:  time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		Hostname: "ccserver01",
		Root:     "/opt/cycle_server",
		Wanted: []Item{
			{Name: "slurm", Version: "3.0.12", Repository: "Azure/cyclecloud-slurm", Tag: "3.0.12",
				URL: "https://github.com/Azure/cyclecloud-slurm/releases/3.0.12", Reason: ReasonMissing},
			{Name: "pbspro", Version: "2.0.25", Repository: "Azure/cyclecloud-pbspro", Tag: "2.0.25", Reason: ReasonIncomplete},
		},
		Unresolvable: []Unresolvable{
			{Name: "mylocal", Version: "1.0.0", URL: "file:///opt/projects/mylocal", Problem: "Url is not a GitHub release URL"},
		},
		Inventory: []StagedProject{
			{Name: "slurm", Versions: []string{"2.5.0"}, Blobs: []StagedBlob{
				{Name: "cyclecloud_api-8.1.0-py2.py3-none-any.whl", SHA256: hashA, Size: 41234},
				{Name: "sub/dir/x.rpm", SHA256: hashA, Size: 0},
			}},
			{Name: "pbspro", Versions: []string{"2.0.25"}},
		},
	}
}

const sampleJSON = `{
  "schema": "ccmirror.request/v1",
  "created": "2026-03-04T05:06:07Z",
  "hostname": "ccserver01",
  "root": "/opt/cycle_server",
  "wanted": [
    {
      "name": "slurm",
      "version": "3.0.12",
      "repository": "Azure/cyclecloud-slurm",
      "tag": "3.0.12",
      "url": "https://github.com/Azure/cyclecloud-slurm/releases/3.0.12",
      "reason": "missing"
    },
    {
      "name": "pbspro",
      "version": "2.0.25",
      "repository": "Azure/cyclecloud-pbspro",
      "tag": "2.0.25",
      "reason": "incomplete"
    }
  ],
  "unresolvable": [
    {
      "name": "mylocal",
      "version": "1.0.0",
      "url": "file:///opt/projects/mylocal",
      "problem": "Url is not a GitHub release URL"
    }
  ],
  "inventory": [
    {
      "name": "slurm",
      "versions": [
        "2.5.0"
      ],
      "blobs": [
        {
          "name": "cyclecloud_api-8.1.0-py2.py3-none-any.whl",
          "sha256": "` + hashA + `",
          "size": 41234
        },
        {
          "name": "sub/dir/x.rpm",
          "sha256": "` + hashA + `",
          "size": 0
        }
      ]
    },
    {
      "name": "pbspro",
      "versions": [
        "2.0.25"
      ],
      "blobs": []
    }
  ]
}
`

func TestMarshalFormat(t *testing.T) {
	b, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != sampleJSON {
		t.Errorf("Marshal wrote\n%s\nwant\n%s", b, sampleJSON)
	}
	r, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v", err)
	}
	want := sample()
	want.Inventory[1].Blobs = []StagedBlob{}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("round trip\n%+v\nwant\n%+v", r, want)
	}
}

func TestMarshalEmpty(t *testing.T) {
	r := &Request{Schema: Schema, Created: time.Unix(0, 0).UTC()}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"wanted": []`, `"unresolvable": []`, `"inventory": []`} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("empty request lacks %s:\n%s", s, b)
		}
	}
	if _, err := Parse(b); err != nil {
		t.Errorf("Parse of an empty request: %v", err)
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	r := sample()
	r.Wanted[0].Name = "../slurm"
	if _, err := r.Marshal(); err == nil || !strings.Contains(err.Error(), `unsafe name or version "../slurm"`) {
		t.Fatalf("Marshal error %v, want unsafe name", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(s string) string
		wantErr string
	}{
		{"not JSON", func(string) string { return "slurm 2.5.0" }, "not a request file"},
		{"array", func(string) string { return "[]" }, "not a request file"},
		{"no schema", func(s string) string { return strings.Replace(s, `"schema": "ccmirror.request/v1",`, "", 1) }, `no "schema" field`},
		{"bundle manifest", func(string) string { return `{"schema": "ccmirror.bundle/v1", "projects": []}` }, `schema "ccmirror.bundle/v1", want "ccmirror.request/v1"`},
		{"newer schema with new fields", func(s string) string {
			return strings.Replace(strings.Replace(s, "request/v1", "request/v2", 1), `"root"`, `"extra": 1, "root"`, 1)
		}, `schema "ccmirror.request/v2"`},
		{"unknown field", func(s string) string { return strings.Replace(s, `"root"`, `"rooot": "x", "root"`, 1) }, `unknown field "rooot"`},
		{"unknown nested field", func(s string) string {
			return strings.Replace(s, `"reason": "missing"`, `"reason": "missing", "why": 1`, 1)
		}, `unknown field "why"`},
		{"trailing data", func(s string) string { return s + "{}" }, "trailing data"},
		{"no created", func(s string) string { return strings.Replace(s, `"created": "2026-03-04T05:06:07Z",`, "", 1) }, "no creation time"},
		{"unsafe wanted name", func(s string) string {
			return strings.Replace(s, `"name": "slurm",
      "version": "3.0.12"`, `"name": "../../etc",
      "version": "3.0.12"`, 1)
		}, `wanted[0]: unsafe name or version "../../etc"@"3.0.12"`},
		{"bad repository", func(s string) string { return strings.Replace(s, `"Azure/cyclecloud-slurm"`, `"cyclecloud-slurm"`, 1) }, `wanted[0] slurm@3.0.12: repository "cyclecloud-slurm" is not OWNER/REPO`},
		{"empty tag", func(s string) string { return strings.Replace(s, `"tag": "3.0.12"`, `"tag": ""`, 1) }, `tag "" is not a usable tag name`},
		{"staged print on a missing version", func(s string) string {
			return strings.Replace(s, `"reason": "missing"`, `"reason": "missing", "staged": "sha256:`+strings.Repeat("a", 64)+`"`, 1)
		}, `staged "sha256:aaaa`},
		{"malformed staged print", func(s string) string {
			return strings.Replace(s, `"reason": "incomplete"`, `"reason": "incomplete", "staged": "md5:1"`, 1)
		}, `staged "md5:1": want sha256: and 64 hex digits`},
		{"bad reason", func(s string) string { return strings.Replace(s, `"reason": "missing"`, `"reason": "wanted"`, 1) }, `reason "wanted", want "missing" or "incomplete"`},
		{"duplicate wanted", func(s string) string {
			return strings.Replace(s, `"name": "pbspro",
      "version": "2.0.25",
      "repository": "Azure/cyclecloud-pbspro"`, `"name": "slurm",
      "version": "3.0.12",
      "repository": "Azure/cyclecloud-pbspro"`, 1)
		}, "wanted[1]: slurm@3.0.12 listed twice"},
		{"control characters", func(s string) string { return strings.Replace(s, `"ccserver01"`, `"cc\u001b[31mserver"`, 1) }, "hostname"},
		{"unresolvable without problem", func(s string) string { return strings.Replace(s, `"Url is not a GitHub release URL"`, `""`, 1) }, "no problem given"},
		{"bad hash", func(s string) string { return strings.Replace(s, hashA, strings.ToUpper(hashA), 1) }, "is not 64 lower-case hex digits"},
		{"short hash", func(s string) string { return strings.Replace(s, hashA, hashA[:63], 1) }, "is not 64 lower-case hex digits"},
		{"negative size", func(s string) string { return strings.Replace(s, `"size": 41234`, `"size": -1`, 1) }, "negative size"},
		{"unsafe blob name", func(s string) string { return strings.Replace(s, `"sub/dir/x.rpm"`, `"../x.rpm"`, 1) }, `unsafe blob name "../x.rpm"`},
		{"duplicate blob", func(s string) string {
			return strings.Replace(s, `"sub/dir/x.rpm"`, `"cyclecloud_api-8.1.0-py2.py3-none-any.whl"`, 1)
		}, "listed twice"},
		{"duplicate staged project", func(s string) string {
			return strings.Replace(s, `"name": "pbspro",
      "versions"`, `"name": "slurm",
      "versions"`, 1)
		}, "inventory[1]: project slurm listed twice"},
		{"wrong type", func(s string) string { return strings.Replace(s, `"size": 41234`, `"size": "41234"`, 1) }, "cannot unmarshal string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.edit(sampleJSON)
			if in == sampleJSON {
				t.Fatal("edit changed nothing")
			}
			r, err := Parse([]byte(in))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error containing %q", r, tc.wantErr)
			}
			if !errors.Is(err, manifest.ErrVerify) {
				t.Errorf("error %q does not wrap manifest.ErrVerify", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestStagedBlob(t *testing.T) {
	r := sample()
	b, ok := r.StagedBlob("slurm", "sub/dir/x.rpm")
	if !ok || b.SHA256 != hashA {
		t.Errorf("StagedBlob(slurm, sub/dir/x.rpm) = %+v, %v", b, ok)
	}
	for _, q := range [][2]string{{"pbspro", "sub/dir/x.rpm"}, {"slurm", "x.rpm"}, {"nope", "x"}} {
		if b, ok := r.StagedBlob(q[0], q[1]); ok {
			t.Errorf("StagedBlob(%s, %s) = %+v, want none", q[0], q[1], b)
		}
	}
}

// keyPair returns an ssh signer and functions that sign and verify request
// bytes in a given namespace, the way manifest/trust does.
func keyPair(t *testing.T) (sign func(ns string) func([]byte) ([]byte, error), verify func(msg, sig []byte) error) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sign = func(ns string) func([]byte) ([]byte, error) {
		return func(msg []byte) ([]byte, error) {
			s, err := sshsig.Sign(bytes.NewReader(msg), signer, sshsig.HashSHA512, ns)
			if err != nil {
				return nil, err
			}
			return sshsig.Armor(s), nil
		}
	}
	verify = func(msg, sig []byte) error {
		s, err := sshsig.Unarmor(sig)
		if err != nil {
			return errors.Join(manifest.ErrVerify, err)
		}
		if err := sshsig.Verify(bytes.NewReader(msg), s, signer.PublicKey(), s.HashAlgorithm, Namespace); err != nil {
			return errors.Join(manifest.ErrVerify, err)
		}
		return nil
	}
	return sign, verify
}

func TestSaveLoad(t *testing.T) {
	sign, verify := keyPair(t)
	tests := []struct {
		name    string
		sign    func([]byte) ([]byte, error)
		tamper  func(t *testing.T, path string)
		verify  func(msg, sig []byte) error
		wantErr string // "" means Load succeeds
	}{
		{name: "unsigned, not verified"},
		{name: "signed and verified", sign: sign(Namespace), verify: verify},
		{name: "signed, read without verification", sign: sign(Namespace)},
		{name: "unsigned but signature required", verify: verify, wantErr: "request.json.sig missing; the request must be signed"},
		{name: "bundle signature replayed as request signature", sign: sign(manifest.Namespace), verify: verify, wantErr: "namespace"},
		{
			name: "request edited after signing", sign: sign(Namespace), verify: verify, wantErr: "request.json.sig: verification failed",
			tamper: func(t *testing.T, path string) {
				b, _ := os.ReadFile(path)
				b = bytes.Replace(b, []byte(`"reason": "missing"`), []byte(`"reason": "incomplete"`), 1)
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "signature file garbage", sign: sign(Namespace), verify: verify, wantErr: "verification failed",
			tamper: func(t *testing.T, path string) {
				if err := os.WriteFile(SigPath(path), []byte("not a signature\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "request.json")
			if err := Save(path, sample(), tc.sign); err != nil {
				t.Fatalf("Save: %v", err)
			}
			if _, err := os.Stat(SigPath(path)); (err == nil) != (tc.sign != nil) {
				t.Fatalf("signature file present = %v, want %v", err == nil, tc.sign != nil)
			}
			if tc.tamper != nil {
				tc.tamper(t, path)
			}
			r, err := Load(path, tc.verify)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if r.Wanted[0].Name != "slurm" || r.Hostname != "ccserver01" {
					t.Errorf("Load returned %+v", r)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tc.wantErr)
			}
			if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q\nwant ErrVerify and %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadVerifiesBeforeParsing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "request.json")
	msg := []byte("{not even json")
	if err := os.WriteFile(path, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SigPath(path), []byte("SIG"), 0o644); err != nil {
		t.Fatal(err)
	}
	var gotMsg, gotSig []byte
	refuse := errors.New("refused by test")
	_, err := Load(path, func(m, s []byte) error { gotMsg, gotSig = m, s; return refuse })
	if !errors.Is(err, refuse) {
		t.Fatalf("error %v, want the verifier's error", err)
	}
	if !bytes.Equal(gotMsg, msg) || string(gotSig) != "SIG" {
		t.Errorf("verify got %q, %q; want the exact file bytes", gotMsg, gotSig)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"), nil)
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, manifest.ErrVerify) {
		t.Fatalf("error %v, want not-exist and not a verification failure", err)
	}
}

func TestSaveUnsignedRemovesStaleSignature(t *testing.T) {
	sign, verify := keyPair(t)
	path := filepath.Join(t.TempDir(), "request.json")
	if err := Save(path, sample(), sign(Namespace)); err != nil {
		t.Fatal(err)
	}
	r := sample()
	r.Wanted = r.Wanted[:1]
	if err := Save(path, r, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(SigPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale signature left beside the new request: %v", err)
	}
	if _, err := Load(path, verify); !errors.Is(err, manifest.ErrVerify) {
		t.Fatalf("Load with verification of an unsigned request: %v", err)
	}
}

func TestSaveSignFailureChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "request.json")
	if err := Save(path, sample(), nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	r := sample()
	r.Hostname = "other"
	err := Save(path, r, func([]byte) ([]byte, error) { return nil, errors.New("agent refused") })
	if err == nil || !strings.Contains(err.Error(), "agent refused") {
		t.Fatalf("Save error %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("request file changed although signing failed")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only request.json", len(entries))
	}
}

// FuzzParse checks Parse never panics and that whatever it accepts is valid
// and survives Marshal/Parse unchanged.
func FuzzParse(f *testing.F) {
	b, err := sample().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"schema": "ccmirror.request/v1", "created": "2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"schema": "ccmirror.request/v1", "created": "2026-01-01T00:00:00+02:00", "wanted": null, "inventory": [{"name": "a", "blobs": null}]}`))
	f.Add([]byte(`{"schema": "ccmirror.bundle/v1"}`))
	f.Add([]byte(`{"schema": "ccmirror.request/v1", "created": "2026-01-01T00:00:00Z", "hostname": "\u0000"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := Parse(in)
		if err != nil {
			if !errors.Is(err, manifest.ErrVerify) {
				t.Fatalf("error does not wrap ErrVerify: %v", err)
			}
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted request does not marshal: %v", err)
		}
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		out2, err := r2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("not stable across Marshal/Parse:\n%s\n%s", out, out2)
		}
	})
}

// TestLoadRefusesFIFOs: a request or its signature given as a FIFO is
// refused at once, never waited on.
func TestLoadRefusesFIFOs(t *testing.T) {
	t.Parallel()
	for _, which := range []string{"request", "signature"} {
		t.Run(which, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "request.json")
			fifo := path
			if which == "signature" {
				if err := Save(path, sample(), nil); err != nil {
					t.Fatal(err)
				}
				fifo = SigPath(path)
			}
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, func(m, s []byte) error { return nil })
			if err == nil || !strings.Contains(err.Error(), fifo+" is a FIFO") {
				t.Fatalf("Load with a FIFO %s: %v, want a refusal naming it", which, err)
			}
		})
	}
}
