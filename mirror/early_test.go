package mirror

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// gate holds every answer of one API path until a request for another
// path has been sent, which shows the two were asked for at once; after
// a long while it lets the answer through anyway and says so, so a fetch
// that asks one after the other fails the test instead of hanging it.
type gate struct {
	rt         http.RoundTripper
	hold, want string // path suffixes

	mu      sync.Mutex
	wantNow chan struct{} // closed once a request for want was sent
	timeout bool
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.URL.Path
	if strings.HasSuffix(p, g.want) || (g.want == "/releases" && strings.HasSuffix(p, "/releases") && req.URL.Query().Get("page") != "") {
		g.mu.Lock()
		select {
		case <-g.wantNow:
		default:
			close(g.wantNow)
		}
		g.mu.Unlock()
	}
	resp, err := g.rt.RoundTrip(req)
	if err == nil && strings.HasSuffix(p, g.hold) {
		select {
		case <-g.wantNow:
		case <-time.After(10 * time.Second):
			g.mu.Lock()
			g.timeout = true
			g.mu.Unlock()
		}
	}
	return resp, err
}

// TestLookupsAtOnce: a tag's release and its commit are asked for
// together, and a re-fetch of a tag whose blobs were found on another
// release (slurm 2.5.0's wheel is on 2.6.1) lists the releases together
// with those, not after the source archive was read: each fetch starts
// with one round trip to GitHub, not two or three.
func TestLookupsAtOnce(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	cold := newFetcher(t, o)
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := cold.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hold, want string
	}{
		{"commit with release", "/releases/tags/2.5.0", "/git/ref/tags/2.5.0"},
		{"other releases with release", "/releases/tags/2.5.0", "/releases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gate{rt: http.DefaultTransport.(*http.Transport).Clone(), hold: tc.hold, want: tc.want, wantNow: make(chan struct{})}
			o := o // the same cache: a re-fetch
			o.HTTPClient = &http.Client{Transport: g}
			f := newFetcher(t, o)
			if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, filepath.Join(t.TempDir(), "b.tar")); err != nil {
				t.Fatal(err)
			}
			if g.timeout {
				t.Errorf("the answer to %s was held 10 s: %s was not asked for until it came", tc.hold, tc.want)
			}
		})
	}
}
