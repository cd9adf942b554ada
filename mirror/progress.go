package mirror

import (
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is the one aggregate progress bar of a fetch: bytes received,
// rate and ETA. It draws only on a terminal; otherwise it does nothing and
// the slog lines tell the story.
type progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	got   int64 // bytes received so far
	total int64 // bytes expected in all, 0 while the bar is a spinner
}

// sharedProgress is the one progress bar of every Fetch under way on a
// Fetcher: concurrent fetches (sync runs several) add to one bar instead
// of drawing over each other.
type sharedProgress struct {
	mu    sync.Mutex
	p     *progress
	users int
}

// open returns the bar, made on w by the first user.
func (s *sharedProgress) open(w io.Writer) *progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == 0 {
		s.p = newProgress(w)
	}
	s.users++
	return s.p
}

// close ends one user's use; the last removes the bar.
func (s *sharedProgress) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users--
	if s.users == 0 {
		s.p.done()
		s.p = nil
	}
}

func newProgress(w io.Writer) *progress {
	p := &progress{}
	fd, ok := w.(interface{ Fd() uintptr })
	if w == nil || !ok || !term.IsTerminal(int(fd.Fd())) {
		return p
	}
	p.bar = progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("fetch"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
	return p
}

// add records n bytes received.
func (p *progress) add(n int64) {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	p.got += n
	p.mu.Unlock()
	_ = p.bar.Add64(n)
}

// expect switches the bar from the spinner of the resolve phase (source
// archives, sizes unknown) to a bar of the remaining bytes to download;
// a later call (another fetch sharing the bar) adds its bytes to it.
func (p *progress) expect(remaining int64) {
	if p.bar == nil || remaining <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total == 0 {
		p.got = 0
		p.bar.Reset()
	}
	p.total += remaining
	p.bar.ChangeMax64(p.total)
}

// describe changes the label in front of the bar.
func (p *progress) describe(s string) {
	if p.bar != nil {
		p.bar.Describe(s)
	}
}

// done removes the bar from the terminal.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
		_ = p.bar.Exit()
	}
}
