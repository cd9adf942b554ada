package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Defaults for the retry, stall and rate-limit policy (see Options).
const (
	DefaultConcurrency      = 4
	DefaultRetryMax         = 8
	DefaultRetryWaitMin     = 500 * time.Millisecond
	DefaultRetryWaitMax     = 30 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultMaxRateLimitWait = 60 * time.Second
	// DefaultDownloadTimeout is the total time one download may take,
	// retries included.
	DefaultDownloadTimeout = 6 * time.Hour
	// DefaultMaxDownloadBytes bounds a download whose size is not announced
	// (a source archive): CycleCloud project sources are megabytes.
	DefaultMaxDownloadBytes = 4 << 30
	// DefaultMaxAPIBytes bounds one API answer, which is decoded in memory:
	// a page of 50 releases with 60 assets each is about 5 MiB, and 8 MiB
	// keeps a fetch under 64 MiB of memory whatever the server sends.
	DefaultMaxAPIBytes = 8 << 20
)

// RateLimitError reports that GitHub's API rate limit is exhausted until a
// reset further away than Options.MaxRateLimitWait. It matches ErrUpstream.
type RateLimitError struct {
	Reset         time.Time // when the limit resets
	Authenticated bool      // the requests carried a token
}

func (e *RateLimitError) Error() string {
	hint := "use a token (--token or GITHUB_TOKEN) or try again later"
	if e.Authenticated {
		hint = "try again later"
	}
	return fmt.Sprintf("GitHub rate limit exhausted until %s (in %s); %s",
		e.Reset.UTC().Format(time.RFC3339), time.Until(e.Reset).Round(time.Second), hint)
}

// Is makes a RateLimitError match ErrUpstream.
func (e *RateLimitError) Is(target error) bool { return target == ErrUpstream }

// httpPolicy is the retry policy shared by API calls and downloads.
type httpPolicy struct {
	retryMax         int
	waitMin, waitMax time.Duration
	maxRateWait      time.Duration
	idle             time.Duration
	timeout          time.Duration // total time of one download
	maxBody          int64         // byte limit of a download of unknown size
	authenticated    bool          // a token is set
	log              *slog.Logger
	notice           func(string) // Options.Notice; nil: none
}

// newRetryClient builds the retrying client every request of a Fetcher goes
// through: exponential backoff with jitter on network errors and 5xx,
// Retry-After honoured, GitHub's rate limit waited out when it resets soon.
func newRetryClient(base *http.Client, p httpPolicy) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   base,
		Logger:       debugLogger{l: p.log, notice: p.notice, retryMax: p.retryMax},
		RetryWaitMin: p.waitMin,
		RetryWaitMax: p.waitMax,
		RetryMax:     p.retryMax,
		CheckRetry:   p.checkRetry,
		Backoff:      p.backoff,
		ErrorHandler: func(resp *http.Response, err error, tries int) (*http.Response, error) {
			if err == nil && resp != nil {
				// Out of retries on a status: let the caller see it.
				return resp, nil
			}
			if resp != nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
			}
			if err == nil {
				err = errors.New("no response")
			}
			var rl *RateLimitError
			if errors.As(err, &rl) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the caller's url.Error names the request already
			}
			return nil, fmt.Errorf("after %d attempt(s): %w", tries, err)
		},
		RequestLogHook: func(_ retryablehttp.Logger, req *http.Request, attempt int) {
			if attempt > 0 {
				p.log.Info("retrying request", "method", req.Method, "url", redact(req.URL.String()), "attempt", attempt+1)
			}
		},
	}
}

func (p httpPolicy) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	if wait, reset, limited := rateLimited(resp); limited {
		if wait > p.maxRateWait {
			if reset.IsZero() {
				reset = time.Now().Add(wait)
			}
			return false, &RateLimitError{Reset: reset, Authenticated: p.authenticated}
		}
		p.log.Warn("GitHub rate limit reached, waiting", "until", time.Now().Add(wait).Format(time.TimeOnly), "wait", wait.Round(time.Millisecond))
		return true, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, nil)
}

