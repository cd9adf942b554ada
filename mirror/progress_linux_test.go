package mirror

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ccmirror/ccmirror/mirror/githubtest"
	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// The progress bar is drawn on a terminal and nowhere else.
func TestProgressOnlyOnTerminal(t *testing.T) {
	s := newFake(t, githubtest.Options{BlobSize: 48 << 10})
	s.SetBandwidth(96<<10, 0) // half a second per asset: long enough to draw
	master, slave := openPTY(t)
	var (
		mu  sync.Mutex
		got bytes.Buffer
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			got.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	o := testOptions(t, s)
	o.Progress = slave
	if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, filepath.Join(t.TempDir(), "b.tar")); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	master.Close()
	<-done
	mu.Lock()
	out := got.String()
	mu.Unlock()
	if !strings.Contains(out, "download") || !strings.Contains(out, "%") || !strings.Contains(out, "kB/s") {
		t.Errorf("terminal shows no byte progress bar: %q", out)
	}

	// A plain file (a log, a pipe in cron) gets nothing.
	s.SetBandwidth(0, 0)
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o = testOptions(t, s)
	o.Progress = f
	if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, filepath.Join(t.TempDir(), "b.tar")); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		b, _ := os.ReadFile(f.Name())
		t.Errorf("non-terminal progress writer got %q", b)
	}
}
