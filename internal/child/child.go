// Package child runs the outside commands ccmirror depends on (cycle_server,
// `cyclecloud project build`) with bounds: a time limit, output caps that
// really cap, and the whole process group killed when either is exceeded or
// the context ends, so a grandchild left running cannot keep ccmirror
// waiting.
package child

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultTimeout is how long a child may run when the caller sets none.
const DefaultTimeout = 5 * time.Minute

// waitDelay is how long Run waits for the output pipes after the child
// exited and its group was killed: a process that left the group and holds
// them open is not waited for longer.
const waitDelay = 2 * time.Second

// ErrTimeout is returned (wrapped) when a child ran longer than its limit.
var ErrTimeout = errors.New("timed out")

// ErrOutputCap is returned (wrapped) when a child printed more than its cap.
var ErrOutputCap = errors.New("printed more than the output cap")

// Options bounds one run.
type Options struct {
	// Timeout is the most the child may run; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxStdout and MaxStderr cap what is kept of each stream. Going over
	// MaxStdout kills the child and fails the run; going over MaxStderr
	// only drops the rest (stderr is for messages). 0 means 64 KiB.
	MaxStdout, MaxStderr int
	// StderrIsStdout sends both streams into one capped buffer (the
	// combined output, as a terminal would show it).
	StderrIsStdout bool
	// Tail, when > 0, keeps only the last Tail bytes of stdout (for a
	// chatty command whose output only matters in an error message); the
	// total still counts against MaxStdout.
	Tail int
}

// Result is what a run printed.
type Result struct {
	Stdout, Stderr []byte
}

// Run starts cmd (built by exec.Command, not CommandContext) in its own
// process group and waits for it within the bounds of o. Its error wraps
// ErrTimeout, ErrOutputCap, ctx.Err() or the *exec.ExitError, and names
// the limit that was hit. When the child exits, whatever it left running in
// its group is killed; output still held open by a process that left the
// group is waited for at most two seconds.
func Run(ctx context.Context, cmd *exec.Cmd, o Options) (Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxStdout <= 0 {
		o.MaxStdout = 64 << 10
	}
	if o.MaxStderr <= 0 {
		o.MaxStderr = 64 << 10
	}
	g := newGroup()
	stdout := &capWriter{max: o.MaxStdout, tail: o.Tail, over: g.overflow}
	stderr := stdout
	if !o.StderrIsStdout {
		stderr = &capWriter{max: o.MaxStderr, drop: true}
	}
	// The pipes are ours, not exec's: Wait returns when the child exits,
	// not when the last holder of its output does.
	var readers []*os.File
	var copying sync.WaitGroup
	pipe := func(w *capWriter) (*os.File, error) {
		r, wr, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		readers = append(readers, r)
		copying.Add(1)
		go func() {
			defer copying.Done()
			drain(r, w)
		}()
		return wr, nil
	}
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	var writers []*os.File
	wout, err := pipe(stdout)
	if err != nil {
		return Result{}, err
	}
	writers = append(writers, wout)
	werr := wout
	if stderr != stdout {
		if werr, err = pipe(stderr); err != nil {
			closeAll(writers)
			closeAll(readers)
			return Result{}, err
		}
		writers = append(writers, werr)
	}
	cmd.Stdout, cmd.Stderr = wout, werr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	err = cmd.Start()
	closeAll(writers)
	if err != nil {
		closeAll(readers)
		copying.Wait()
		return Result{}, err
	}
	g.pid = cmd.Process.Pid
	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	done := make(chan struct{})
	why := make(chan error, 1)
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
			why <- ctx.Err()
		case <-timer.C:
			why <- fmt.Errorf("%w after %s", ErrTimeout, o.Timeout)
		case <-g.overflowed:
		}
		g.kill()
	}()
	err = cmd.Wait()
	close(done)
	// The child has exited; anything else in its group goes too, which
	// closes the pipes it held.
	g.kill()
	drained := make(chan struct{})
	go func() { copying.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(waitDelay):
		closeAll(readers) // a process outside the group holds them
		<-drained
	}
	closeAll(readers)
	res := Result{Stdout: stdout.Bytes()}
	if stderr != stdout {
		res.Stderr = stderr.Bytes()
	}
	switch {
	case g.isOver():
		return res, fmt.Errorf("%w of %s", ErrOutputCap, size(o.MaxStdout))
	}
	select {
	case w := <-why:
		return res, w
	default:
	}
	return res, err
}

// drain copies r into w until EOF, an error, or w's cap; past the cap it
// stops reading, so the child blocks (and is killed).
func drain(r *os.File, w *capWriter) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// group is the child's process group.
type group struct {
	pid        int // set once, before the watcher starts
	once       sync.Once
	overflowed chan struct{}
}

func newGroup() *group { return &group{overflowed: make(chan struct{})} }

// overflow is called by the stdout writer when it went over its cap.
func (g *group) overflow() { g.once.Do(func() { close(g.overflowed) }) }

func (g *group) isOver() bool {
	select {
	case <-g.overflowed:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the whole process group.
func (g *group) kill() {
	if g.pid > 0 {
		_ = syscall.Kill(-g.pid, syscall.SIGKILL)
	}
}

// capWriter keeps at most max bytes (or, with tail, the last tail bytes of
// at most max). Past max it either drops the rest quietly (drop) or reports
// the overflow and fails the write, which stops exec's copying goroutine.
// It has no ReadFrom, so io.Copy cannot bypass it.
type capWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	total int
	max   int
	tail  int
	drop  bool
	over  func()
}

func (c *capWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.total
	n := len(p)
	failed := false
	if n > room {
		n = max(room, 0)
		failed = !c.drop
	}
	c.total += n
	c.buf.Write(p[:n])
	if c.tail > 0 && c.buf.Len() > 2*c.tail {
		keep := bytes.Clone(c.buf.Bytes()[c.buf.Len()-c.tail:])
		c.buf.Reset()
		c.buf.Write(keep)
	}
	if !failed {
		return len(p), nil
	}
	if c.over != nil {
		c.over()
	}
	return n, ErrOutputCap
}

// Bytes returns what was kept.
func (c *capWriter) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf.Bytes()
	if c.tail > 0 && len(b) > c.tail {
		b = b[len(b)-c.tail:]
	}
	return bytes.Clone(b)
}

// size renders a cap for messages.
func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
