package mirror

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// NewFetcher checks o and prepares the cache and clients.
func NewFetcher(o Options) (*Fetcher, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryWaitMin <= 0 {
		o.RetryWaitMin = DefaultRetryWaitMin
	}
	if o.RetryWaitMax <= 0 {
		o.RetryWaitMax = DefaultRetryWaitMax
	}
	if o.RetryWaitMax < o.RetryWaitMin {
		o.RetryWaitMax = o.RetryWaitMin
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.DownloadTimeout <= 0 {
		o.DownloadTimeout = DefaultDownloadTimeout
	}
	if o.MaxDownloadBytes <= 0 {
		o.MaxDownloadBytes = DefaultMaxDownloadBytes
	}
	if o.MaxAPIBytes <= 0 {
		o.MaxAPIBytes = DefaultMaxAPIBytes
	}
	if o.MaxRateLimitWait <= 0 {
		o.MaxRateLimitWait = DefaultMaxRateLimitWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.GitHubURL != "" {
		u, err := url.Parse(o.GitHubURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("GitHub URL %q: want https://HOST/api/v3/", o.GitHubURL)
		}
	}
	if o.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	c, err := openCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	c.sweepTmp(log)

	base := o.HTTPClient
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Concurrency + 2
		t.ResponseHeaderTimeout = o.IdleTimeout
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		base = &http.Client{Transport: t}
	} else {
		cp := *base
		base = &cp
	}
	if base.CheckRedirect == nil {
		base.CheckRedirect = stripAuthOnRedirect
	}
	policy := httpPolicy{
		retryMax:      o.RetryMax,
		waitMin:       o.RetryWaitMin,
		waitMax:       o.RetryWaitMax,
		maxRateWait:   o.MaxRateLimitWait,
		idle:          o.IdleTimeout,
		timeout:       o.DownloadTimeout,
		maxBody:       o.MaxDownloadBytes,
		authenticated: o.Token != "",
		log:           log,
		notice:        o.Notice,
	}
	rcl := newRetryClient(base, policy)
	ua := "ccmirror/" + Version
	api := rcl.StandardClient()
	api.Transport = limitBody{rt: api.Transport, max: o.MaxAPIBytes}
	src, err := newGitHubAPI(api, o.GitHubURL, o.Token, ua, o.MaxRateLimitWait)
	if err != nil {
		return nil, err
	}
	return &Fetcher{o: o, log: log, src: src, client: rcl, policy: policy, ua: ua, cache: c,
		slots: make(chan struct{}, o.Concurrency)}, nil
}

// stripAuthOnRedirect follows up to 10 redirects and never forwards the
// token to another host (or port): asset and archive redirects lead to
// pre-signed download URLs that must not see it.
func stripAuthOnRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		req.Header.Del("Authorization")
	}
	return nil
}

// limitBody bounds every response body read through it: API answers are
// decoded in memory, so a huge one must fail, not fill it.
type limitBody struct {
	rt  http.RoundTripper
	max int64
}

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, upstreamf("GET %s: answer of %d bytes, more than the %d allowed for an API answer", redact(req.URL.String()), resp.ContentLength, l.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: l.max, url: redact(req.URL.String()), max: l.max}
	return resp, nil
}

// limitedBody fails a read past its limit with ErrUpstream.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	url  string
	max  int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more says whether the body really goes on.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, upstreamf("GET %s: answer longer than the %d bytes allowed for an API answer", b.url, b.max)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// DefaultCacheDir is the download cache used when none is given:
// os.UserCacheDir()/ccmirror ($XDG_CACHE_HOME/ccmirror, else
// ~/.cache/ccmirror on Linux).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory (%v): set a cache directory (--cache)", err)
	}
	return filepath.Join(d, "ccmirror"), nil
}
