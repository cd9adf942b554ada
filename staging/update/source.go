package update

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/manifest/index"
)

// Source is where a mirror's published files are read from: the sync
// job's output folder (Folder), or its publish container (an adapter the
// command line passes in; staging imports no transport).
type Source interface {
	// String names the source in messages and reports, without secrets.
	String() string
	// Open opens the object name (index.json, index.json.sig or a bundle's
	// file name from the index) and returns its size. A missing object's
	// error matches fs.ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, int64, error)
}

// Downloader is a Source whose bundles are downloaded to a local file
// before they are verified and installed, resuming an interrupted
// download.
type Downloader interface {
	Source
	// Download copies the object name into the local file path. Bytes go
	// to a partial file beside path first; a later Download of the same
	// object into the same path resumes where an interrupted one stopped.
	// path appears only once complete.
	Download(ctx context.Context, name, path string) (Transfer, error)
}

// Transfer says what one Download moved.
type Transfer struct {
	// ResumedFrom is the offset an interrupted download was resumed from
	// (0 when it started afresh).
	ResumedFrom int64 `json:"resumed_from"`
	// Downloaded is the number of bytes received by this call.
	Downloaded int64 `json:"downloaded"`
}

// Folder is a Source reading a folder that holds what `ccmirror sync`
// wrote to its output: index.json, index.json.sig and the bundles, as
// copied to removable media or through a one-way diode. Bundles are read
// in place, not copied.
type Folder string

// String is the folder path.
func (f Folder) String() string { return string(f) }

// Open opens a plain file name in the folder; anything else (a path, a dot
// file, a symbolic link, a FIFO, a folder) is refused without blocking.
func (f Folder) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if name != index.Name && name != index.SigName && !index.ValidFileName(name) {
		return nil, 0, fmt.Errorf("%s: %q is not a plain file name", f, name)
	}
	p := filepath.Join(string(f), name)
	file, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		file.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file: %w", p, fs.ErrInvalid)
	}
	return file, st.Size(), nil
}
