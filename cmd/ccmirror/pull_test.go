package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"github.com/ccmirror/ccmirror/transport/blob/azuritetest"
)

// rangeGate is a reverse proxy to Azurite that counts the ranged blob GETs
// in flight and the most seen at once. A ranged GET that arrives alone
// waits (at most hold) for another before it is passed on, so a pull able
// to overlap its GETs does overlap them.
type rangeGate struct {
	proxy http.Handler
	hold  time.Duration

	mu       sync.Mutex
	arrival  chan struct{} // closed when the next ranged GET arrives
	inflight int
	peak     int
	total    int
}

func newRangeGate(t *testing.T, base string) (*rangeGate, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	g := &rangeGate{hold: 300 * time.Millisecond, arrival: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	g.proxy = rp
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL + u.Path
}

func (g *rangeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ranged := r.Method == http.MethodGet && (r.Header.Get("x-ms-range") != "" || r.Header.Get("Range") != "")
	if !ranged {
		g.proxy.ServeHTTP(w, r)
		return
	}
	g.mu.Lock()
	g.inflight++
	g.total++
	g.peak = max(g.peak, g.inflight)
	close(g.arrival)
	g.arrival = make(chan struct{})
	next, alone := g.arrival, g.inflight == 1
	g.mu.Unlock()
	if alone {
		select {
		case <-next:
		case <-time.After(g.hold):
		case <-r.Context().Done():
		}
	}
	g.proxy.ServeHTTP(w, r)
	g.mu.Lock()
	g.inflight--
	g.mu.Unlock()
}

func (g *rangeGate) counts() (peak, total int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, n := g.peak, g.total
	g.peak, g.total = 0, 0
	return p, n
}

// TestPullConcurrency: --concurrency N keeps at most N ranged GETs in
// flight (1: never two at once) and the pulled bundle is whole; values
// outside 1..64 are usage errors.
func TestPullConcurrency(t *testing.T) {
	for _, bad := range []string{"0", "-1", "65"} {
		code, _, stderr := runCLI(t, "pull", "--concurrency", bad, "http://127.0.0.1:10000/devstoreaccount1/c/b.tar", "-o", filepath.Join(t.TempDir(), "b.tar"))
		if code != exitUsage || !strings.Contains(stderr, "--concurrency") {
			t.Errorf("--concurrency %s: exit %d, stderr %q", bad, code, stderr)
		}
	}
	base := azuritetest.URL(t)
	// Assets large enough that the bundle is several default-sized ranges.
	dir, bundle, allowed := azureBundle(t, githubtest.Options{BlobSize: 6 << 20})
	cont := "/conc-" + randomHex(5) + "/"
	mustRunCLI(t, "push", "--quiet", bundle, base+cont)

	g, proxied := newRangeGate(t, base)
	url := proxied + cont + "gridengine-2.1.0.tar"
	want := fileSHA256(t, bundle)
	for _, n := range []int{1, 2, 8} {
		out := filepath.Join(dir, fmt.Sprintf("pulled-%d.tar", n))
		mustRunCLI(t, "pull", "--quiet", "--concurrency", fmt.Sprint(n), "--allowed-signers", allowed, url, "-o", out)
		if fileSHA256(t, out) != want {
			t.Errorf("--concurrency %d: pulled bundle differs from the pushed one", n)
		}
		peak, total := g.counts()
		if peak > n || total == 0 {
			t.Errorf("--concurrency %d: %d ranged GETs, at most %d at once", n, total, peak)
		}
		if n > 1 && total < 2 {
			t.Errorf("--concurrency %d: the bundle came as %d ranged GET(s); the test needs several", n, total)
		}
	}
}
