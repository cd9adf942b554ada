package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// rangeFaults is an HTTP transport that hurts the blob GET whose range
// starts at a chosen offset: flips one byte of its body, cuts it short, or
// holds it until the request is cancelled. It records every range asked.
type rangeFaults struct {
	at      int64 // the range start the fault applies to
	corrupt bool  // flip the first byte
	cut     int64 // > 0: end the body after this many bytes
	hold    bool  // never send the body; end when the request is cancelled
	held    chan struct{}

	mu     sync.Mutex
	ranges []string
}

func rangeStart(req *http.Request) (int64, string, bool) {
	for k, v := range req.Header {
		if (strings.EqualFold(k, "x-ms-range") || strings.EqualFold(k, "range")) && len(v) > 0 {
			var a, b int64
			if _, err := fmt.Sscanf(v[0], "bytes=%d-%d", &a, &b); err == nil {
				return a, v[0], true
			}
		}
	}
	return 0, "", false
}

func (r *rangeFaults) Do(req *http.Request) (*http.Response, error) {
	start, rg, ok := rangeStart(req)
	isGet := req.Method == http.MethodGet && !strings.Contains(req.URL.RawQuery, "comp=")
	if ok && isGet {
		r.mu.Lock()
		r.ranges = append(r.ranges, rg)
		r.mu.Unlock()
	}
	if ok && isGet && start == r.at && r.hold {
		close(r.held)
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !ok || !isGet || start != r.at {
		return resp, err
	}
	switch {
	case r.corrupt:
		resp.Body = &flipFirst{ReadCloser: resp.Body}
	case r.cut > 0:
		resp.Body = &countingBody{ReadCloser: resp.Body, rec: &recorded{}, limit: r.cut}
	}
	return resp, nil
}

// flipFirst inverts the first byte of a body.
type flipFirst struct {
	io.ReadCloser
	done bool
}

func (f *flipFirst) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 0xff
		f.done = true
	}
	return n, err
}

// TestPullManyRanges: a blob of several ranges comes down as ranges that
// tile it exactly, into a file identical to it, hashed and checked.
func TestPullManyRanges(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	const rs = 256 << 10
	src, data := randomFile(t, dir, "src.tar", 9*rs+4321)
	url := base + "/" + newContainerName(t) + "/many.tar"
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, conc := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			rec := &rangeFaults{at: -1}
			dst := fmt.Sprintf("%s/dst%d.tar", dir, conc)
			res, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: conc, Transport: rec})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if sha(got) != sha(data) || res.SHA256 != sha(data) || !res.Checked || res.Downloaded != int64(len(data)) {
				t.Fatalf("pulled %d bytes (sha ok %v, result %+v)", len(got), sha(got) == sha(data), res)
			}
			var want []string
			for off := 0; off < len(data); off += rs {
				want = append(want, fmt.Sprintf("bytes=%d-%d", off, min(off+rs, len(data))-1))
			}
			slices.Sort(rec.ranges)
			slices.Sort(want)
			if !slices.Equal(rec.ranges, want) {
				t.Errorf("ranges asked %v, want %v", rec.ranges, want)
			}
			if _, err := os.Stat(dst + PartialSuffix); !os.IsNotExist(err) {
				t.Error(".partial left behind")
			}
		})
	}
}

// TestPullBadRange: a range whose bytes are wrong fails verification and
// leaves nothing; a range cut short (no retries) fails as upstream, leaves
// no file under the final name, keeps only contiguous bytes for the next
// pull, which resumes into a file identical to the blob.
func TestPullBadRange(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	const rs = 256 << 10
	src, data := randomFile(t, dir, "src.tar", 6*rs+99)
	url := base + "/" + newContainerName(t) + "/bad.tar"
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	gone := func(t *testing.T, paths ...string) {
		t.Helper()
		for _, p := range paths {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s exists after the failed pull", p)
			}
		}
	}

	t.Run("corrupt", func(t *testing.T) {
		dst := dir + "/corrupt.tar"
		_, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: 4, Transport: &rangeFaults{at: 3 * rs, corrupt: true}})
		assertOneLine(t, err)
		if !isVerify(err) || !strings.Contains(err.Error(), "sha256") {
			t.Fatalf("corrupt range: %v, want a sha256 verification error", err)
		}
		gone(t, dst, dst+PartialSuffix, dst+PartialSuffix+ETagSuffix)
	})

	t.Run("short", func(t *testing.T) {
		dst := dir + "/short.tar"
		const cut = 1000
		_, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: 4, MaxRetries: -1, Transport: &rangeFaults{at: 2 * rs, cut: cut}})
		assertOneLine(t, err)
		if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "run again to resume") {
			t.Fatalf("short range: %v, want ErrUpstream saying to run again", err)
		}
		gone(t, dst)
		st, err := os.Stat(dst + PartialSuffix)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 2*rs+cut {
			t.Errorf("partial holds %d bytes, more than the %d contiguous ones", st.Size(), 2*rs+cut)
		}
		part, _ := os.ReadFile(dst + PartialSuffix)
		if sha(part) != sha(data[:len(part)]) {
			t.Fatal("the partial's bytes are not the blob's")
		}
		res, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if sha(got) != sha(data) || res.ResumedFrom != st.Size() || res.Downloaded != int64(len(data))-st.Size() {
			t.Fatalf("resume: %+v (content ok %v)", res, sha(got) == sha(data))
		}
	})
}

