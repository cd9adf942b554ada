// Package githubtest is a faithful fake of GitHub for the releases of Azure
// CycleCloud projects, served on loopback: an API host (like api.github.com
// or a GitHub Enterprise /api/v3/) and a separate download host (like
// objects.githubusercontent.com and codeload.github.com).
//
// Releases, tags, commits and source trees come from real fixtures
// (fixtures/projects/<repo>/<tag>/{project.ini,tree.tsv,commit}); release
// assets are every blob each project.ini names, with deterministic content
// generated on the fly so that large worlds serve with flat memory. The
// server can inject faults (5xx, stalls, truncated bodies, rate limits,
// slow links) and records what it served. It needs no testing.T, so
// benchmarks and cmd/fakegithub use it too.
package githubtest

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed fixtures
var embedded embed.FS

// Options configures a Server. The zero value serves the embedded fixtures
// with 4096-byte assets on 127.0.0.1 random ports.
type Options struct {
	// Fixtures holds projects/<repo>/<tag>/{commit,project.ini,tree.tsv};
	// nil means the copy embedded from mirror/githubtest/fixtures.
	Fixtures fs.FS
	// BlobSize is the size of every synthesized asset; 0 means 4096.
	BlobSize int64
	// SizeFor, when set, gives the size of one asset; repo is "OWNER/REPO"
	// (e.g. "Azure/cyclecloud-slurm"). A negative result means BlobSize.
	SizeFor func(repo, tag, asset string) int64
	// Owner is the owner of every fixture repository; "" means "Azure".
	Owner string
	// APIAddr and DownloadAddr are the listen addresses of the two hosts;
	// "" means "127.0.0.1:0" (a free loopback port).
	APIAddr, DownloadAddr string
	// Seed seeds the pseudo-random choice of injected failures.
	Seed uint64
	// NoDigests makes assets carry "digest": null, as releases uploaded
	// before GitHub started publishing asset digests do.
	NoDigests bool
	// Umask is cleared from the permission bits of archive entries, like
	// git's tar.umask; 0 means git's default 0002, which is what GitHub
	// serves (files 0664, executables and directories 0775, symlinks 0777).
	// Use 0022 for 0644/0755.
	Umask fs.FileMode
}

// HostKind tells which of the two fake hosts answered a request.
type HostKind string

// The two hosts of the fake.
const (
	HostAPI      HostKind = "api"      // the REST API (api.github.com, GHES /api/v3/)
	HostDownload HostKind = "download" // assets and archives (objects.githubusercontent.com, codeload)
)

// RequestLog records one request the fake answered.
type RequestLog struct {
	Time        time.Time
	Host        HostKind
	Method      string
	Path        string // URL path as received, e.g. /api/v3/repos/Azure/cyclecloud-slurm/releases
	Query       string // raw query
	Range       string // Range header
	IfNoneMatch string // If-None-Match header
	Accept      string // Accept header
	Auth        bool   // an Authorization header was sent
	Status      int    // status code sent (a truncated body still shows 200/206)
	Bytes       int64  // response body bytes actually written
}

// Server is a running fake GitHub. All methods are safe for concurrent use.
type Server struct {
	owner    string
	blobSize int64
	sizeFor  func(repo, tag, asset string) int64
	noDigest bool
	umask    fs.FileMode

	apiSrv, dlSrv *http.Server
	apiBase       string // http://127.0.0.1:P/api/v3/
	dlBase        string // http://127.0.0.1:Q/
	closed        chan struct{}
	closeOnce     sync.Once
	wg            sync.WaitGroup

	mu          sync.RWMutex // guards the world: repos, releases, asset lists
	repos       map[string]*repo
	repoList    []*repo
	lastRelease int64
	lastAsset   int64

	digests digestCache

	fmu        sync.Mutex // guards fault injection and rate limit state
	rng        *rand.Rand
	failRate   float64
	stalls     map[string]stall
	truncs     map[string]int64
	bandwidth  int64
	latency    time.Duration
	rate       rateState
	retryAfter time.Duration

	served atomic.Int64
	logMu  sync.Mutex
	log    []*RequestLog // entries completed by their respWriter
}

