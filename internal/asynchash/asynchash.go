// Package asynchash computes a SHA-256 on a goroutine of its own: Write
// copies the bytes and returns at once, so the goroutine that reads and
// writes a large file does not also spend a core hashing it.
package asynchash

import (
	"crypto/sha256"
	"hash"
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
