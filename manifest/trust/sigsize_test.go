package trust

import "testing"

// TestSignatureSize: the length predicted for Ed25519 and RSA keys is the
// length of every signature they make; ECDSA lengths vary, so none is
// predicted.
func TestSignatureSize(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	for _, kind := range []keyKind{kindEd25519, kindECDSA, kindRSA} {
		t.Run(kind.name, func(t *testing.T) {
			k := sshKey(t, kind.name, kind, "")
			s, err := LoadSigner(k.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			n := s.SignatureSize()
			if kind.name == kindECDSA.name {
				if n != 0 {
					t.Fatalf("SignatureSize() = %d for ECDSA, want 0", n)
				}
				return
			}
			for i := range 3 {
				sig, err := s.Sign([]byte{byte(i)})
				if err != nil {
					t.Fatal(err)
				}
				if len(sig) != n {
					t.Fatalf("signature is %d bytes, SignatureSize() = %d", len(sig), n)
				}
			}
		})
	}
}
