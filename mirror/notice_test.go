package mirror

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// noticeLog collects Options.Notice lines.
type noticeLog struct {
	mu    sync.Mutex
	lines []string
}

func (n *noticeLog) add(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, s)
}

func (n *noticeLog) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

// An interrupted download whose next try is more than NoticeWait away
// says so in one notice: what, which attempt of how many, when next.
func TestRetryWaitNotice(t *testing.T) {
	const asset = "sge-2011.11-64.tgz"
	s := newFake(t, githubtest.Options{BlobSize: 4096})
	s.SetStall(asset, 2500, 24*time.Hour)
	o := testOptions(t, s)
	o.IdleTimeout = 300 * time.Millisecond
	o.RetryWaitMin, o.RetryWaitMax = 2*NoticeWait+NoticeWait/4, 2*NoticeWait+NoticeWait/4 // every wait is over NoticeWait
	var n noticeLog
	o.Notice = n.add
	f := newFetcher(t, o)
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, filepath.Join(t.TempDir(), "b.tar")); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	lines := n.all()
	if len(lines) != 1 || !strings.Contains(lines[0], asset) || !strings.Contains(lines[0], "download interrupted at") ||
		!strings.Contains(lines[0], "(attempt 1 of 11); next try in ") {
		t.Errorf("notices %q; want one naming %s, attempt 1 of 11 and the next try", lines, asset)
	}
}
