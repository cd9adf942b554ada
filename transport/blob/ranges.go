package blob

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/diskhint"
	"github.com/ccmirror/ccmirror/manifest"
)

// DefaultPullConcurrency is the number of ranges Pull downloads at once
// when Options.Concurrency is 0.
const DefaultPullConcurrency = 8

// pullConcurrency is Options.Concurrency for Pull: DefaultPullConcurrency
// when 0.
func (o Options) pullConcurrency() int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return DefaultPullConcurrency
}

// readBuf is the buffer each range worker reads the network into;
// minWindow is the smallest write window (fetch.window), well above it.
const (
	readBuf   = 256 << 10
	minWindow = 4 * readBuf
)

// maxPullRange bounds the ranges Pull asks for when Options.BlockSize is 0.
const maxPullRange = 4 * DefaultBlockSize

// hashChunk is how much the in-order hasher reads back at a time.
const hashChunk = 1 << 20

// rangeJob is one range of the blob: bytes [off, off+n).
type rangeJob struct {
	off, n  int64
	written atomic.Int64 // bytes of it written to the file so far, in order
}

// fetch is one Pull's download of bytes [from, size) into f as ranges of
// Options.BlockSize, Options.Concurrency at once, each written at its
// offset, while the hasher hashes the file's bytes from 0 in order as
// they become contiguous.
type fetch struct {
	bc    *blob.Client
	etag  azcore.ETag
	f     *os.File
	from  int64 // bytes of f already there (a resumed partial)
	size  int64
	opts  Options
	jobs  []*rangeJob
	moved chan struct{} // poked when bytes are written (tell)
	// toldHasher is the contiguous size the hasher was last poked at.
	toldHasher atomic.Int64

	sh, mh hash.Hash // sh nil when Check hashes; mh nil when not wanted

	// With Options.Check: whether it must hash every byte, the pipe it
	// reads and what it returned.
	wantSum   bool
	pw        *io.PipeWriter
	checkDone chan struct{}
	checked   Checked
	checkErr  error

	// hashed is how many bytes from the file's start the hasher has
	// consumed; ahead is closed (and replaced) each time it moves, waking
	// workers that wait for it (window).
	hashed  atomic.Int64
	aheadMu sync.Mutex
	ahead   chan struct{}
	window  int64

	downloaded atomic.Int64
	progMu     sync.Mutex
	told       int64 // the last contiguous size given to Progress
}

func newFetch(bc *blob.Client, etag azcore.ETag, f *os.File, from, size int64, md5Too bool, opts Options) *fetch {
	d := &fetch{bc: bc, etag: etag, f: f, from: from, size: size, opts: opts,
		moved: make(chan struct{}, 1), ahead: make(chan struct{})}
	if opts.Check == nil {
		d.sh = sha256.New()
	}
	if md5Too {
		d.mh = md5.New()
	}
	rs := opts.blockSize()
	if opts.BlockSize <= 0 {
		// One range per worker when that is larger than a block (up to
		// maxPullRange): each request costs the service a fixed amount,
		// and fewer of them is what an 8-way ranged download does.
		conc := int64(opts.pullConcurrency())
		rs = min(max(rs, (size-from+conc-1)/conc), maxPullRange)
	}
	// Writes may run this far past what the hasher has consumed: a
	// quarter of the ranges in flight, at least two ranges and more than a
	// read buffer (the range at the hash position can always write). That
	// bounds what is left to hash when the last byte arrives, and keeps
	// the bytes to read back in the page cache.
	d.window = max(2*rs, int64(opts.pullConcurrency())*rs/4, minWindow)
	for off := from; off < size; off += rs {
		d.jobs = append(d.jobs, &rangeJob{off: off, n: min(rs, size-off)})
	}
	return d
}

// contiguous returns how many bytes from the file's start are written.
func (d *fetch) contiguous() int64 {
	end := d.from
	for _, j := range d.jobs {
		w := j.written.Load()
		end += w
		if w < j.n {
			break
		}
	}
	return end
}

