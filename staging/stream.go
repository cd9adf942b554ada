package staging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ccmirror/ccmirror/manifest"
	"golang.org/x/sys/unix"
)

// stream writes every payload file into the temporary folder while the
// manifest reader hashes it; a mismatch surfaces as ErrVerify from the
// last read. Each project source, once written (and so verified), goes to
// early (nil: none).
func (in *installer) stream(ctx context.Context, rd *manifest.Reader, early *earlyBuilds) error {
	var total int64
	bufs := make([][]byte, streamBufs)
	for i := range bufs {
		bufs[i] = make([]byte, streamBufSize)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bundle %s: %w", in.rep.Bundle, err)
		}
		name := "payload/" + p.File.Path
		if err := in.troot.MkdirAll(path.Dir(name), 0o700); err != nil {
			return err
		}
		f, err := in.troot.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("%s: %w", p.File.Path, err)
		}
		_, err = pipeCopy(&hookWriter{w: f, total: &total, hook: in.sw.hook}, p, bufs)
		if err == nil {
			in.durable.writeback(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if errors.Is(err, manifest.ErrVerify) {
				return err // names the entry already
			}
			return fmt.Errorf("%s: %w", p.File.Path, err)
		}
		in.hook("payload:" + p.File.Path)
		early.sourceDone(p.File.Path)
	}
}

// earlyBuilds builds projects on a goroutine of their own, in the
// bundle's order, as soon as their sources and those of every project
// before them are in the temporary folder. A failed build cancels ctx, the
// stream's context: the install fails now, not after the last blob.
type earlyBuilds struct {
	in     *installer
	ctx    context.Context
	cancel context.CancelCauseFunc
	ready  []bool
	next   int // first project not queued
	queue  chan int
	done   chan struct{}
	built  []bool // read only after done
	err    error  // read only after done
}

func (in *installer) startBuilds(ctx context.Context) *earlyBuilds {
	n := len(in.projects)
	b := &earlyBuilds{in: in, ready: make([]bool, n), queue: make(chan int, n), done: make(chan struct{}), built: make([]bool, n)}
	b.ctx, b.cancel = context.WithCancelCause(ctx)
	go func() {
		defer close(b.done)
		for i := range b.queue {
			if b.err != nil {
				continue
			}
			if err := in.buildProject(ctx, i); err != nil {
				b.err = err
				b.cancel(err)
				in.hook("build-failed:" + in.projects[i].p.Name)
				continue
			}
			b.built[i] = true
		}
	}()
	return b
}

// sourceDone notes that the payload file path is written; when it is a
// project's source, that project (and any after it now ready) is queued.
func (b *earlyBuilds) sourceDone(path string) {
	if b == nil {
		return
	}
	for i, pw := range b.in.projects {
		if pw.p.Source.Path == path {
			b.ready[i] = true
		}
	}
	for b.next < len(b.ready) && b.ready[b.next] {
		b.queue <- b.next
		b.next++
	}
}

// wait ends the early builds and says which projects were built; its
// error is the first build's failure.
func (b *earlyBuilds) wait() ([]bool, error) {
	if b == nil {
		return nil, nil
	}
	close(b.queue)
	<-b.done
	b.cancel(nil)
	return b.built, b.err
}

// Payload bytes go through streamBufs buffers of streamBufSize: few, large
// writes, and room for the reader to run ahead of the writer.
const (
	streamBufSize = 1 << 20
	streamBufs    = 4
)

