package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/diskhint"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/manifest"
)

// dlRequest is one file to download.
type dlRequest struct {
	label  string      // for messages: "blob x.rpm", "source archive"
	url    string      // what to GET (may redirect)
	header http.Header // extra request headers (Accept, Authorization)
	size   int64       // expected size, -1 when unknown
	digest string      // expected sha256 hex, "" when unknown
	ifNone string      // ETag for a conditional request (If-None-Match), "" for none
	// immutable says the key names content that never changes (an asset's
	// identity, an archive's commit): what the cache index holds for it is
	// used without asking the server.
	immutable bool
	// received, when not nil, is called once the body has arrived, before
	// the file is synced and stored: the download's slot is free then.
	received func()
	// sink, when not nil, mirrors the download into the bundle being
	// written in place (see inplace.go).
	sink *teeSink
}

// dlResult is what a download produced.
type dlResult struct {
	notModified bool   // the server answered 304 to If-None-Match
	sha256      string // hex of the whole file
	size        int64
	etag        string // the server's ETag for the content, if any
	net         int64  // bytes received over the network, retries included
	resumed     bool   // at least one Range request continued the file
}

// downloader performs resumable, verified downloads with the retry client.
type downloader struct {
	client   *retryablehttp.Client
	policy   httpPolicy
	ua       string
	progress func(int64) // called with every chunk received; never nil
}

// download writes req's content into f, which already holds off bytes whose
// hash is in h (a resumed partial file). It resumes with Range after
// interrupted or stalled transfers, restarts when the server cannot resume,
// and checks the final size and sha256 against req (ErrVerify on mismatch).
// onHeaders, when non-nil, is told the ETag as soon as a response starts so
// the caller can remember it for a later resume.
//
// Every download is bounded: at most the announced size (or, when none is
// announced, the policy's ceiling for downloads of unknown size), at most
// retryMax+1 attempts in all (progress does not renew them) and at most
// the policy's total time; a body idle for the stall timeout is an
// interrupted attempt. Exceeding a limit fails at once with ErrUpstream
// naming the URL and the limit. A write to f that fails is a local fault:
// never retried, never ErrUpstream.
func (d *downloader) download(ctx context.Context, req dlRequest, f *os.File, h hash.Hash, off int64, etag string, onHeaders func(etag string)) (dlResult, error) {
	parent := ctx
	ctx, stop := context.WithTimeout(ctx, d.policy.timeout)
	defer stop()
	res, err := d.attempts(ctx, req, f, h, off, etag, onHeaders)
	if err != nil && parent.Err() == nil && ctx.Err() != nil {
		return res, upstreamf("%s: GET %s: not complete after %s, the time limit of one download", req.label, redact(req.url), d.policy.timeout)
	}
	return res, err
}

// limit is the byte limit of req's body and what it stands for.
func (d *downloader) limit(req dlRequest) (int64, string) {
	if req.size >= 0 {
		return req.size, "announced"
	}
	return d.policy.maxBody, "allowed for a download of unknown size"
}

