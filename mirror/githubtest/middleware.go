package githubtest

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// wrap puts the common behaviour of both hosts around a handler: latency
// before the first byte, injected failures, and the request log.
func (s *Server) wrap(kind HostKind, h func(*respWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bk, _ := r.Context().Value(connKey{}).(*bucket)
		if bk == nil {
			bk = &bucket{}
		}
		// The request is logged at arrival, and its status and body size
		// are filled in under the log's lock before the client can see
		// them: a client that has read a response always finds it in
		// Requests().
		entry := s.record(RequestLog{
			Time: time.Now(), Host: kind, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Range: r.Header.Get("Range"), IfNoneMatch: r.Header.Get("If-None-Match"),
			Accept: r.Header.Get("Accept"), Auth: r.Header.Get("Authorization") != "",
		})
		rw := &respWriter{ResponseWriter: w, s: s, ctx: r.Context(), bucket: bk, entry: entry}
		answered := true
		defer func() {
			// net/http sends an implicit 200 after the handler returns
			// (after this), so the log says so first.
			if answered {
				rw.setStatus(http.StatusOK)
			}
		}()
		_, latency := s.shaping()
		if err := s.sleep(r.Context(), latency); err != nil {
			answered = false
			return
		}
		if code := s.shouldFail(); code != 0 {
			s.writeFailure(rw, kind, code)
			return
		}
		h(rw, r)
	})
}

// record appends l to the request log and returns its entry, which the
// response writer completes under logMu.
func (s *Server) record(l RequestLog) *RequestLog {
	e := &l
	s.logMu.Lock()
	s.log = append(s.log, e)
	s.logMu.Unlock()
	return e
}

// writeFailure answers an injected 5xx the way each host does.
func (s *Server) writeFailure(w *respWriter, kind HostKind, code int) {
	if kind == HostAPI {
		msg := map[int]string{500: "Server Error", 502: "Server Error", 503: "Service Unavailable"}[code]
		body := []byte(`{"message":"` + msg + `","documentation_url":"https://docs.github.com/rest","status":"` + strconv.Itoa(code) + `"}`)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
		_, _ = w.Write(body)
		return
	}
	http.Error(w, http.StatusText(code), code)
}

// respWriter records the status and body size of a response and, for
// asset and archive bodies, applies bandwidth, stalls and truncation.
type respWriter struct {
	http.ResponseWriter
	s      *Server
	ctx    context.Context
	bucket *bucket
	status int
	bytes  int64
	entry  *RequestLog // this request's log entry (guarded by s.logMu)

	shaped    bool // an asset or archive body: shape, count, inject
	faultName string
	st        stall
	hasStall  bool
	stalled   bool
	trunc     int64
	hasTrunc  bool
	short     bool  // Hostile.ShortBodies: stop at half the announced length
	shortAt   int64 // where, once known (-1: not yet)
}

// shape marks the response as the body of the named asset or archive.
func (w *respWriter) shape(name string) {
	w.shaped = true
	w.faultName = name
	w.st, w.hasStall, w.trunc, w.hasTrunc = w.s.faultsFor(name)
	w.short, w.shortAt = hostileName(w.s.hostileNow().ShortBodies, name), -1
}

func (w *respWriter) WriteHeader(code int) {
	w.setStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

// setStatus records the response status, once, before it is sent.
func (w *respWriter) setStatus(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	w.s.logMu.Lock()
	w.entry.Status = code
	w.s.logMu.Unlock()
}

// count adds n body bytes to the log entry (negative: take back bytes
// counted before a write that did not complete). Bytes are counted before
// they are written, so a client never holds bytes the log does not show.
func (w *respWriter) count(n int64) {
	w.bytes += n
	w.s.logMu.Lock()
	w.entry.Bytes += n
	w.s.logMu.Unlock()
}

// Flush sends buffered data to the client.
func (w *respWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *respWriter) Write(p []byte) (int, error) {
	w.setStatus(http.StatusOK)
	if !w.shaped || (w.status != http.StatusOK && w.status != http.StatusPartialContent) {
		w.count(int64(len(p)))
		n, err := w.ResponseWriter.Write(p)
		w.count(int64(n - len(p)))
		return n, err
	}
	written := 0
	for len(p) > 0 {
		chunk := len(p)
		if w.hasStall && !w.stalled {
			if w.bytes >= w.st.after {
				w.Flush()
				if err := w.s.sleep(w.ctx, w.st.d); err != nil {
					return written, err
				}
				w.stalled = true
				continue
			}
			chunk = int(min(int64(chunk), w.st.after-w.bytes))
		}
		if w.hasTrunc {
			if w.bytes >= w.trunc {
				if w.s.claimTrunc(w.faultName) {
					w.Flush()
					// Abort the handler: net/http closes the connection
					// without finishing the announced Content-Length.
					panic(http.ErrAbortHandler)
				}
				w.hasTrunc = false
				continue
			}
			chunk = int(min(int64(chunk), w.trunc-w.bytes))
		}
		if w.short {
			if w.shortAt < 0 {
				w.shortAt = shortLimit(w.Header())
			}
			if w.shortAt >= 0 {
				if w.bytes >= w.shortAt {
					w.Flush()
					panic(http.ErrAbortHandler)
				}
				chunk = int(min(int64(chunk), w.shortAt-w.bytes))
			}
		}
		if rate, _ := w.s.shaping(); rate > 0 {
			chunk = int(min(int64(chunk), max(rate/20, 512), 16<<10))
			if err := w.bucket.wait(w.ctx, w.s, chunk, rate); err != nil {
				return written, err
			}
		}
		// Count before writing, so a client that has received the bytes
		// always sees them counted; take back what was not written.
		w.s.served.Add(int64(chunk))
		w.count(int64(chunk))
		n, err := w.ResponseWriter.Write(p[:chunk])
		w.s.served.Add(int64(n - chunk))
		w.count(int64(n - chunk))
		written += n
		if err != nil {
			return written, err
		}
		p = p[chunk:]
	}
	return written, nil
}

// bucket paces one connection's body bytes to a rate: each chunk waits for
// its share of time; an idle connection does not bank credit.
type bucket struct {
	mu   sync.Mutex
	next time.Time
}

// maxLag is how far a connection's schedule may fall behind the clock and
// still be caught up: timers wake late by a fraction of a millisecond per
// chunk, which must not lower the rate a busy connection gets. A longer
// gap is idleness, and is not banked.
const maxLag = 10 * time.Millisecond

func (b *bucket) wait(ctx context.Context, s *Server, n int, rate int64) error {
	b.mu.Lock()
	now := time.Now()
	if b.next.Before(now.Add(-maxLag)) {
		b.next = now
	}
	b.next = b.next.Add(time.Duration(float64(n) * float64(time.Second) / float64(rate)))
	d := b.next.Sub(now)
	b.mu.Unlock()
	return s.sleep(ctx, d)
}
