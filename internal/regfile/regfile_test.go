package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenRefusesWhatIsNotAFileWithoutBlocking(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("secret content"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path     string
		o        Options
		want     string // "" = opens
		notRegul bool
	}{
		{file, Options{NoFollow: true}, "", false},
		{link, Options{}, "", false},
		{link, Options{NoFollow: true}, "symbolic link", true},
		{fifo, Options{}, "a FIFO", true},
		{fifo, Options{NoFollow: true}, "a FIFO", true},
		{"/dev/null", Options{}, "a device", true},
		{dir, Options{}, "a folder", true},
		{filepath.Join(dir, "missing"), Options{}, "no such file", false},
	}
	for _, tc := range cases {
		b, err := ReadFile(tc.path, 1<<20, tc.o)
		if tc.want == "" {
			if err != nil || string(b) != "secret content" {
				t.Errorf("%s: %q %v", tc.path, b, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s %+v: %v, want an error naming it and %q", tc.path, tc.o, err, tc.want)
		}
		if errors.Is(err, ErrNotRegular) != tc.notRegul {
			t.Errorf("%s: ErrNotRegular = %v, want %v", tc.path, errors.Is(err, ErrNotRegular), tc.notRegul)
		}
	}
	if _, err := ReadFile(file, 3, Options{}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("oversized file: %v, want an error without the content", err)
	}
}