// pipeCopy copies r to w, reading (and so hashing: r checks its bytes as
// they are read) on this goroutine and writing on another, so that the
// SHA-256 of one buffer and the write of the previous one run side by
// side. It stops at the first error of either; r's error (ErrVerify from
// the last read) wins over w's.
func pipeCopy(w io.Writer, r io.Reader, bufs [][]byte) (int64, error) {
	free := make(chan []byte, len(bufs))
	full := make(chan []byte, len(bufs))
	for _, b := range bufs {
		free <- b
	}
	var failed atomic.Bool
	werr := make(chan error, 1)
	go func() {
		var err error
		for b := range full {
			if err == nil {
				if _, err = w.Write(b); err != nil {
					failed.Store(true)
				}
			}
			free <- b[:cap(b)]
		}
		werr <- err
	}()
	var n int64
	var rerr error
	for !failed.Load() {
		b := <-free
		k, err := io.ReadFull(r, b)
		if k > 0 {
			full <- b[:k]
			n += int64(k)
		} else {
			free <- b
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	close(full)
	if err := <-werr; rerr == nil {
		rerr = err
	}
	return n, rerr
}

// hookWriter reports running byte totals to the install's hook.
type hookWriter struct {
	w     io.Writer
	total *int64
	hook  func(string)
}

func (h *hookWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	*h.total += int64(n)
	if h.hook != nil {
		h.hook("bytes:" + strconv.FormatInt(*h.total, 10))
	}
	return n, err
}

// buildProject unpacks project i's source and builds its version folder.
func (in *installer) buildProject(ctx context.Context, i int) error {
	pw := in.projects[i]
	p := pw.p
	label := fmt.Sprintf("%s@%s source", p.Name, p.Version)
	pw.src = "src/" + strconv.Itoa(i)
	pw.out = "out/" + strconv.Itoa(i)
	f, err := in.troot.Open("payload/" + p.Source.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	err = unpackSource(ctx, f, in.troot, pw.src, label, in.warn)
	f.Close()
	if err != nil {
		return err
	}
	in.hook("unpacked:" + p.Name)
	ini, err := in.readINI(pw.src, label)
	if err != nil {
		return err
	}
	if ini.Name != p.Name {
		return fmt.Errorf("%s: project.ini names project %q, the bundle says %q: %w", label, ini.Name, p.Name, manifest.ErrVerify)
	}
	if !manifest.ValidName(ini.Version) || ini.Version == "blobs" {
		return fmt.Errorf("%s: project.ini version %q is not usable as a folder name: %w", label, ini.Version, manifest.ErrVerify)
	}
	if ini.Version != p.Tag && p.Tag != "" {
		in.warn(fmt.Sprintf("%s: project.ini says version %s but the tag is %s; staging as %s/%s", label, ini.Version, p.Tag, p.Name, ini.Version))
	}
	for _, o := range in.projects[:i] {
		if o.plan.Name == p.Name && o.plan.Version == ini.Version {
			return fmt.Errorf("%s: two projects in the bundle build %s/%s: %w", label, p.Name, ini.Version, manifest.ErrVerify)
		}
	}
	pw.plan.Version = ini.Version
	pw.target = filepath.Join(ProjectsDir(in.root), p.Name, ini.Version)
	pw.rel = p.Name + "/" + ini.Version
	pw.plan.Dir = pw.target
	pw.iniBlobs = ini.Blobs
	if err := in.troot.MkdirAll("out", 0o700); err != nil {
		return err
	}
	switch in.builder {
	case BuilderCycleCloud:
		var inputs []blobInput
		for _, bp := range in.blobs {
			if bp.project != p.Name {
				continue
			}
			if bp.carried {
				inputs = append(inputs, blobInput{Name: bp.item.Path, Payload: bp.payload})
			} else {
				rel := bp.rel
				inputs = append(inputs, blobInput{Name: bp.item.Path, Staged: func() (*os.File, error) {
					if in.proj == nil {
						return nil, fs.ErrNotExist
					}
					return in.proj.Open(rel)
				}})
			}
		}
		err = buildCycleCloud(ctx, in.troot, pw.src, pw.out, p.Name, in.cyclecloud, in.o.BuildTimeout, inputs, in.log, in.warn)
	default:
		err = buildNative(in.troot, pw.src, pw.out, in.warn)
	}
	if err != nil {
		return fmt.Errorf("build %s/%s: %w", p.Name, ini.Version, err)
	}
	in.hook("built:" + p.Name)
	return nil
}

func (in *installer) readINI(src, label string) (*manifest.ProjectINI, error) {
	st, err := in.troot.Lstat(src + "/project.ini")
	if err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: no project.ini at the top of the source: %w", label, manifest.ErrVerify)
	}
	f, err := in.troot.Open(src + "/project.ini")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	defer f.Close()
	ini, err := manifest.ParseProjectINI(f, label+": project.ini")
	if err != nil {
		if !errors.Is(err, manifest.ErrVerify) {
			err = fmt.Errorf("%w: %w", manifest.ErrVerify, err)
		}
		return nil, err
	}
	return ini, nil
}

// checkNamedBlobs makes sure CycleCloud will find every blob project.ini
// names once the install is done: carried, required, or already staged.
func (in *installer) checkNamedBlobs() error {
	have := map[string]bool{}
	for _, bp := range in.blobs {
		have[bp.project+"/"+bp.item.Path] = true
	}
	var missing []string
	for _, pw := range in.projects {
		for _, b := range pw.iniBlobs {
			if have[pw.p.Name+"/"+b] {
				continue
			}
			if !manifest.ValidBlobName(b) {
				missing = append(missing, fmt.Sprintf("%s/%s names unusable blob %q", pw.p.Name, pw.plan.Version, b))
				continue
			}
			if in.proj != nil {
				if st, err := lstatAt(in.proj, pw.p.Name+"/blobs/"+b); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
					in.warn(fmt.Sprintf("%s/%s: blob %s is not in the bundle; using the one already staged (hash not checked)", pw.p.Name, pw.plan.Version, b))
					continue
				}
			}
			missing = append(missing, fmt.Sprintf("%s/blobs/%s", pw.p.Name, b))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("project.ini names blobs the bundle does not carry and staging does not hold: %s: %w", strings.Join(missing, ", "), manifest.ErrVerify)
	}
	return nil
}
