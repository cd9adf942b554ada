package githubtest

import (
	"net/http"
	"strconv"
	"time"
)

type rateState struct {
	limit, remaining, used int
	reset                  time.Time
}

// SetRateLimit sets the remaining API budget and when it refills. Once it
// is spent, API requests answer 403 "API rate limit exceeded" with
// X-RateLimit-Remaining: 0 until reset; a reset in the past refills the
// budget at the next request. Downloads from the download host are free,
// as on GitHub.
func (s *Server) SetRateLimit(remaining int, reset time.Time) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	remaining = max(remaining, 0)
	s.rate.limit = max(defaultRateLimit, remaining)
	s.rate.remaining = remaining
	s.rate.used = s.rate.limit - remaining
	s.rate.reset = reset.Truncate(time.Second)
}

// SetRetryAfter makes rate-limited answers also carry Retry-After: d
// (rounded up to seconds), as GitHub does for secondary rate limits; 0
// removes it.
func (s *Server) SetRetryAfter(d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.retryAfter = max(d, 0)
}

// takeRate spends one request of the budget.
func (s *Server) takeRate() (rateState, time.Duration, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	now := time.Now()
	if !now.Before(s.rate.reset) {
		s.rate.remaining = s.rate.limit
		s.rate.used = 0
		s.rate.reset = now.Add(time.Hour).Truncate(time.Second)
	}
	if s.rate.remaining <= 0 {
		return s.rate, s.retryAfter, false
	}
	s.rate.remaining--
	s.rate.used++
	return s.rate, 0, true
}

// refundRate gives back a request: authorized conditional requests that
// answer 304 do not count against the limit.
func (s *Server) refundRate() rateState {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.rate.used > 0 {
		s.rate.used--
		s.rate.remaining++
	}
	return s.rate
}

func (s *Server) peekRate() rateState {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if !time.Now().Before(s.rate.reset) {
		return rateState{limit: s.rate.limit, remaining: s.rate.limit, reset: time.Now().Add(time.Hour).Truncate(time.Second)}
	}
	return s.rate
}

func setRateHeaders(h http.Header, rs rateState) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(rs.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rs.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rs.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(rs.used))
	h.Set("X-RateLimit-Resource", "core")
}

// rateLimit answers GET /rate_limit without spending the budget.
func (a *apiReq) rateLimit() {
	rs := a.s.peekRate()
	setRateHeaders(a.w.Header(), rs)
	core := rateJSON{Limit: rs.limit, Remaining: rs.remaining, Reset: rs.reset.Unix(), Used: rs.used, Resource: "core"}
	a.json(http.StatusOK, map[string]any{"resources": map[string]any{"core": core}, "rate": core})
}

func (a *apiReq) rateLimited(retry time.Duration) {
	who := "127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)"
	if a.auth {
		who = "user ID 1."
	}
	if retry > 0 {
		a.w.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
	}
	a.error(http.StatusForbidden, "API rate limit exceeded for "+who, docRate)
}