func (d *downloader) attempts(ctx context.Context, req dlRequest, f *os.File, h hash.Hash, off int64, etag string, onHeaders func(etag string)) (dlResult, error) {
	res := dlResult{etag: etag}
	fails := 0
	limit, limitWhy := d.limit(req)
	// resumable says the last response showed Range support (a 206, or
	// Accept-Ranges: bytes). GitHub's archive host streams archives
	// without it (chunked, no Content-Length, no ETag): an interrupted
	// archive starts again from zero instead of asking for a range it
	// would ignore, and never has a piece appended to what it sent before.
	resumable := off > 0
	restart := func() error {
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h.Reset()
		off = 0
		return nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return res, err
	}
	for {
		if req.size >= 0 && off == req.size && off > 0 {
			break // a partial file from an earlier run was already complete
		}
		if req.size >= 0 && off > req.size {
			if err := restart(); err != nil {
				return res, err
			}
		}
		rq, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, req.url, nil)
		if err != nil {
			return res, fmt.Errorf("%s: %w", req.label, err)
		}
		for k, v := range req.header {
			rq.Header[k] = v
		}
		rq.Header.Set("User-Agent", d.ua)
		// Byte ranges and sizes refer to the file itself, never to a
		// compressed transfer of it.
		rq.Header.Set("Accept-Encoding", "identity")
		if off > 0 {
			rq.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
			if res.etag != "" && !strings.HasPrefix(res.etag, "W/") {
				rq.Header.Set("If-Range", res.etag)
			}
		} else if req.ifNone != "" {
			rq.Header.Set("If-None-Match", req.ifNone)
		}
		// A stalled body is detected by an idle timer that cancels this
		// attempt's context; the next attempt resumes where it stopped.
		actx, cancel := context.WithCancel(ctx)
		rq = rq.WithContext(actx)
		resp, err := d.client.Do(rq)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return res, fmt.Errorf("%s: %w", req.label, ctx.Err())
			}
			return res, upstreamWrap(err, "%s: GET %s", req.label, redact(req.url))
		}
		switch resp.StatusCode {
		case http.StatusNotModified:
			drain(resp)
			cancel()
			if off == 0 && req.ifNone != "" {
				res.notModified = true
				res.etag = req.ifNone
				return res, nil
			}
			return res, upstreamf("%s: GET %s: unexpected 304 Not Modified", req.label, redact(req.url))
		case http.StatusOK:
			if off > 0 {
				d.policy.log.Info("server cannot resume, restarting download", "file", req.label)
				if err := restart(); err != nil {
					drain(resp)
					cancel()
					return res, err
				}
			}
			res.etag = resp.Header.Get("ETag")
			resumable = strings.EqualFold(strings.TrimSpace(resp.Header.Get("Accept-Ranges")), "bytes")
		case http.StatusPartialContent:
			start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
			if !ok || start != off {
				drain(resp)
				cancel()
				if err := restart(); err != nil {
					return res, err
				}
				if fails++; fails > d.policy.retryMax {
					return res, upstreamf("%s: GET %s: server sent unusable ranges", req.label, redact(req.url))
				}
				continue
			}
			res.resumed = true
			resumable = true
			if e := resp.Header.Get("ETag"); e != "" {
				res.etag = e
			}
		case http.StatusRequestedRangeNotSatisfiable:
			drain(resp)
			cancel()
			if err := restart(); err != nil {
				return res, err
			}
			if fails++; fails > d.policy.retryMax {
				return res, upstreamf("%s: GET %s: range not satisfiable", req.label, redact(req.url))
			}
			continue
		case http.StatusNotFound:
			drain(resp)
			cancel()
			return res, upstreamf("%s: GET %s: not found (404)", req.label, redact(req.url))
		default:
			drain(resp)
			cancel()
			return res, upstreamf("%s: GET %s: %s", req.label, redact(req.url), resp.Status)
		}
		if onHeaders != nil {
			onHeaders(res.etag)
		}
		n, rerr := d.copyBody(actx, cancel, f, h, req.sink, resp, limit-off)
		resp.Body.Close()
		cancel()
		off += n
		res.net += n
		if rerr == nil {
			break
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: %w", req.label, ctx.Err())
		}
		var (
			le *limitErr
			lf *errclass.LocalError
		)
		switch {
		case errors.As(rerr, &le):
			// What came is not trusted to resume from.
			if err := f.Truncate(0); err != nil {
				return res, errclass.Local("truncate", f.Name(), err)
			}
			return res, upstreamf("%s: GET %s: more than the %d bytes %s", req.label, redact(req.url), limit, limitWhy)
		case errors.As(rerr, &lf):
			return res, fmt.Errorf("%s: %w", req.label, rerr)
		}
		// The attempt budget is for the whole download: a server that
		// always breaks off after some bytes does not get attempts forever.
		if fails++; fails > d.policy.retryMax {
			return res, upstreamWrap(rerr, "%s: GET %s: interrupted %d times", req.label, redact(req.url), fails)
		}
		wait := jitterBackoff(d.policy.waitMin, d.policy.waitMax, fails-1)
		if wait > NoticeWait && d.policy.notice != nil {
			d.policy.notice(retryNotice(fmt.Sprintf("%s: download interrupted at %s (%v)", req.label, text.HumanBytes(off), rerr), fails, d.policy.retryMax+1, wait))
		}
		if !resumable && off > 0 {
			d.policy.log.Info("download interrupted and the server cannot resume it (no Range support): restarting from zero",
				"file", req.label, "lost", off, "error", rerr.Error(), "wait", wait.Round(time.Millisecond))
			if err := restart(); err != nil {
				return res, err
			}
		} else {
			d.policy.log.Info("download interrupted, resuming", "file", req.label, "at", off, "error", rerr.Error(), "wait", wait.Round(time.Millisecond))
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return res, fmt.Errorf("%s: %w", req.label, err)
		}
	}
	res.size = off
	res.sha256 = hex.EncodeToString(h.Sum(nil))
	if req.size >= 0 && res.size != req.size {
		return res, fmt.Errorf("%s: size %d, want %d: %w", req.label, res.size, req.size, manifest.ErrVerify)
	}
	if req.digest != "" && res.sha256 != req.digest {
		return res, fmt.Errorf("%s: sha256 %s, GitHub's digest says %s: %w", req.label, res.sha256, req.digest, manifest.ErrVerify)
	}
	return res, nil
}

