package staging

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
)

// asyncHash reads r in large chunks and hands out its bytes while another
// goroutine computes their SHA-256: the bundle's own hash costs no time on
// the goroutine that checks each payload's hash and writes it, so on two
// cores the two hashes of every byte run side by side.
type asyncHash struct {
	r    io.Reader
	h    hash.Hash
	work chan []byte // chunks to hash, in order
	free chan []byte // chunks the hasher is done with
	done chan struct{}
	once sync.Once

	cur []byte // chunk being handed out
	off int
	err error
}

const (
	asyncChunk  = 512 << 10
	asyncChunks = 4
)

func newAsyncHash(r io.Reader) *asyncHash {
	a := &asyncHash{
		r:    r,
		h:    sha256.New(),
		work: make(chan []byte, asyncChunks),
		free: make(chan []byte, asyncChunks),
		done: make(chan struct{}),
	}
	for range asyncChunks {
		a.free <- make([]byte, asyncChunk)
	}
	go func() {
		defer close(a.done)
		for b := range a.work {
			a.h.Write(b)
			a.free <- b[:cap(b)]
		}
	}()
	return a
}

func (a *asyncHash) Read(p []byte) (int, error) {
	if a.off == len(a.cur) {
		if a.err != nil {
			return 0, a.err
		}
		// The chunk handed out last may still be hashed; a chunk is
		// reused only once the hasher gave it back and it is fully read.
		buf := <-a.free
		n, err := io.ReadFull(a.r, buf)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		a.err = err
		a.cur, a.off = buf[:n], 0
		if n == 0 {
			a.free <- buf
			return 0, a.err
		}
		a.work <- a.cur
	}
	k := copy(p, a.cur[a.off:])
	a.off += k
	return k, nil
}

// stop ends the hashing goroutine; the reader must not be used after.
func (a *asyncHash) stop() {
	a.once.Do(func() { close(a.work) })
	<-a.done
}

// sum reads what is left of r and returns the hex SHA-256 of all of it.
func (a *asyncHash) sum() (string, error) {
	if _, err := io.Copy(io.Discard, a); err != nil {
		a.stop()
		return "", err
	}
	a.stop()
	return hex.EncodeToString(a.h.Sum(nil)), nil
}

// bundleBody is the stream Verify reads: it hands out the bundle's bytes
// and gives the whole bundle's SHA-256 once drained.
type bundleBody interface {
	io.Reader
	// sum reads what is left and returns the hex SHA-256 of all of it.
	sum() (string, error)
}

// knownSum is a stream that knows its own SHA-256 (a split bundle's
// reader, see VerifyOptions.BundleSHA256): nothing is hashed here.
type knownSum struct {
	r  io.Reader
	of func() (string, error) // the stream's own sum, once drained
}

func (k *knownSum) Read(p []byte) (int, error) { return k.r.Read(p) }

func (k *knownSum) sum() (string, error) {
	if _, err := io.Copy(io.Discard, k.r); err != nil {
		return "", err
	}
	return k.of()
}
