package manifest

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestHashElsewhere: with the payload hashes on goroutines of their own,
// a good bundle reads as before, a payload changed in its last byte fails
// with ErrVerify naming it (read to its end or skipped), and a Reader
// closed part-way through a large payload leaves no goroutine behind.
func TestHashElsewhere(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*asyncMin/16+7) // hashed elsewhere
	tb := newTestBundle("slurm", "4.0.9", []byte("source"), map[string][]byte{"big.rpm": big, "small.rpm": []byte("small")})
	good := tb.write(t, nil)
	corrupt := func() []byte {
		es := rawEntries(t, good)
		for i := range es {
			if strings.HasSuffix(es[i].hdr.Name, "big.rpm") {
				es[i].body = bytes.Clone(es[i].body)
				es[i].body[len(es[i].body)-1] ^= 1
			}
		}
		return buildTar(t, es)
	}()
	for _, tc := range []struct {
		name    string
		bundle  []byte
		read    bool // read each payload to its end (else skip it)
		wantErr bool
	}{
		{"good, read", good, true, false},
		{"good, skipped", good, false, false},
		{"last byte changed, read", corrupt, true, true},
		{"last byte changed, skipped", corrupt, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br, err := NewReader(bytes.NewReader(tc.bundle))
			if err != nil {
				t.Fatal(err)
			}
			br.HashElsewhere()
			defer br.Close()
			var got []byte
			for err == nil {
				var p *Payload
				if p, err = br.Next(); err != nil {
					break
				}
				if tc.read {
					var b []byte
					if b, err = io.ReadAll(p); err == nil && p.File.Path == "projects/slurm/blobs/big.rpm" {
						got = b
					}
				}
			}
			if !tc.wantErr {
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				if tc.read && !bytes.Equal(got, big) {
					t.Fatalf("big.rpm read back %d bytes, not what was written", len(got))
				}
				return
			}
			if !isVerify(err) || !strings.Contains(err.Error(), "big.rpm") {
				t.Fatalf("err = %v, want ErrVerify naming big.rpm", err)
			}
		})
	}

	t.Run("closed part-way", func(t *testing.T) {
		before := runtime.NumGoroutine()
		for range 20 {
			br, err := NewReader(bytes.NewReader(good))
			if err != nil {
				t.Fatal(err)
			}
			br.HashElsewhere()
			for {
				p, err := br.Next()
				if err != nil {
					t.Fatal(err)
				}
				if p.File.Size >= asyncMin {
					if _, err := io.ReadFull(p, make([]byte, asyncMin)); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			br.Close()
			br.Close() // twice is fine
			if _, err := br.Next(); err == nil {
				t.Fatal("Next after Close succeeded")
			}
		}
		// A hasher goroutine ends just after Close returns: wait for it (only
		// a leak waits the whole 10 s).
		for i := 0; runtime.NumGoroutine() > before && i < 1000; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Fatalf("%d goroutines after 20 closed readers, %d before: the hashers leak", n, before)
		}
	})
}
