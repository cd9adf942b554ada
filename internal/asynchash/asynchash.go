// Package asynchash computes a SHA-256 on a goroutine of its own, so the
// goroutine that reads and writes a large stream does not also spend a
// core hashing it: a Hasher is written to (it copies the bytes), a Reader
// reads ahead in chunks and hashes those (no copy).
package asynchash

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
)

// chunk is how many bytes are handed to the hashing goroutine at a time;
// chunks is how many may wait for it (they bound the memory: 4 MiB).
const (
	chunk  = 1 << 20
	chunks = 4
)

// pool keeps chunks between Hashers: one per large file would otherwise
// allocate (and zero, and collect) megabytes each.
var pool = sync.Pool{New: func() any { b := make([]byte, 0, chunk); return &b }}

// Hasher is a SHA-256 whose hashing runs on another goroutine. Its zero
// value is not usable: call New. Sum must be called once, at the end: it
// waits for the hashing goroutine, which then exits.
type Hasher struct {
	h    hash.Hash
	cur  []byte
	work chan []byte
	free chan []byte
	made int // chunks taken from the pool, at most chunks
	done chan struct{}
}

// New starts a Hasher's goroutine.
func New() *Hasher {
	a := &Hasher{
		h:    sha256.New(),
		work: make(chan []byte, chunks),
		free: make(chan []byte, chunks),
		done: make(chan struct{}),
	}
	a.cur = a.chunk()
	go func() {
		defer close(a.done)
		for b := range a.work {
			a.h.Write(b)
			a.free <- b[:0]
		}
	}()
	return a
}

// Write copies p to be hashed; it blocks only when the hashing goroutine
// is chunks behind. It never fails.
func (a *Hasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(a.cur[len(a.cur):cap(a.cur)], p)
		a.cur = a.cur[:len(a.cur)+k]
		p = p[k:]
		if len(a.cur) == cap(a.cur) {
			a.work <- a.cur
			a.cur = a.chunk()
		}
	}
	return n, nil
}

// chunk returns an empty chunk: one the goroutine is done with, or a new
// one from the pool while fewer than chunks are in use.
func (a *Hasher) chunk() []byte {
	if a.made < chunks {
		select {
		case b := <-a.free:
			return b
		default:
		}
		a.made++
		return (*pool.Get().(*[]byte))[:0]
	}
	return <-a.free
}

// release waits for the goroutine and returns every chunk to the pool.
func (a *Hasher) release() {
	<-a.done
	if a.cur != nil {
		a.made-- // a.cur goes back below
		b := a.cur[:0]
		pool.Put(&b)
		a.cur = nil
	}
	for ; a.made > 0; a.made-- {
		b := <-a.free
		pool.Put(&b)
	}
}

// Sum waits until every byte written is hashed, stops the goroutine and
// returns the SHA-256 appended to b.
func (a *Hasher) Sum(b []byte) []byte {
	if len(a.cur) > 0 {
		a.work <- a.cur
		a.cur = nil
	}
	close(a.work)
	a.release()
	return a.h.Sum(b)
}

// Stop ends the goroutine without a sum (the bytes are not wanted).
func (a *Hasher) Stop() {
	close(a.work)
	a.release()
}

// Reader reads r in large chunks and hands out its bytes while its
// goroutine computes their SHA-256. A chunk is reused only once the
// hasher gave it back and it is fully read.
type Reader struct {
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

// readChunk and readChunks size a Reader's chunks (2 MiB in all).
const (
	readChunk  = 512 << 10
	readChunks = 4
)

// NewReader starts hashing what is read from r. Call Sum at the end, or
// Stop when abandoning it.
func NewReader(r io.Reader) *Reader {
	a := &Reader{
		r:    r,
		h:    sha256.New(),
		work: make(chan []byte, readChunks),
		free: make(chan []byte, readChunks),
		done: make(chan struct{}),
	}
	for range readChunks {
		a.free <- make([]byte, readChunk)
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

// Read hands out r's bytes; r's error comes once they are all out.
func (a *Reader) Read(p []byte) (int, error) {
	if a.off == len(a.cur) {
		if a.err != nil {
			return 0, a.err
		}
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

// Stop ends the hashing goroutine; the Reader must not be used after.
func (a *Reader) Stop() {
	a.once.Do(func() { close(a.work) })
	<-a.done
}

// Sum reads what is left of r, stops, and returns the hex SHA-256 of all
// of it.
func (a *Reader) Sum() (string, error) {
	_, err := io.Copy(io.Discard, a)
	a.Stop()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(a.h.Sum(nil)), nil
}
