package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// measured is one timed process (or a sequence of them).
type measured struct {
	secs float64
	rss  int64 // peak resident set of the largest process, bytes
}

// runCmd runs one command and returns its wall time and peak RSS (from the
// child's own rusage).
func runCmd(ctx context.Context, dir string, env []string, name string, args ...string) (measured, []byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	m := measured{secs: time.Since(start).Seconds()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.rss = ru.Maxrss * 1024
		}
	}
	if err != nil {
		return m, out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return m, out, nil
}

func (m *measured) add(o measured) {
	m.secs += o.secs
	if o.rss > m.rss {
		m.rss = o.rss
	}
}

// spread is a side of a row over its repetitions: the median run, and the
// fastest and slowest wall times.
type spread struct {
	measured
	min, max float64
}

// pair runs the two sides of a row interleaved, A B A B …, reps times
// each, so both see the same machine noise, and returns each side's
// median (RSS the largest seen) with its min and max.
func pair(reps int, a, b func(i int) (measured, error)) (spread, spread, error) {
	var as, bs []measured
	for i := 0; i < max(reps, 1); i++ {
		m, err := a(i)
		if err != nil {
			return spread{}, spread{}, err
		}
		as = append(as, m)
		if m, err = b(i); err != nil {
			return spread{}, spread{}, err
		}
		bs = append(bs, m)
	}
	return spreadOf(as), spreadOf(bs), nil
}

func spreadOf(ms []measured) spread {
	var rss int64
	for _, m := range ms {
		rss = max(rss, m.rss)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].secs < ms[j].secs })
	s := spread{measured: ms[len(ms)/2], min: ms[0].secs, max: ms[len(ms)-1].secs}
	s.rss = rss
	return s
}

// one is a side measured once.
func one(m measured) spread { return spread{measured: m, min: m.secs, max: m.secs} }

// pairRow is the row of two sides measured by pair: ratio of medians, each
// side's min–max, and ×limit when limit (seconds) is known.
func pairRow(size int64, name, baseline string, a, b spread, limit float64) row {
	r := row{Size: size, Name: name, Baseline: baseline,
		Seconds: a.secs, BaseSeconds: b.secs, Ratio: a.secs / b.secs,
		Min: a.min, Max: a.max, BaseMin: b.min, BaseMax: b.max,
		RSS: a.rss, BaseRSS: b.rss, Limit: limit}
	if limit > 0 {
		r.XLimit = a.secs / limit
	}
	return r
}
