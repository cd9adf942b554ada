package githubtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestFailRate(t *testing.T) {
	s := newTestServer(t, Options{Seed: 7})
	asset := assetInfo(t, s, "cyclecloud-slurm", "3.0.12", "azure-slurm-pkg-3.0.12.tar.gz").URL
	api := s.URL() + "repos/Azure/cyclecloud-slurm/releases/latest"

	s.SetFailRate(1)
	for _, u := range []string{api, asset} {
		for i := 0; i < 10; i++ {
			resp, _ := get(t, u)
			if c := resp.StatusCode; c != 500 && c != 502 && c != 503 {
				t.Fatalf("%s with fail rate 1: %d", u, c)
			}
		}
	}
	if s.AssetBytesServed() != 0 {
		t.Errorf("failed requests counted %d asset bytes", s.AssetBytesServed())
	}

	s.SetFailRate(0.5)
	failed := 0
	for i := 0; i < 200; i++ {
		if resp, _ := get(t, api); resp.StatusCode >= 500 {
			failed++
		}
	}
	if failed < 60 || failed > 140 {
		t.Errorf("%d of 200 failed at rate 0.5", failed)
	}

	s.SetFailRate(0)
	for _, u := range []string{api, asset} {
		if resp, _ := get(t, u); resp.StatusCode != 200 {
			t.Fatalf("%s with fail rate 0: %d", u, resp.StatusCode)
		}
	}
}

func TestTruncateOnce(t *testing.T) {
	s := newTestServer(t, Options{BlobSize: 100_000})
	const name = "azure-slurm-install-pkg-3.0.12.tar.gz"
	info := assetInfo(t, s, "cyclecloud-slurm", "3.0.12", name)
	want := readAsset(t, s, "cyclecloud-slurm", "3.0.12", name)
	s.TruncateOnce(name, 30_000)

	resp, err := http.Get(info.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != 100_000 {
		t.Errorf("Content-Length %d, want the full 100000", resp.ContentLength)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 30_000 || !bytes.Equal(got, want[:30_000]) {
		t.Fatalf("truncated read: %d bytes, err %v", len(got), err)
	}
	// Resume with a Range request: the truncation fired once, so this completes.
	r2, rest := get(t, info.URL, "Range", "bytes=30000-")
	if r2.StatusCode != 206 || !bytes.Equal(append(got, rest...), want) {
		t.Fatalf("resume: %s, %d bytes", r2.Status, len(rest))
	}
	if _, full := get(t, info.URL); !bytes.Equal(full, want) {
		t.Fatal("later download still truncated")
	}
	if got := s.AssetBytesServed(); got != 30_000+70_000+100_000 {
		t.Errorf("AssetBytesServed = %d, want %d", got, 200_000)
	}

	// Archives are named as GitHub names the download.
	s.TruncateOnce("cyclecloud-gridengine-2.1.0.tar.gz", 100)
	resp, err = http.Get(s.DownloadURL() + "Azure/cyclecloud-gridengine/archive/refs/tags/2.1.0.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(b) != 100 {
		t.Fatalf("archive truncation: %d bytes, err %v", len(b), err)
	}
}

func TestStall(t *testing.T) {
	s := newTestServer(t, Options{})
	const name = "sge-2011.11-common.tgz"
	u := assetInfo(t, s, "cyclecloud-gridengine", "2.1.0", name).URL
	s.SetStall(name, 1000, time.Second)
	// Lower bounds only: a stall of 1 s cannot end sooner, however loaded
	// the machine; nothing here bounds how long it may take.
	start := time.Now()
	resp, body := get(t, u)
	if d := time.Since(start); d < time.Second || resp.StatusCode != 200 || len(body) != 4096 {
		t.Fatalf("stalled download: %v, %d, %d bytes", d, resp.StatusCode, len(body))
	}
	// A client with a short timeout gives up after receiving the first 1000 bytes.
	c := &http.Client{Timeout: 300 * time.Millisecond}
	resp, err := c.Get(u)
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil || len(b) != 1000 {
			t.Fatalf("impatient client read %d bytes, err %v", len(b), rerr)
		}
	}
	// Removing the stall removes the pause: a client that gives up on
	// any pause longer than the one just waited out reads everything.
	s.SetStall(name, 0, 0)
	if _, has, _, _ := s.faultsFor(name); has {
		t.Fatal("SetStall(name, 0, 0) left the stall in place")
	}
	if _, body := get(t, u); len(body) != 4096 {
		t.Fatalf("unstalled download: %d bytes, want 4096", len(body))
	}

	// Close wakes a stalled response instead of waiting it out.
	s.SetStall("*", 10, time.Hour)
	resp, err = http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	// The stall lasts an hour: Close returning at all shows it woke it.
	s.Close()
	<-done
}

func TestBandwidthAndLatency(t *testing.T) {
	s := newTestServer(t, Options{BlobSize: 32 << 10})
	as, err := s.Assets("cyclecloud-slurm", "4.0.9")
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(u string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Error(err)
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != 32<<10 {
			t.Errorf("read %d bytes", n)
		}
	}
	timed := func(urls ...string) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for _, u := range urls {
			wg.Add(1)
			go func() { defer wg.Done(); fetch(u) }()
		}
		wg.Wait()
		return time.Since(start)
	}
	s.SetBandwidth(64<<10, 0)
	one := timed(as[0].URL)
	if one < 400*time.Millisecond {
		t.Errorf("32 KiB at 64 KiB/s took %v, want at least ~0.5s", one)
	}
	// The limit is per connection: each connection paces its own bytes,
	// so a second connection's schedule does not wait behind the first.
	srv := s.newHTTPServer(http.NotFoundHandler())
	b1, _ := srv.ConnContext(context.Background(), nil).Value(connKey{}).(*bucket)
	b2, _ := srv.ConnContext(context.Background(), nil).Value(connKey{}).(*bucket)
	if b1 == nil || b2 == nil || b1 == b2 {
		t.Fatalf("connections share a bandwidth bucket (%p, %p)", b1, b2)
	}
	// The API is not throttled, but latency delays every first byte.
	s.SetBandwidth(0, 300*time.Millisecond)
	start := time.Now()
	if resp, _ := get(t, s.URL()+"rate_limit"); resp.StatusCode != 200 || time.Since(start) < 300*time.Millisecond {
		t.Errorf("latency: %d after %v", resp.StatusCode, time.Since(start))
	}
	s.SetBandwidth(0, 0)
	if rate, latency := s.shaping(); rate != 0 || latency != 0 {
		t.Errorf("after SetBandwidth(0, 0): rate %d, latency %v; want none", rate, latency)
	}
	fetch(as[0].URL)
}

