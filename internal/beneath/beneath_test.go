package beneath

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// tree: a/b/f (file), a/link -> b, a/up -> .., fifo, out -> outside dir.
func tree(t *testing.T) (string, string) {
	t.Helper()
	d := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(d, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "a", "b", "f"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"a/link": "b", "a/up": "..", "out": outside} {
		if err := os.Symlink(target, filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(d, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d, outside
}

func TestNeverFollowsASymlink(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(map[bool]string{false: "openat2", true: "openat walk"}[fallback], func(t *testing.T) {
			noOpenat2.Store(fallback)
			defer noOpenat2.Store(false)
			d, _ := tree(t)
			root, err := OpenDir(d)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			f, err := root.Open("a/b/f")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(f)
			f.Close()
			if string(b) != "content" {
				t.Errorf("a/b/f = %q", b)
			}
			cases := []struct {
				rel        string
				dir        bool
				notRegular string // want a NotRegularError of this type
			}{
				{rel: "a/link/f"}, {rel: "a/up/a/b/f"}, {rel: "out/secret"}, {rel: "../x"}, {rel: "/etc/passwd"},
				{rel: "a/link", dir: true}, {rel: "out", dir: true},
				{rel: "a/link", notRegular: "a symbolic link"}, {rel: "fifo", notRegular: "a FIFO"}, {rel: "a", notRegular: "a folder"},
			}
			for _, tc := range cases {
				var err error
				if tc.dir {
					var sub *Dir
					sub, err = root.OpenDir(tc.rel)
					sub.Close()
				} else {
					var f *os.File
					f, err = root.Open(tc.rel)
					if f != nil {
						f.Close()
					}
				}
				var nr *NotRegularError
				switch {
				case err == nil:
					t.Errorf("%s opened; want a refusal", tc.rel)
				case tc.notRegular != "":
					if !errors.As(err, &nr) || !strings.Contains(err.Error(), tc.notRegular) {
						t.Errorf("%s: %v, want NotRegularError %q", tc.rel, err, tc.notRegular)
					}
				case errors.As(err, &nr):
					t.Errorf("%s: %v, want a path refusal", tc.rel, err)
				}
			}
			var seen []string
			err = root.Walk(context.Background(), func(rel string, parent *Dir, name string, st *unix.Stat_t) error {
				seen = append(seen, rel+":"+strings.TrimPrefix(ModeType(st.Mode).String(), "-"))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := "a:d---------,a/b:d---------,a/b/f:---------,a/link:L---------,a/up:L---------,fifo:p---------,out:L---------"
			if got := strings.Join(seen, ","); got != want {
				t.Errorf("walk saw\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestOpenDirAfterSwap(t *testing.T) {
	d, outside := tree(t)
	root, _ := OpenDir(d)
	defer root.Close()
	a, err := root.OpenDir("a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// a is swapped for a symlink: the handle still names the real folder,
	// a fresh open refuses.
	if err := os.Rename(filepath.Join(d, "a"), filepath.Join(d, "a.moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(d, "a")); err != nil {
		t.Fatal(err)
	}
	if f, err := a.Open("b/f"); err != nil {
		t.Errorf("open through the held handle: %v", err)
	} else {
		f.Close()
	}
	if _, err := root.OpenDir("a"); !errors.Is(err, ErrSymlink) {
		t.Errorf("open of the swapped folder: %v, want ErrSymlink", err)
	}
	if _, err := root.Open("a/secret"); err == nil || errors.Is(err, fs.ErrNotExist) && false {
		t.Errorf("open through the swapped folder: %v", err)
	}
}
