package githubtest

import (
	"bytes"
	"net/http"
	"path"
	"strconv"
)

// Hostile answers no honest GitHub gives, for proving that a client bounds
// what it downloads, parses and waits for. Set them with SetHostile; each
// applies to every matching request until changed.
type Hostile struct {
	// Endless names the assets or archives (a path.Match pattern of the
	// names SetStall takes: "*" for everything the download host serves,
	// "*cyclecloud-slurm-2.5.0*" for both archives of a release) whose
	// body never ends: no Content-Length, filler bytes until the client
	// hangs up.
	Endless string
	// ShortBodies names the assets or archives (a pattern as for
	// Endless) every response of which announces its full Content-Length,
	// sends half of it and closes the connection: a resumed range request
	// gets half of what is left, and so on. An archive (no Content-Length)
	// sends half of its bytes.
	ShortBodies string
	// HugeAPI, when positive, makes every API answer but /rate_limit a
	// 200 JSON array of one release whose body string holds HugeAPI
	// filler bytes, streamed without Content-Length.
	HugeAPI int64
	// RateHeaders, when set, makes every API answer but /rate_limit a
	// 403 "API rate limit exceeded" carrying exactly these header values
	// (e.g. Retry-After: 9227000000), whatever they say.
	RateHeaders map[string]string
}

// SetHostile replaces the hostile answers the fake gives; the zero
// Hostile restores honest ones.
func (s *Server) SetHostile(h Hostile) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	rh := make(map[string]string, len(h.RateHeaders))
	for k, v := range h.RateHeaders {
		rh[k] = v
	}
	h.RateHeaders = rh
	s.hostile = h
}

func (s *Server) hostileNow() Hostile {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.hostile
}

// hostileName reports whether pattern (a Hostile name field, a path.Match
// pattern) matches the served name.
func hostileName(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return pattern != "" && ok
}

// hostileFiller is what endless and huge bodies are made of.
var hostileFiller = bytes.Repeat([]byte("a"), 32<<10)

// serveEndless writes hostileFiller until the client goes away or the server
// closes.
func (s *Server) serveEndless(w *respWriter, r *http.Request) {
	w.Header().Del("Content-Length")
	w.Header().Del("ETag")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodGet {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		default:
		}
		if _, err := w.Write(hostileFiller); err != nil {
			return
		}
	}
}

// hostileAPI answers an API request the hostile way, if one is set.
func (s *Server) hostileAPI(a *apiReq) bool {
	h := s.hostileNow()
	switch {
	case len(h.RateHeaders) > 0:
		for k, v := range h.RateHeaders {
			a.w.Header().Set(k, v)
		}
		a.error(http.StatusForbidden, "API rate limit exceeded for 127.0.0.1.", docRate)
		return true
	case h.HugeAPI > 0:
		a.w.Header().Set("Content-Type", "application/json; charset=utf-8")
		a.w.WriteHeader(http.StatusOK)
		if a.r.Method != http.MethodGet {
			return true
		}
		if _, err := a.w.Write([]byte(`[{"id":1,"tag_name":"1.0.0","name":"1.0.0","body":"`)); err != nil {
			return true
		}
		for left := h.HugeAPI; left > 0; {
			n := min(left, int64(len(hostileFiller)))
			if _, err := a.w.Write(hostileFiller[:n]); err != nil {
				return true
			}
			left -= n
		}
		_, _ = a.w.Write([]byte(`"}]`))
		return true
	}
	return false
}

// shortLimit is where a ShortBodies response stops: half of its
// announced Content-Length, or -1 when it has none.
func shortLimit(h http.Header) int64 {
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil || n <= 0 {
		return -1
	}
	return n / 2
}