// TestPullCancel: cancelling a pull with ranges under way ends it with the
// cancellation and no file under the final name.
func TestPullCancel(t *testing.T) {
	base := azurite(t)
	useKey(t)
	dir := t.TempDir()
	const rs = 256 << 10
	src, _ := randomFile(t, dir, "src.tar", 4*rs)
	url := base + "/" + newContainerName(t) + "/cancel.tar"
	if _, err := Push(context.Background(), src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rf := &rangeFaults{at: rs, hold: true, held: make(chan struct{})}
	done := make(chan error, 1)
	dst := dir + "/cancel.tar"
	go func() {
		_, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: 2, Transport: rf})
		done <- err
	}()
	select {
	case <-rf.held:
	case err := <-done:
		t.Fatalf("the pull ended before its held range: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the cancellation", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("a cancelled pull left a file under the final name")
	}
}

// TestPullCheck: Check sees every byte in order, a resumed partial's
// included; its sha256 is the result's; its failure stops the pull and
// leaves nothing.
func TestPullCheck(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	const rs = 256 << 10
	src, data := randomFile(t, dir, "src.tar", 7*rs+5)
	url := base + "/" + newContainerName(t) + "/check.tar"
	pushed, err := Push(ctx, src, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []byte
	readAll := func(withSum bool) func(io.Reader, bool) (Checked, error) {
		return func(r io.Reader, wantSum bool) (Checked, error) {
			if !wantSum {
				t.Error("Check told no sum is wanted of a blob without ccmirror_head_sha256")
			}
			b, err := io.ReadAll(r)
			seen = b
			if !withSum {
				return Checked{}, err
			}
			return Checked{SHA256: sha(b)}, err
		}
	}
	tests := []struct {
		name    string
		partial int
		withSum bool
	}{
		{"fresh", 0, true},
		{"resumed", 3*rs + 17, true},
		{"no sum from the check", 0, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := fmt.Sprintf("%s/dst%d.tar", dir, i)
			if tc.partial > 0 {
				os.WriteFile(dst+PartialSuffix, data[:tc.partial], 0o644)
				os.WriteFile(dst+PartialSuffix+ETagSuffix, []byte(pushed.ETag+"\n"), 0o644)
			}
			seen = nil
			res, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: 3, Check: readAll(tc.withSum)})
			if err != nil {
				t.Fatal(err)
			}
			if sha(seen) != sha(data) || res.SHA256 != sha(data) || res.ResumedFrom != int64(tc.partial) {
				t.Fatalf("check saw %d bytes (ok %v); result %+v", len(seen), sha(seen) == sha(data), res)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		dst := dir + "/refused.tar"
		bad := errors.New("not a bundle")
		_, err := Pull(ctx, url, dst, Options{BlockSize: rs, Concurrency: 3, Check: func(r io.Reader, _ bool) (Checked, error) {
			io.ReadFull(r, make([]byte, 1000))
			return Checked{}, bad
		}})
		var ce *CheckError
		if !errors.As(err, &ce) || !errors.Is(err, bad) || !strings.Contains(ce.URL, "check.tar") {
			t.Fatalf("err = %v, want the check's error", err)
		}
		for _, p := range []string{dst, dst + PartialSuffix, dst + PartialSuffix + ETagSuffix} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s exists after the check failed", p)
			}
		}
	})
}
