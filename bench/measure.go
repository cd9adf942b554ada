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

// median runs one side of a row reps times and returns the run with the
// median wall time (its RSS the largest seen).
func median(reps int, run func(i int) (measured, error)) (measured, error) {
	var ms []measured
	var rss int64
	for i := 0; i < reps; i++ {
		m, err := run(i)
		if err != nil {
			return m, err
		}
		ms = append(ms, m)
		rss = max(rss, m.rss)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].secs < ms[j].secs })
	m := ms[len(ms)/2]
	m.rss = rss
	return m, nil
}
