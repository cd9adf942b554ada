package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/index"
	"github.com/ccmirror/ccmirror/staging"
)

// downloadsDir is where bundles are downloaded, in update's folder dir.
func downloadsDir(dir string) string { return filepath.Join(dir, DownloadsDir) }

// downloadPath is where the bundle with this sha256 is downloaded: named
// by content, so a partial download resumes only into the same bundle.
func downloadPath(dir, sum string) string { return filepath.Join(downloadsDir(dir), sum+".tar") }

// installAll installs every offered version in order; a failing one is
// recorded and the others still run.
func (u *updater) installAll(ctx context.Context, ix *index.Index) {
	if len(u.rep.Install) == 0 {
		return
	}
	u.sweep()
	for i := range u.rep.Install {
		it := &u.rep.Install[i]
		if err := ctx.Err(); err != nil {
			it.Action, it.Error = ActionFailed, err.Error()
			u.errs = append(u.errs, fmt.Errorf("update: %w", err))
			continue
		}
		if err := u.installOne(ctx, it); err != nil {
			it.Action, it.Error = ActionFailed, err.Error()
			u.errs = append(u.errs, err)
			u.log.Error("update step failed", "project", it.Project, "version", it.Version, "error", err.Error())
			continue
		}
		it.Action = ActionInstalled
		u.log.Info("installed", "project", it.Project, "version", it.Version, "bundle", it.File)
	}
}

// sweep removes downloads of bundles this run does not want (left by runs
// whose index has moved on), so partial files do not pile up.
func (u *updater) sweep() {
	dir := downloadsDir(u.dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, it := range u.rep.Install {
		keep[it.SHA256] = true
	}
	for _, e := range ents {
		sum, _, _ := strings.Cut(e.Name(), ".")
		if !keep[sum] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err == nil {
				u.log.Debug("removed a download no longer wanted", "file", e.Name())
			}
		}
	}
}