// limitErr is a body longer than its limit.
type limitErr struct{}

func (*limitErr) Error() string { return "body longer than its limit" }

// copyBody copies resp's body into f and h. Each read must deliver data
// within the idle timeout, else the attempt is cancelled as stalled. More
// than remaining bytes is a *limitErr; a failed write a *errclass.LocalError.
func (d *downloader) copyBody(actx context.Context, cancel context.CancelFunc, f *os.File, h hash.Hash, sink *teeSink, resp *http.Response, remaining int64) (int64, error) {
	var (
		mu      sync.Mutex
		stalled bool
	)
	timer := time.AfterFunc(d.policy.idle, func() {
		mu.Lock()
		stalled = true
		mu.Unlock()
		cancel()
	})
	defer timer.Stop()
	buf := make([]byte, 256<<10)
	var n int64
	// Writeback starts every few MiB, so the fsync that stores the file
	// finds little left to write.
	var kicked int64
	start, _ := f.Seek(0, io.SeekCurrent)
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			timer.Reset(d.policy.idle)
			if n+int64(k) > remaining {
				return n, &limitErr{}
			}
			var werr error
			if sink != nil {
				_, werr = sink.write(f, buf[:k], start+n)
			} else {
				_, werr = f.Write(buf[:k])
			}
			if werr != nil {
				return n, errclass.Local("write", f.Name(), werr)
			}
			h.Write(buf[:k])
			n += int64(k)
			d.progress(int64(k))
			if n-kicked >= writebackChunk {
				diskhint.StartWriteback(f, start+kicked, n-kicked)
				kicked = n
			}
		}
		if err == io.EOF {
			if resp.ContentLength >= 0 && n != resp.ContentLength {
				return n, io.ErrUnexpectedEOF
			}
			return n, nil
		}
		if err != nil {
			mu.Lock()
			s := stalled
			mu.Unlock()
			if s && actx.Err() != nil {
				return n, fmt.Errorf("stalled: no data for %s", d.policy.idle)
			}
			return n, err
		}
	}
}

func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	return n, err == nil && n >= 0
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}

// hashFile feeds the first n bytes of f into a new sha256 (used to resume a
// partial download left by an earlier run).
func hashFile(ctx context.Context, f *os.File, n int64) (hash.Hash, error) {
	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, io.LimitReader(ctxio.NewReader(ctx, f), n)); err != nil {
		return nil, err
	}
	return h, nil
}
