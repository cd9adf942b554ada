package githubtest

import (
	"context"
	"errors"
	"time"
)

type stall struct {
	after int64
	d     time.Duration
}

// SetFailRate makes a fraction p (0..1) of requests on both hosts fail
// with 500, 502 or 503, chosen pseudo-randomly from Options.Seed.
func (s *Server) SetFailRate(p float64) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.failRate = max(0, min(p, 1))
}

// SetStall makes every response body of the named asset pause for d after
// its first `after` bytes (counted per response, so a resumed range
// request stalls again after `after` more bytes). asset is a release asset
// name, an archive file name as GitHub names it in Content-Disposition
// (e.g. "cyclecloud-slurm-2.5.0.tar.gz"), or "*" for everything the
// download host serves. d <= 0 removes the stall.
func (s *Server) SetStall(asset string, after int64, d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if d <= 0 {
		delete(s.stalls, asset)
		return
	}
	s.stalls[asset] = stall{after: max(after, 0), d: d}
}

// TruncateOnce makes the next response body of the named asset (same names
// as SetStall) that is longer than `after` bytes send its full
// Content-Length header, then only `after` bytes, then close the
// connection. It fires once.
func (s *Server) TruncateOnce(asset string, after int64) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.truncs[asset] = max(after, 0)
}

// SetBandwidth limits every connection of the download host to
// bytesPerSec body bytes per second (0: unlimited) and delays the first
// byte of every response on both hosts by latency.
func (s *Server) SetBandwidth(bytesPerSec int64, latency time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.bandwidth = max(bytesPerSec, 0)
	s.latency = max(latency, 0)
}

// shouldFail picks the status of an injected failure, or 0.
func (s *Server) shouldFail() int {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.failRate <= 0 || s.rng.Float64() >= s.failRate {
		return 0
	}
	return [...]int{500, 502, 503}[s.rng.IntN(3)]
}

// faultsFor returns the stall and pending truncation for a served name.
func (s *Server) faultsFor(name string) (st stall, hasStall bool, trunc int64, hasTrunc bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	st, hasStall = s.stalls[name]
	if !hasStall {
		st, hasStall = s.stalls["*"]
	}
	trunc, hasTrunc = s.truncs[name]
	if !hasTrunc {
		trunc, hasTrunc = s.truncs["*"]
	}
	return
}

// claimTrunc consumes the one-shot truncation of name (or "*"), reporting
// whether this response won it.
func (s *Server) claimTrunc(name string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if _, ok := s.truncs[name]; ok {
		delete(s.truncs, name)
		return true
	}
	if _, ok := s.truncs["*"]; ok {
		delete(s.truncs, "*")
		return true
	}
	return false
}

func (s *Server) shaping() (int64, time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.bandwidth, s.latency
}

// sleep waits d, or less if the request or the server ends first.
func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errors.New("server closed")
	}
}