// installOne gets one bundle, checks it against the index and installs it.
func (u *updater) installOne(ctx context.Context, it *Item) error {
	label := fmt.Sprintf("update %s %s (%s)", it.Project, it.Version, it.File)
	r, done, err := u.bundle(ctx, it)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	irep, err := staging.Install(ctx, r, it.File, staging.InstallOptions{
		Root:         u.root,
		StateDir:     u.o.StateDir,
		Owner:        u.o.Owner,
		Builder:      u.o.Builder,
		BuildTimeout: u.o.Timeout,
		Verify:       staging.VerifyOptions{Allowed: u.o.Allowed},
		Log:          u.log,
		LockWait:     u.o.LockWait,
		Notice:       u.o.Notice,
	})
	done(err)
	if irep != nil {
		for _, w := range irep.Warnings {
			u.warn(it.File + ": " + w)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

// bundle returns a reader of the verified bundle bytes and a function to
// call with the install's outcome. A Downloader's bundle is downloaded
// (resuming) into the state folder, checked, and removed once installed or
// found bad; a folder's bundle is hashed in place and read again from the
// same open file.
func (u *updater) bundle(ctx context.Context, it *Item) (io.Reader, func(error), error) {
	if d, ok := u.o.Source.(Downloader); ok {
		return u.download(ctx, d, it)
	}
	rc, size, err := u.o.Source.Open(ctx, it.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("the index lists it but %s lacks it: %w", u.o.Source, errclass.ErrUpstream)
	}
	if err != nil {
		return nil, nil, err
	}
	rs, ok := rc.(io.ReadSeeker)
	if !ok {
		// Not seekable: keep a copy to check and install from.
		defer rc.Close()
		return u.copyLocal(ctx, rc, it)
	}
	if size != it.Size {
		rc.Close()
		return nil, nil, fmt.Errorf("%s in %s has %d bytes, the signed index says %d: %w", it.File, u.o.Source, size, it.Size, manifest.ErrVerify)
	}
	if err := checkBundle(ctx, rs, it, u.o.Source.String()); err != nil {
		rc.Close()
		return nil, nil, err
	}
	return ctxio.NewReader(ctx, rs), func(error) { rc.Close() }, nil
}

// checkStream hashes r and compares size and sha256 with the index.
func checkStream(ctx context.Context, r io.Reader, it *Item, where string) error {
	h := sha256.New()
	n, err := io.Copy(h, ctxio.NewReader(ctx, r))
	if err != nil {
		return fmt.Errorf("read %s from %s: %w", it.File, where, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != it.Size || sum != it.SHA256 {
		return fmt.Errorf("%s in %s is %d bytes with sha256 %s, the signed index says %d bytes with sha256 %s: %w",
			it.File, where, n, sum, it.Size, it.SHA256, manifest.ErrVerify)
	}
	return nil
}

// checkBundle checks a bundle file against its index entry (size, sha256,
// and that its manifest carries the project version the index says), and
// leaves it rewound for install.
func checkBundle(ctx context.Context, rs io.ReadSeeker, it *Item, where string) error {
	if err := checkStream(ctx, rs, it, where); err != nil {
		return err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return err
	}
	head, err := staging.Inspect(rs)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", it.File, where, err)
	}
	var holds []string
	found := false
	for _, p := range head.Projects {
		holds = append(holds, p.Name+" "+p.Version)
		found = found || p.Name == it.Project && p.Version == it.Version
	}
	if !found {
		return fmt.Errorf("%s in %s holds %s, but the signed index lists it for %s %s: %w",
			it.File, where, strings.Join(holds, ", "), it.Project, it.Version, manifest.ErrVerify)
	}
	_, err = rs.Seek(0, io.SeekStart)
	return err
}

// download fetches a bundle into the state folder (or reuses a complete
// earlier download), checks it and opens it.
func (u *updater) download(ctx context.Context, d Downloader, it *Item) (io.Reader, func(error), error) {
	dir := downloadsDir(u.dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("downloads folder: %w", err)
	}
	path := downloadPath(u.dir, it.SHA256)
	if _, err := os.Lstat(path); err == nil {
		u.log.Info("using an earlier complete download", "bundle", it.File, "path", path)
	} else {
		tr, err := d.Download(ctx, it.File, path)
		it.Transfer = &tr
		u.rep.Downloaded += tr.Downloaded
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("the index lists it but %s lacks it: %w", d, errclass.ErrUpstream)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return u.openChecked(ctx, path, it)
}

// copyLocal copies a non-seekable stream into the state folder, then
// checks and opens it.
func (u *updater) copyLocal(ctx context.Context, r io.Reader, it *Item) (io.Reader, func(error), error) {
	dir := downloadsDir(u.dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("downloads folder: %w", err)
	}
	path := downloadPath(u.dir, it.SHA256)
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer f.Abort()
	n, err := io.Copy(f, ctxio.NewReader(ctx, io.LimitReader(r, it.Size+1)))
	u.rep.Downloaded += n
	it.Transfer = &Transfer{Downloaded: n}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s from %s: %w", it.File, u.o.Source, err)
	}
	if err := f.Commit(); err != nil {
		return nil, nil, err
	}
	return u.openChecked(ctx, path, it)
}

// openChecked opens a local bundle file, checks it against the index
// (removing it when it differs) and returns it rewound; done removes it
// once installed or found bad by install, and keeps it otherwise (a
// conflict, an interruption: the next run installs it without a download).
func (u *updater) openChecked(ctx context.Context, path string, it *Item) (io.Reader, func(error), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkBundle(ctx, f, it, u.o.Source.String()); err != nil {
		f.Close()
		if errors.Is(err, manifest.ErrVerify) {
			os.Remove(path)
		}
		return nil, nil, err
	}
	done := func(err error) {
		f.Close()
		if err == nil || errors.Is(err, manifest.ErrVerify) {
			os.Remove(path)
		}
	}
	return ctxio.NewReader(ctx, f), done, nil
}
