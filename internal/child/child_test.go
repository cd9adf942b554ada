package child

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gone reports whether pid no longer runs (absent, or a zombie nobody reaps).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func TestRunBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  string
		opts    Options
		cancel  bool // cancel the context once the child wrote its pid file
		wantErr error
		wantOut string
	}{
		{name: "ok", script: `echo hello; echo oops >&2`, wantOut: "hello\n"},
		{name: "exit status", script: `echo bad >&2; exit 3`, wantErr: &exec.ExitError{}},
		// 200 MiB against a 1 MiB cap: the cap holds and the child is killed.
		{name: "flood", script: `head -c 209715200 /dev/zero`, opts: Options{MaxStdout: 1 << 20}, wantErr: ErrOutputCap},
		{name: "flood on stderr is dropped", script: `head -c 20971520 /dev/zero >&2; echo done`, opts: Options{MaxStderr: 1 << 10}, wantOut: "done\n"},
		{name: "hang before printing", script: `sleep 1000`, opts: Options{Timeout: 200 * time.Millisecond}, wantErr: ErrTimeout},
		{name: "hang after printing", script: `echo partial; sleep 1000`, opts: Options{Timeout: 200 * time.Millisecond}, wantErr: ErrTimeout},
		{name: "cancelled", script: `sleep 1000`, cancel: true, wantErr: context.Canceled},
		// A grandchild keeps stdout open after the child exits: Run returns
		// once the child is gone, and the grandchild is killed with its group.
		{name: "grandchild holds the pipe", script: `sleep 1000 & echo $! > "$PIDS.grand"; echo ok`, wantOut: "ok\n"},
		{name: "grandchild detached from the pipe", script: `sleep 1000 >/dev/null 2>&1 & echo $! > "$PIDS.grand"; echo ok`, wantOut: "ok\n"},
		{name: "tail keeps the end", script: `seq 1 10000`, opts: Options{Tail: 6, StderrIsStdout: true, MaxStdout: 1 << 20}, wantOut: "10000\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pids := filepath.Join(dir, "pid")
			cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$PIDS.child"; `+tc.script)
			cmd.Env = append(os.Environ(), "PIDS="+pids)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				go func() {
					for {
						if _, err := os.Stat(pids + ".child"); err == nil {
							cancel()
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}()
			}
			res, err := Run(ctx, cmd, tc.opts)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.wantErr != nil:
				var ee *exec.ExitError
				if _, isExit := tc.wantErr.(*exec.ExitError); isExit {
					if !errors.As(err, &ee) {
						t.Fatalf("Run error %v, want an exit status", err)
					}
				} else if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Run error %v, want %v", err, tc.wantErr)
				}
			}
			if tc.wantOut != "" && string(res.Stdout) != tc.wantOut {
				t.Errorf("stdout %q, want %q", res.Stdout, tc.wantOut)
			}
			if len(res.Stdout) > max(tc.opts.MaxStdout, 64<<10) || len(res.Stderr) > max(tc.opts.MaxStderr, 64<<10) {
				t.Errorf("kept %d+%d bytes, over the caps", len(res.Stdout), len(res.Stderr))
			}
			for _, f := range []string{".child", ".grand"} {
				b, err := os.ReadFile(pids + f)
				if err != nil {
					continue
				}
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				// SIGKILL was sent before Run returned; allow the kernel a
				// moment to finish delivering it.
				for i := 0; i < 200 && !gone(pid); i++ {
					time.Sleep(10 * time.Millisecond)
				}
				if !gone(pid) {
					t.Errorf("process %d (%s) still runs after Run returned", pid, f[1:])
				}
			}
		})
	}
}

func TestCapWriterHasNoReadFrom(t *testing.T) {
	// io.Copy would bypass the cap through a ReadFrom method.
	var w any = &capWriter{max: 1}
	if _, ok := w.(io.ReaderFrom); ok {
		t.Fatal("capWriter has ReadFrom")
	}
	c := &capWriter{max: 4, over: func() {}}
	if n, err := c.Write([]byte("abcdef")); n != 4 || !errors.Is(err, ErrOutputCap) {
		t.Fatalf("Write over the cap = %d, %v; want 4, ErrOutputCap", n, err)
	}
}