// A bucket paces the bytes of its own connection only: n bytes at rate r
// book n/r seconds on that bucket's schedule and on no other.
func TestBucketSchedule(t *testing.T) {
	s := newTestServer(t, Options{})
	var a, b bucket
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // book the time without waiting it out
	_ = a.wait(ctx, s, 32<<10, 64<<10)
	first := a.next
	_ = a.wait(ctx, s, 32<<10, 64<<10)
	if got := a.next.Sub(first); got != 500*time.Millisecond {
		t.Errorf("second 32 KiB at 64 KiB/s booked %v after the first, want 500ms", got)
	}
	if !b.next.IsZero() {
		t.Errorf("booking on one bucket moved another's schedule to %v", b.next)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	s := newTestServer(t, Options{})
	u := s.URL() + "repos/Azure/cyclecloud-slurm/releases/tags/2.5.0"
	resp, _ := get(t, u)
	h := resp.Header
	if h.Get("X-RateLimit-Limit") != "5000" || h.Get("X-RateLimit-Remaining") != "4999" || h.Get("X-RateLimit-Used") != "1" ||
		h.Get("X-RateLimit-Resource") != "core" || h.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("rate headers %v", h)
	}
	reset := time.Now().Add(10 * time.Minute)
	s.SetRateLimit(1, reset)
	s.SetRetryAfter(90 * time.Second)
	if resp, _ := get(t, u); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("last request: %d remaining %s", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	resp, body := get(t, u)
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("Retry-After") != "90" ||
		resp.Header.Get("X-RateLimit-Reset") != strconv.FormatInt(reset.Unix(), 10) ||
		!bytes.Contains(body, []byte(`"message":"API rate limit exceeded for `)) {
		t.Fatalf("exhausted: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// /rate_limit is free and reports the state.
	resp, body = get(t, s.URL()+"rate_limit")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"remaining":0`)) {
		t.Fatalf("rate_limit: %d %s", resp.StatusCode, body)
	}

	// Authorized conditional requests answering 304 are free.
	s.SetRateLimit(10, reset)
	s.SetRetryAfter(0)
	resp, _ = get(t, u, "Authorization", "token t")
	etag := resp.Header.Get("ETag")
	for i := 0; i < 3; i++ {
		resp, _ = get(t, u, "Authorization", "token t", "If-None-Match", etag)
		if resp.StatusCode != 304 || resp.Header.Get("X-RateLimit-Remaining") != "9" {
			t.Fatalf("conditional: %d remaining %s", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
		}
	}
}

func TestRequestLogAndCounters(t *testing.T) {
	s := newTestServer(t, Options{})
	info := assetInfo(t, s, "cyclecloud-hpcpack", "2.1.2", "cyclecloud-hpcpack-pkg-2.1.2.zip")
	get(t, s.URL()+"repos/Azure/cyclecloud-hpcpack/releases/tags/2.1.2")
	resp, _ := get(t, s.URL()+"repos/Azure/cyclecloud-hpcpack/releases/assets/"+strconv.FormatInt(info.ID, 10), "Accept", "application/octet-stream")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != info.URL {
		t.Fatalf("asset redirect: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	get(t, info.URL, "Range", "bytes=0-99")
	_, arch := get(t, s.DownloadURL()+"Azure/cyclecloud-hpcpack/archive/refs/tags/2.1.2.tar.gz")
	get(t, info.URL, "Range", "bytes=5000-") // 416

	if got, want := s.AssetBytesServed(), int64(100+len(arch)); got != want {
		t.Errorf("AssetBytesServed = %d, want %d (API bytes and 416 bodies do not count)", got, want)
	}
	log := s.Requests()
	want := []struct {
		host   HostKind
		status int
		rng    string
	}{
		{HostAPI, 200, ""}, {HostAPI, 302, ""}, {HostDownload, 206, "bytes=0-99"}, {HostDownload, 200, ""}, {HostDownload, 416, "bytes=5000-"},
	}
	if len(log) != len(want) {
		t.Fatalf("%d log entries, want %d: %+v", len(log), len(want), log)
	}
	for i, w := range want {
		if l := log[i]; l.Host != w.host || l.Status != w.status || l.Range != w.rng || l.Method != "GET" {
			t.Errorf("log[%d] = %+v, want %v %d %q", i, l, w.host, w.status, w.rng)
		}
	}
	if log[2].Path != "/Azure/cyclecloud-hpcpack/releases/download/2.1.2/cyclecloud-hpcpack-pkg-2.1.2.zip" || log[2].Bytes != 100 {
		t.Errorf("log[2] = %+v", log[2])
	}
	if log[1].Accept != "application/octet-stream" {
		t.Errorf("log[1].Accept = %q", log[1].Accept)
	}
	// A client following the API redirect itself drops its token on the
	// way to the download host, as between api.github.com and
	// objects.githubusercontent.com.
	req, _ := http.NewRequest("GET", s.URL()+"repos/Azure/cyclecloud-hpcpack/releases/assets/"+strconv.FormatInt(info.ID, 10), nil)
	req.Header.Set("Accept", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer secret")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	log = s.Requests()
	if n := len(log); r.StatusCode != 200 || len(b) != 4096 || n < 2 || !log[n-2].Auth || log[n-1].Host != HostDownload || log[n-1].Auth {
		t.Errorf("redirected download: %d, %d bytes, log %+v", r.StatusCode, len(b), log[max(0, n-2):])
	}

	s.ResetCounters()
	if s.AssetBytesServed() != 0 || len(s.Requests()) != 0 {
		t.Fatal("ResetCounters left counters")
	}
}