func (p httpPolicy) backoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if wait, _, limited := rateLimited(resp); limited {
			return wait
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			if d, ok := retryAfter(resp); ok && d <= p.maxRateWait {
				return d
			}
		}
	}
	return jitterBackoff(min, max, attempt)
}

// jitterBackoff is exponential backoff with jitter: a random wait between
// half and all of min·2^attempt, capped at max.
func jitterBackoff(min, max time.Duration, attempt int) time.Duration {
	d := max
	if attempt < 32 {
		if e := min << attempt; e > 0 && e < max {
			d = e
		}
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// rateLimited reports whether resp is GitHub saying "slow down" (primary
// rate limit with X-RateLimit-Remaining: 0, or a secondary limit with
// Retry-After), and how long to wait.
func rateLimited(resp *http.Response) (wait time.Duration, reset time.Time, limited bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, time.Time{}, false
	}
	if d, ok := retryAfter(resp); ok {
		return d, time.Now().Add(d), true
	}
	if resp.Header.Get("X-RateLimit-Remaining") != "0" {
		return 0, time.Time{}, false
	}
	sec, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		// Exhausted with no reset time: wait a minute, GitHub's own advice.
		return time.Minute, time.Now().Add(time.Minute), true
	}
	if year := time.Now().Add(maxHeaderWait); sec > year.Unix() {
		sec = year.Unix() // nonsense from the server: far away is enough
	}
	reset = time.Unix(sec, 0)
	// The header has whole seconds: add one so the retry lands after it.
	wait = max(time.Until(reset)+time.Second, 0)
	return wait, reset, true
}

// maxHeaderWait caps any wait a server asks for: beyond it, the number
// only means "far away" (and would overflow time.Duration as seconds).
const maxHeaderWait = 365 * 24 * time.Hour

// retryAfter parses Retry-After (seconds or an HTTP date) into a wait of
// 0 to maxHeaderWait.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		if s > int64(maxHeaderWait/time.Second) {
			return maxHeaderWait, true
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), maxHeaderWait), true
	}
	return 0, false
}

// NoticeWait is the shortest retry wait Options.Notice hears of: shorter
// waits pass unnoticed, longer ones get one line each.
const NoticeWait = 2 * time.Second

// debugLogger sends retryablehttp's per-attempt chatter to slog at debug
// level; the Fetcher logs what a user needs itself. Its "retrying request"
// line (which names the request, the wait and the retries left) becomes a
// notice when the wait is longer than NoticeWait.
type debugLogger struct {
	l        *slog.Logger
	notice   func(string)
	retryMax int
}

func (d debugLogger) Error(msg string, kv ...any) { d.l.Debug(msg, kv...) }

func (d debugLogger) Info(msg string, kv ...any) { d.l.Debug(msg, kv...) }

func (d debugLogger) Debug(msg string, kv ...any) {
	d.l.Debug(msg, kv...)
	if msg != "retrying request" || d.notice == nil {
		return
	}
	var (
		desc   string
		wait   time.Duration
		remain = -1
	)
	for i := 0; i+1 < len(kv); i += 2 {
		switch kv[i] {
		case "request":
			desc, _ = kv[i+1].(string)
		case "timeout":
			wait, _ = kv[i+1].(time.Duration)
		case "remaining":
			remain, _ = kv[i+1].(int)
		}
	}
	if wait <= NoticeWait || remain < 0 {
		return
	}
	// desc is "METHOD URL" or "METHOD URL (status: N)".
	if method, rest, ok := strings.Cut(desc, " "); ok {
		u, status, _ := strings.Cut(rest, " ")
		desc = strings.TrimSpace(method + " " + redact(u) + " " + status)
	}
	d.notice(retryNotice(desc+" failed", d.retryMax-remain+1, d.retryMax+1, wait))
}

// retryNotice is the line a user sees for a retry wait.
func retryNotice(what string, attempt, attempts int, wait time.Duration) string {
	return fmt.Sprintf("%s (attempt %d of %d); next try in %s", what, attempt, attempts, wait.Round(100*time.Millisecond))
}

func (d debugLogger) Warn(msg string, kv ...any) { d.l.Debug(msg, kv...) }

// redact drops the query of a URL for logs: pre-signed download URLs carry
// credentials there.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
