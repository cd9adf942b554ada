package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/transport/blob/azuritetest"
)

// The integration tests run against a real Azurite (see azuritetest).

func TestMain(m *testing.M) {
	code := m.Run()
	azuritetest.Stop()
	os.Exit(code)
}

// azurite returns the Azurite account URL, skipping the test when Azurite
// cannot be installed on this machine.
func azurite(t *testing.T) string { return azuritetest.URL(t) }

// credEnv are every variable the credential chain reads.
var credEnv = []string{EnvConnectionString, EnvAccountKey, EnvAccountName,
	"AZURE_TOKEN_CREDENTIALS", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME"}

// clearCreds empties every credential variable for the test.
func clearCreds(t *testing.T) {
	t.Helper()
	for _, k := range credEnv {
		t.Setenv(k, "")
	}
}

// useKey makes the test authenticate with Azurite's account key.
func useKey(t *testing.T) {
	t.Helper()
	clearCreds(t)
	t.Setenv(EnvAccountKey, devKey)
}

func newContainerName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

func randomFile(t *testing.T, dir, name string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := dir + "/" + name
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// recorder is an HTTP transport that logs every request and counts the
// response body bytes, and can fail chosen requests.
type recorder struct {
	mu   sync.Mutex
	reqs []*recorded
	fail func(*http.Request) bool
	// cutAfter > 0 breaks the next blob GET's body after that many bytes
	// (once): a connection dropped mid-download.
	cutAfter int64
}

type recorded struct {
	Method, Query, Range string
	Status               int
	mu                   sync.Mutex
	bodyBytes            int64
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	rec := &recorded{Method: req.Method, Query: req.URL.RawQuery}
	for k, v := range req.Header { // the SDK sets x-ms-range without canonicalising
		if (strings.EqualFold(k, "x-ms-range") || strings.EqualFold(k, "range")) && len(v) > 0 {
			rec.Range = v[0]
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	fail := r.fail
	r.mu.Unlock()
	if fail != nil && fail(req) {
		return nil, fmt.Errorf("injected failure for %s %s", req.Method, req.URL.RawQuery)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rec.Status = resp.StatusCode
	body := &countingBody{ReadCloser: resp.Body, rec: rec, limit: -1}
	r.mu.Lock()
	if r.cutAfter > 0 && req.Method == http.MethodGet && !strings.Contains(req.URL.RawQuery, "comp=") {
		body.limit, r.cutAfter = r.cutAfter, 0
	}
	r.mu.Unlock()
	resp.Body = body
	return resp, nil
}

func (r *recorder) snapshot() []*recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*recorded(nil), r.reqs...)
}

// blobGets returns the GET requests for blob content (not listings).
func (r *recorder) blobGets() []*recorded {
	var out []*recorded
	for _, q := range r.snapshot() {
		if q.Method == http.MethodGet && !strings.Contains(q.Query, "comp=") && !strings.Contains(q.Query, "restype=") {
			out = append(out, q)
		}
	}
	return out
}

func (q *recorded) bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bodyBytes
}

type countingBody struct {
	io.ReadCloser
	rec   *recorded
	limit int64 // bytes left before the cut; -1: no cut
}

func (c *countingBody) Read(p []byte) (int, error) {
	if c.limit == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if c.limit > 0 && int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.ReadCloser.Read(p)
	if c.limit > 0 {
		c.limit -= int64(n)
	}
	c.rec.mu.Lock()
	c.rec.bodyBytes += int64(n)
	c.rec.mu.Unlock()
	return n, err
}

func assertOneLine(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error")
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error spans several lines:\n%s", msg)
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, data := randomFile(t, dir, "slurm-2.5.0.tar", 3<<20+12345)
	cont := newContainerName(t)
	rec := &recorder{}
	var lastDone, lastTotal int64
	opts := Options{BlockSize: 1 << 20, Concurrency: 3, Transport: rec,
		Progress: func(done, total int64) { lastDone, lastTotal = done, total }}

	// The container does not exist yet: Push creates it; a URL ending in "/"
	// means the file's base name under that prefix.
	res, err := Push(ctx, src, base+"/"+cont+"/bundles/", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CreatedContainer || res.Blob != "bundles/slurm-2.5.0.tar" || res.Size != int64(len(data)) || res.SHA256 != sha(data) || res.Skipped {
		t.Fatalf("unexpected push result %+v", res)
	}
	if lastDone != int64(len(data)) || lastTotal != int64(len(data)) {
		t.Errorf("progress ended at %d/%d, want %d", lastDone, lastTotal, len(data))
	}
	var blocks, commits int
	for _, q := range rec.snapshot() {
		switch comp(q.Query) {
		case "block":
			blocks++
		case "blocklist":
			commits++
		}
	}
	if blocks != 4 || commits != 1 {
		t.Errorf("want 4 staged blocks and 1 commit, saw %d and %d", blocks, commits)
	}

	// Pushing the same file again uploads nothing.
	again, err := Push(ctx, src, base+"/"+cont+"/bundles/slurm-2.5.0.tar", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Skipped || again.CreatedContainer {
		t.Errorf("second push of identical content: %+v, want Skipped", again)
	}

	dst := dir + "/out/slurm-2.5.0.tar"
	pr, err := Pull(ctx, base+"/"+cont+"/bundles/slurm-2.5.0.tar", dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if sha(got) != sha(data) || pr.SHA256 != sha(data) || !pr.Checked || pr.ResumedFrom != 0 || pr.Downloaded != int64(len(data)) {
		t.Fatalf("pull result %+v, file sha256 %s, want %s", pr, sha(got), sha(data))
	}
	for _, leftover := range []string{dst + PartialSuffix, dst + PartialSuffix + ETagSuffix} {
		if _, err := os.Stat(leftover); !os.IsNotExist(err) {
			t.Errorf("%s left behind", leftover)
		}
	}
}

// Sizes around the block size take both upload paths (one Put Blob below
// it, staged blocks from it on) and come back intact.
func TestPushPullSizes(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	cont := base + "/" + newContainerName(t) + "/"
	const bs = 1 << 20
	tests := []struct {
		size        int
		wantBlocks  int
		wantPutBlob int
	}{
		{0, 0, 1}, {1, 0, 1}, {bs - 1, 0, 1}, {bs, 1, 0}, {bs + 1, 2, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			src, data := randomFile(t, dir, fmt.Sprintf("f%d.tar", tc.size), tc.size)
			rec := &recorder{}
			res, err := Push(ctx, src, cont, Options{BlockSize: bs, Transport: rec})
			if err != nil {
				t.Fatal(err)
			}
			var blocks, puts int
			for _, q := range rec.snapshot() {
				switch {
				case q.Method == http.MethodPut && comp(q.Query) == "block":
					blocks++
				case q.Method == http.MethodPut && q.Query == "":
					puts++
				}
			}
			if blocks != tc.wantBlocks || puts != tc.wantPutBlob {
				t.Errorf("%d staged blocks and %d Put Blob, want %d and %d", blocks, puts, tc.wantBlocks, tc.wantPutBlob)
			}
			dst := dir + "/back/" + res.Blob
			pr, err := Pull(ctx, cont+res.Blob, dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil || sha(got) != sha(data) || !pr.Checked {
				t.Fatalf("pulled %d bytes (err %v), checked=%v", len(got), err, pr.Checked)
			}
		})
	}
}

// A file rewritten while it is uploaded is caught before the commit.
func TestPushFileChangedDuringUpload(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "moving.tar", 3<<20)
	url := base + "/" + newContainerName(t) + "/moving.tar"
	changed := false
	opts := Options{BlockSize: 1 << 20, Concurrency: 1, Progress: func(done, total int64) {
		if !changed && done > 0 {
			changed = true
			f, err := os.OpenFile(src, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.WriteAt([]byte("rewritten"), total-100)
			f.Close()
		}
	}}
	_, err := Push(ctx, src, url, opts)
	if !isVerify(err) || errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "changed while it was uploaded") {
		t.Fatalf("push of a changing file: %v", err)
	}
	if _, _, err := Open(ctx, url); !errors.Is(err, ErrNotFound) {
		t.Fatalf("blob visible after a failed push: %v", err)
	}
}

// An interrupted push must not leave a partial blob under the final name,
// and must not replace an existing blob.
func TestPushInterruptedLeavesNothingVisible(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	cont := newContainerName(t)
	url := base + "/" + cont + "/b.tar"
	failCommit := &recorder{fail: func(r *http.Request) bool { return strings.Contains(r.URL.RawQuery, "comp=blocklist") }}
	opts := Options{BlockSize: 1 << 20, Concurrency: 2, MaxRetries: -1, Transport: failCommit}

	v1, _ := randomFile(t, dir, "v1.tar", 2<<20+1)
	_, err := Push(ctx, v1, url, opts)
	assertOneLine(t, err)
	if !errors.Is(err, ErrUpstream) {
		t.Errorf("error %v does not match ErrUpstream", err)
	}
	_, _, err = Open(ctx, url)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a failed first push the blob must not exist, got %v", err)
	}

	if _, err := Push(ctx, v1, url, Options{BlockSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	v2, _ := randomFile(t, dir, "v2.tar", 3<<20)
	if _, err := Push(ctx, v2, url, opts); err == nil {
		t.Fatal("push with a failing commit succeeded")
	}
	r, _, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(v1)
	if sha(got) != sha(want) {
		t.Fatal("a failed push changed the visible blob")
	}
}

func TestSASToken(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	cont := newContainerName(t)
	// A container SAS cannot create its container: make it with the key.
	if err := Put(ctx, base+"/"+cont+"/README", []byte("ccmirror bundles\n")); err != nil {
		t.Fatal(err)
	}
	sasQuery := containerSAS(t, cont, time.Now().Add(time.Hour))
	clearCreds(t) // from here on only the SAS in the URL authenticates

	src, data := randomFile(t, dir, "pbspro-2.0.25.tar", 300<<10)
	url := base + "/" + cont + "/pbspro-2.0.25.tar?" + sasQuery
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	dst := dir + "/pulled.tar"
	if _, err := Pull(ctx, url, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if sha(got) != sha(data) {
		t.Fatal("SAS round trip changed the content")
	}
	infos, err := List(ctx, base+"/"+cont+"?"+sasQuery, "pbspro-")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != "pbspro-2.0.25.tar" || infos[0].SHA256 != sha(data) {
		t.Fatalf("List = %+v", infos)
	}

	// A token whose signature is wrong is one clear line matching ErrUpstream
	// and ErrAuth, and never shows the signature.
	badSig := make([]byte, 32)
	rand.Read(badSig)
	forged := replaceSig(t, sasQuery, badSig)
	tests := []struct {
		name string
		run  func(url string) error
	}{
		{"push", func(u string) error { _, err := Push(ctx, src, u, Options{}); return err }},
		{"pull", func(u string) error { _, err := Pull(ctx, u, dir+"/forged.tar", Options{}); return err }},
		{"open", func(u string) error { _, _, err := Open(ctx, u); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(base + "/" + cont + "/pbspro-2.0.25.tar?" + forged)
			assertOneLine(t, err)
			t.Log(err)
			if !errors.Is(err, ErrUpstream) || !errors.Is(err, ErrAuth) {
				t.Errorf("error %q does not match ErrUpstream and ErrAuth", err)
			}
			if !strings.Contains(err.Error(), "SAS token") || !strings.Contains(err.Error(), "403") {
				t.Errorf("error %q does not say the SAS token was rejected", err)
			}
			if strings.Contains(err.Error(), sigOf(t, forged)) || strings.Contains(err.Error(), sigOf(t, sasQuery)) {
				t.Errorf("error %q shows the signature", err)
			}
		})
	}
	expired := containerSAS(t, cont, time.Now().Add(-time.Minute))
	_, err = Push(ctx, src, base+"/"+cont+"/x.tar?"+expired, Options{})
	assertOneLine(t, err)
	if !errors.Is(err, ErrAuth) || !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "expired at") {
		t.Errorf("expired SAS: %v", err)
	}
	if _, err := os.Stat(dir + "/forged.tar"); !os.IsNotExist(err) {
		t.Error("a rejected pull left a file under the final name")
	}
}

func TestConnectionString(t *testing.T) {
	base := azurite(t)
	clearCreds(t)
	t.Setenv(EnvConnectionString, "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="+devKey+";BlobEndpoint="+base+";")
	ctx := context.Background()
	dir := t.TempDir()
	src, data := randomFile(t, dir, "gridengine.tar", 100<<10)
	cont := newContainerName(t)
	url := base + "/" + cont + "/gridengine.tar"
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ctx, url, dir+"/back.tar", Options{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dir + "/back.tar")
	if sha(got) != sha(data) {
		t.Fatal("round trip with a connection string changed the content")
	}

	// A wrong key is rejected by the service: one line, ErrAuth.
	t.Setenv(EnvConnectionString, "AccountName=devstoreaccount1;AccountKey="+strings.Repeat("A", 86)+"==")
	_, err := Pull(ctx, url, dir+"/x.tar", Options{})
	assertOneLine(t, err)
	if !errors.Is(err, ErrAuth) || !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), EnvConnectionString) {
		t.Errorf("wrong key: %v", err)
	}
}

func TestPullResume(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, data := randomFile(t, dir, "src.tar", 2<<20+777)
	cont := newContainerName(t)
	url := base + "/" + cont + "/resume.tar"
	pushed, err := Push(ctx, src, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	half := int64(len(data) / 2)

	tests := []struct {
		name        string
		partial     []byte // content of .partial before the pull
		etag        string // content of the sidecar
		wantFrom    int64
		wantFetched int64
	}{
		{"same ETag resumes", data[:half], pushed.ETag, half, int64(len(data)) - half},
		{"changed ETag restarts", bytes.Repeat([]byte{'x'}, int(half)), `"0x8DEADBEEF"`, 0, int64(len(data))},
		{"no sidecar restarts", data[:half], "", 0, int64(len(data))},
		{"complete partial is only renamed", data, pushed.ETag, int64(len(data)), 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := fmt.Sprintf("%s/dst%d.tar", dir, i)
			if err := os.WriteFile(dst+PartialSuffix, tc.partial, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.etag != "" {
				if err := os.WriteFile(dst+PartialSuffix+ETagSuffix, []byte(tc.etag+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rec := &recorder{}
			res, err := Pull(ctx, url, dst, Options{Transport: rec})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dst)
			if sha(got) != sha(data) {
				t.Fatal("pulled file differs from the blob")
			}
			if res.ResumedFrom != tc.wantFrom || res.Downloaded != tc.wantFetched {
				t.Errorf("resumed from %d, downloaded %d; want %d and %d", res.ResumedFrom, res.Downloaded, tc.wantFrom, tc.wantFetched)
			}
			var fetched int64
			gets := rec.blobGets()
			for _, q := range gets {
				fetched += q.bytes()
			}
			if fetched != tc.wantFetched {
				t.Errorf("%d content bytes crossed the network, want %d", fetched, tc.wantFetched)
			}
			if tc.wantFetched > 0 {
				wantRange := fmt.Sprintf("bytes=%d-%d", tc.wantFrom, len(data)-1)
				var ranges []string
				for _, q := range gets {
					ranges = append(ranges, q.Range)
				}
				if len(gets) != 1 || gets[0].Range != wantRange {
					t.Errorf("GET requests with ranges %q, want one with range %s", ranges, wantRange)
				}
			}
			if _, err := os.Stat(dst + PartialSuffix); !os.IsNotExist(err) {
				t.Error(".partial left behind")
			}
		})
	}
}

// A download cut mid-stream: with retries the SDK's retry reader resumes
// within the same Pull; without, the partial file stays and the next Pull
// fetches only the rest.
func TestPullInterruptedStream(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, data := randomFile(t, dir, "src.tar", 1<<20+4321)
	url := base + "/" + newContainerName(t) + "/cut.tar"
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	const cut = 300 << 10
	size := int64(len(data))

	t.Run("retried by the SDK", func(t *testing.T) {
		rec := &recorder{cutAfter: cut}
		dst := dir + "/retried.tar"
		res, err := Pull(ctx, url, dst, Options{Transport: rec})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if sha(got) != sha(data) || res.Downloaded != size {
			t.Fatalf("downloaded %d bytes, content ok=%v", res.Downloaded, sha(got) == sha(data))
		}
		if gets := rec.blobGets(); len(gets) != 2 || gets[1].Range != fmt.Sprintf("bytes=%d-%d", cut, size-1) {
			t.Errorf("want a second GET from byte %d, got %d GETs", cut, len(gets))
		}
	})

	t.Run("resumed by the next pull", func(t *testing.T) {
		dst := dir + "/resumed.tar"
		_, err := Pull(ctx, url, dst, Options{Transport: &recorder{cutAfter: cut}, MaxRetries: -1})
		assertOneLine(t, err)
		if !errors.Is(err, ErrUpstream) {
			t.Fatalf("cut stream without retries: %v, want ErrUpstream", err)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Fatal("an interrupted pull left a file under the final name")
		}
		if st, err := os.Stat(dst + PartialSuffix); err != nil || st.Size() != cut {
			t.Fatalf("partial file after the cut: %v, %v", st, err)
		}
		rec := &recorder{}
		res, err := Pull(ctx, url, dst, Options{Transport: rec})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if sha(got) != sha(data) || res.ResumedFrom != cut || res.Downloaded != size-cut {
			t.Fatalf("resume: %+v", res)
		}
	})

	t.Run("Open retried by the SDK", func(t *testing.T) {
		r, _, err := Open(ctx, url, Options{Transport: &recorder{cutAfter: cut}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Open over a cut stream: %v, equal=%v", err, bytes.Equal(got, data))
		}
	})
}

// A resumable partial whose bytes are wrong fails verification, and neither
// the final file nor the bad partial stays.
func TestPullCorruptPartial(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, data := randomFile(t, dir, "src.tar", 512<<10)
	url := base + "/" + newContainerName(t) + "/c.tar"
	pushed, err := Push(ctx, src, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := dir + "/c.tar"
	bad := append([]byte(nil), data[:1000]...)
	bad[10] ^= 0xff
	os.WriteFile(dst+PartialSuffix, bad, 0o644)
	os.WriteFile(dst+PartialSuffix+ETagSuffix, []byte(pushed.ETag), 0o644)
	_, err = Pull(ctx, url, dst, Options{})
	if !isVerify(err) {
		t.Fatalf("pull over a corrupt partial: %v, want a verification error", err)
	}
	for _, p := range []string{dst, dst + PartialSuffix, dst + PartialSuffix + ETagSuffix} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a failed verification", p)
		}
	}
	// The next pull starts afresh and succeeds.
	if _, err := Pull(ctx, url, dst, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenStreams(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, data := randomFile(t, dir, "hpcpack-2.1.2.tar", 1<<20+3)
	url := base + "/" + newContainerName(t) + "/nested/dir/hpcpack-2.1.2.tar"
	if _, err := Push(ctx, src, url, Options{}); err != nil {
		t.Fatal(err)
	}
	r, size, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if size != int64(len(data)) {
		t.Errorf("size %d, want %d", size, len(data))
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("Open streamed different bytes")
	}

	_, _, err = Open(ctx, url+".missing")
	assertOneLine(t, err)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "blob not found") {
		t.Errorf("missing blob: %v", err)
	}
}

func TestPutList(t *testing.T) {
	base := azurite(t)
	useKey(t)
	ctx := context.Background()
	cont := base + "/" + newContainerName(t)
	index := []byte(`{"bundles":[]}` + "\n")
	if err := Put(ctx, cont+"/mirror/index.json", index); err != nil {
		t.Fatal(err)
	}
	if err := Put(ctx, cont+"/mirror/bundles/a.tar", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := Put(ctx, cont+"/other.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url, prefix string
		want        []string
	}{
		{cont, "", []string{"mirror/bundles/a.tar", "mirror/index.json", "other.json"}},
		{cont, "mirror/", []string{"mirror/bundles/a.tar", "mirror/index.json"}},
		{cont + "/mirror/", "index", []string{"mirror/index.json"}},
		{cont, "nothing", nil},
	}
	for _, tc := range tests {
		infos, err := List(ctx, tc.url, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, bi := range infos {
			names = append(names, bi.Name)
		}
		if strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Errorf("List(%s, %q) = %v, want %v", tc.url, tc.prefix, names, tc.want)
		}
		for _, bi := range infos {
			if bi.Name == "mirror/index.json" && (bi.Size != int64(len(index)) || bi.SHA256 != sha(index) || bi.ETag == "") {
				t.Errorf("index.json info %+v", bi)
			}
		}
	}
	r, _, err := Open(ctx, cont+"/mirror/index.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, index) {
		t.Errorf("index.json = %q", got)
	}
	_, err = List(ctx, base+"/"+newContainerName(t), "")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("List of a missing container: %v, want ErrNotFound", err)
	}
}

// Without any credential, DefaultAzureCredential is tried; when it finds
// nothing the error is one line matching ErrUpstream and ErrAuth.
func TestNoCredential(t *testing.T) {
	clearCreds(t)
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential") // no IMDS probe, no az CLI
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := Open(ctx, "https://127.0.0.1:1/devstoreaccount1/bundles/x.tar", Options{MaxRetries: -1})
	assertOneLine(t, err)
	t.Log(err)
	if !errors.Is(err, ErrUpstream) || !errors.Is(err, ErrAuth) {
		t.Fatalf("no credential: %v", err)
	}
	if !strings.Contains(err.Error(), "AZURE_STORAGE_CONNECTION_STRING") {
		t.Errorf("error %q does not tell how to supply a credential", err)
	}
}

// An unreachable endpoint is one line matching ErrUpstream.
func TestUnreachable(t *testing.T) {
	useKey(t)
	_, err := Pull(context.Background(), "http://127.0.0.1:1/devstoreaccount1/bundles/x.tar", t.TempDir()+"/x.tar", Options{MaxRetries: -1})
	assertOneLine(t, err)
	if !errors.Is(err, ErrUpstream) || errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "cannot reach 127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
}
