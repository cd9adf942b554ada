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
	mu  sync.Mutex
	bar *progressbar.ProgressBar
	got int64 // bytes received so far
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
// archives, sizes unknown) to a bar of the remaining bytes to download.
func (p *progress) expect(remaining int64) {
	if p.bar == nil || remaining <= 0 {
		return
	}
	p.mu.Lock()
	p.got = 0
	p.mu.Unlock()
	p.bar.Reset()
	p.bar.ChangeMax64(remaining)
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
