package mirror

import (
	"errors"
	"fmt"
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
		d, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no user cache directory (%v): set a cache directory (--cache)", err)
		}
		o.CacheDir = filepath.Join(d, "ccmirror")
	}
	c, err := openCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	c.sweepTmp()

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
		authenticated: o.Token != "",
		log:           log,
	}
	rcl := newRetryClient(base, policy)
	ua := "ccmirror/" + Version
	src, err := newGitHubAPI(rcl.StandardClient(), o.GitHubURL, o.Token, ua, o.MaxRateLimitWait)
	if err != nil {
		return nil, err
	}
	return &Fetcher{o: o, log: log, src: src, client: rcl, policy: policy, ua: ua, cache: c}, nil
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