// NewServer loads the fixtures and starts both hosts.
func NewServer(o Options) (*Server, error) {
	s := &Server{
		owner:    o.Owner,
		blobSize: o.BlobSize,
		sizeFor:  o.SizeFor,
		noDigest: o.NoDigests,
		umask:    o.Umask & 0o777,
		closed:   make(chan struct{}),
		rng:      rand.New(rand.NewPCG(o.Seed, 0x6769746875627465)),
		stalls:   map[string]stall{},
		truncs:   map[string]int64{},
		rate:     rateState{limit: defaultRateLimit, remaining: defaultRateLimit, reset: time.Now().Add(time.Hour).Truncate(time.Second)},
		// Release and asset ids look like GitHub's: large and increasing.
		lastRelease: 40000000,
		lastAsset:   150000000,
	}
	if s.owner == "" {
		s.owner = "Azure"
	}
	if s.blobSize <= 0 {
		s.blobSize = 4096
	}
	if s.umask == 0 {
		s.umask = 0o002
	}
	fsys := o.Fixtures
	if fsys == nil {
		sub, err := fs.Sub(embedded, "fixtures")
		if err != nil {
			return nil, fmt.Errorf("githubtest: embedded fixtures: %w", err)
		}
		fsys = sub
	}
	if err := s.loadWorld(fsys); err != nil {
		return nil, err
	}

	apiLn, err := listen(o.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("githubtest: api listener: %w", err)
	}
	dlLn, err := listen(o.DownloadAddr)
	if err != nil {
		apiLn.Close()
		return nil, fmt.Errorf("githubtest: download listener: %w", err)
	}
	s.apiBase = "http://" + apiLn.Addr().String() + apiPrefix
	s.dlBase = "http://" + downloadHost(dlLn.Addr()) + "/"
	s.apiSrv = s.newHTTPServer(s.wrap(HostAPI, s.serveAPI))
	s.dlSrv = s.newHTTPServer(s.wrap(HostDownload, s.serveDownload))
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = s.apiSrv.Serve(apiLn) }()
	go func() { defer s.wg.Done(); _ = s.dlSrv.Serve(dlLn) }()
	return s, nil
}

func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}

// downloadHost names the download listener "localhost:PORT" when it is on
// 127.0.0.1 and localhost resolves there, so that clients see a host name
// other than the API's 127.0.0.1 and, as between api.github.com and
// objects.githubusercontent.com, drop Authorization on redirects.
func downloadHost(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		return addr.String()
	}
	ips, err := net.LookupHost("localhost")
	if err != nil || !slices.Contains(ips, "127.0.0.1") {
		return addr.String()
	}
	return net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
}

type connKey struct{}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Each connection gets its own token bucket for SetBandwidth.
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &bucket{})
		},
	}
}

// URL is the API base URL, ending in "/api/v3/" like GitHub Enterprise
// (the API also answers without the /api/v3 prefix).
func (s *Server) URL() string { return s.apiBase }

// DownloadURL is the base URL of the download host, ending in "/". Its
// host name differs from URL()'s (http://localhost:PORT/ when localhost
// resolves to 127.0.0.1), so clients treat it as another site.
func (s *Server) DownloadURL() string { return s.dlBase }

// Close stops both hosts, cutting open connections and waking stalled
// responses.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		_ = s.apiSrv.Close()
		_ = s.dlSrv.Close()
		s.wg.Wait()
	})
}

// AssetBytesServed is the number of asset and archive body bytes the
// download host has written since start or ResetCounters.
func (s *Server) AssetBytesServed() int64 { return s.served.Load() }

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []RequestLog {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	out := make([]RequestLog, len(s.log))
	for i, e := range s.log {
		out[i] = *e
	}
	return out
}

// ResetCounters clears the request log and AssetBytesServed.
func (s *Server) ResetCounters() {
	s.logMu.Lock()
	s.log = nil
	s.served.Store(0)
	s.logMu.Unlock()
}