// run downloads every range and hashes the whole file. On failure it
// returns the first error; contiguous() then says how much of the file
// can be kept for a resume.
func (d *fetch) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	next := make(chan *rangeJob)
	workers := min(d.opts.pullConcurrency(), max(len(d.jobs), 1))
	var first error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() { first = err })
		cancel(err)
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, readBuf)
			for j := range next {
				if err := d.get(ctx, j, buf); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	if d.opts.Check != nil {
		d.startCheck()
	}
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		err := d.hash(ctx)
		if d.pw != nil {
			if err != nil {
				d.pw.CloseWithError(err)
			} else {
				d.pw.Close()
			}
			<-d.checkDone
			// The check failing on its own (not told the hasher's error
			// through the pipe) is the failure to report.
			if d.checkErr != nil && (err == nil || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, d.checkErr)) {
				err = &CheckError{Err: d.checkErr}
			}
		}
		if err != nil {
			fail(err)
		}
	}()
	go func() {
		defer close(next)
		for _, j := range d.jobs {
			select {
			case next <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	d.poke()
	<-hashed
	return first
}

// startCheck runs Options.Check on a pipe the hasher feeds.
func (d *fetch) startCheck() {
	pr, pw := io.Pipe()
	d.pw, d.checkDone = pw, make(chan struct{})
	go func() {
		defer close(d.checkDone)
		c, err := d.opts.Check(pr, d.wantSum)
		if err == nil {
			if n, _ := io.Copy(io.Discard, pr); n > 0 {
				err = fmt.Errorf("the check stopped %d bytes before the end of the blob", n)
			}
		}
		if err != nil {
			pr.CloseWithError(err)
		}
		d.checked, d.checkErr = c, err
	}()
}

// sum returns the hex sha256 of the whole file: the hasher's, or what
// Check returned, or (Check returned none) a hash of the file read again.
func (d *fetch) sum(ctx context.Context) (string, error) {
	if d.sh != nil {
		return hex.EncodeToString(d.sh.Sum(nil)), nil
	}
	if d.checked.SHA256 != "" {
		return d.checked.SHA256, nil
	}
	sum, _, err := ctxio.HashFile(ctx, d.f.Name())
	return sum, err
}

func (d *fetch) poke() {
	select {
	case d.moved <- struct{}{}:
	default:
	}
}

// get downloads one range, conditional on the ETag, resuming a broken
// stream through the SDK's retry reader.
func (d *fetch) get(ctx context.Context, j *rangeJob, buf []byte) error {
	resp, err := d.bc.DownloadStream(ctx, &blob.DownloadStreamOptions{
		Range: blob.HTTPRange{Offset: j.off, Count: j.n},
		AccessConditions: &blob.AccessConditions{
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &d.etag},
		},
	})
	if err != nil {
		return err
	}
	body := retryBody(ctx, &resp, d.opts)
	defer body.Close()
	r := ctxio.NewReader(ctx, io.LimitReader(body, j.n+1))
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			w := j.written.Load()
			if w+int64(n) > j.n {
				return fmt.Errorf("range %d-%d: the service sent more than %d bytes: %w", j.off, j.off+j.n-1, j.n, manifest.ErrVerify)
			}
			if err := d.waitWindow(ctx, j.off+w+int64(n)); err != nil {
				return err
			}
			if _, err := d.f.WriteAt(buf[:n], j.off+w); err != nil {
				return err
			}
			j.written.Store(w + int64(n))
			d.progress(int64(n))
			d.tell(false)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break // a short range is told below
		}
		if rerr != nil {
			return rerr
		}
	}
	if w := j.written.Load(); w < j.n {
		return &remoteError{msg: fmt.Sprintf("range %d-%d: stream ended after %d of %d bytes", j.off, j.off+j.n-1, w, j.n), cause: io.ErrUnexpectedEOF}
	}
	d.tell(true)
	diskhint.StartWriteback(d.f, j.off, j.n)
	return nil
}

// tell wakes the hasher when what it can read grew by a hashChunk since
// it was last woken, or (end) a range is complete: not on every network
// read, each wake-up costs a context switch. A worker about to wait for
// the window wakes it too (waitWindow), so it never waits on bytes the
// hasher was not told of.
func (d *fetch) tell(end bool) {
	c := d.contiguous()
	if end || c-d.toldHasher.Load() >= hashChunk {
		d.toldHasher.Store(c)
		d.poke()
	}
}

// waitWindow blocks until bytes up to end may be written: end is within
// the window past what the hasher has consumed.
func (d *fetch) waitWindow(ctx context.Context, end int64) error {
	for end > d.hashed.Load()+d.window {
		d.aheadMu.Lock()
		ch := d.ahead
		d.aheadMu.Unlock()
		if end <= d.hashed.Load()+d.window {
			return nil
		}
		d.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// advance records that the hasher has consumed the file up to done and
// wakes the workers waiting for the window to move.
func (d *fetch) advance(done int64) {
	d.hashed.Store(done)
	d.aheadMu.Lock()
	close(d.ahead)
	d.ahead = make(chan struct{})
	d.aheadMu.Unlock()
}

// progress counts n bytes received and tells Options.Progress how many
// bytes from the start are in the file: what a resume would keep.
func (d *fetch) progress(n int64) {
	d.downloaded.Add(n)
	if d.opts.Progress != nil {
		d.progMu.Lock()
		if c := d.contiguous(); c > d.told {
			d.told = c
			d.opts.Progress(c, d.size)
		}
		d.progMu.Unlock()
	}
}

// hash reads the file back from its start, in order, as far as it is
// written contiguously (from the page cache, just written), until all of
// it is hashed.
func (d *fetch) hash(ctx context.Context) error {
	buf := make([]byte, hashChunk)
	var done int64
	for done < d.size {
		avail := d.contiguous()
		if avail == done {
			select {
			case <-d.moved:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for done < avail {
			n := int(min(int64(len(buf)), avail-done))
			if _, err := d.f.ReadAt(buf[:n], done); err != nil {
				return fmt.Errorf("read back %s: %w", d.f.Name(), err)
			}
			if d.sh != nil {
				d.sh.Write(buf[:n])
			}
			if d.pw != nil {
				if _, err := d.pw.Write(buf[:n]); err != nil {
					return err
				}
			}
			if d.mh != nil {
				d.mh.Write(buf[:n])
			}
			done += int64(n)
			d.advance(done)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}
