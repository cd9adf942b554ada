package mirror

import (
	"io"
	"os"
	"sync"

	"github.com/ccmirror/ccmirror/internal/diskhint"
)

// teeSink mirrors one download into its region of the bundle. Writes to
// the cache file and to the bundle happen under one lock, so a sink
// attached while the download runs copies what the cache file holds and
// then follows it. hw says how many leading bytes of the cache file the
// region holds (downloads write sequentially: a write at pos leaves the
// file pos+len bytes long).
type teeSink struct {
	mu     sync.Mutex
	src    *os.File // the cache file, while the download runs
	out    *os.File // the bundle, once attached
	base   int64
	hw     int64
	kicked int64
	err    error
}

// open is called when the download has opened its cache file, which holds
// off bytes already (a resumed download).
func (s *teeSink) open(f *os.File, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = f
	if s.out != nil && s.err == nil {
		s.hw = 0
		s.copyPrefix(off)
	}
}

// closeSrc is called when the download no longer writes its cache file.
func (s *teeSink) closeSrc() {
	s.mu.Lock()
	s.src = nil
	s.mu.Unlock()
}

// attach starts mirroring into out at base.
func (s *teeSink) attach(out *os.File, base int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out, s.base = out, base
	if s.src != nil {
		st, err := s.src.Stat()
		if err != nil {
			s.err = err
			return
		}
		s.copyPrefix(st.Size())
	}
}

// copyPrefix copies the first n bytes of the cache file into the region.
func (s *teeSink) copyPrefix(n int64) {
	if n == 0 {
		return
	}
	k, err := io.Copy(io.NewOffsetWriter(s.out, s.base), io.NewSectionReader(s.src, 0, n))
	if err != nil {
		s.err = err
		return
	}
	s.hw = k
}

// write writes p to the cache file f at its current offset pos and
// mirrors it into the bundle. Only the cache write's error is returned: a
// region that could not be mirrored is copied from the cache later.
func (s *teeSink) write(f *os.File, p []byte, pos int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := f.Write(p)
	if s.out == nil || s.err != nil || n == 0 {
		return n, err
	}
	if pos > s.hw {
		return n, err // a gap: not mirrored, copied later
	}
	if _, werr := s.out.WriteAt(p[:n], s.base+pos); werr != nil {
		s.err = werr
		return n, err
	}
	s.hw = pos + int64(n)
	if s.hw < s.kicked {
		s.kicked = 0
	}
	if s.hw-s.kicked >= writebackChunk {
		diskhint.StartWriteback(s.out, s.base+s.kicked, s.hw-s.kicked)
		s.kicked = s.hw
	}
	return n, err
}

// holds reports whether the region holds the whole file of size bytes;
// when it does, the bytes not yet handed to writeback (less than
// writebackChunk: all of a small file) are handed over now, so the fsync
// that ends the bundle does not write them all at once.
func (s *teeSink) holds(out *os.File, base, size int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != out || s.base != base || s.err != nil || s.hw != size {
		return false
	}
	if s.hw > s.kicked {
		diskhint.StartWriteback(s.out, s.base+s.kicked, s.hw-s.kicked)
		s.kicked = s.hw
	}
	return true
}
