package githubtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
)

// genBlock is the unit of the deterministic content generator. Each block
// is produced by its own ChaCha8 stream, so any offset can be served
// without generating what comes before it.
const genBlock = 64 << 10

// contentSeed keys the generator by repository and asset name only, so the
// same asset name on two releases of a repository has the same bytes.
func contentSeed(repo, asset string) [32]byte {
	return sha256.Sum256([]byte("ccmirror githubtest asset\x00" + repo + "\x00" + asset))
}

// genReader is an io.ReadSeeker over size bytes of generated content. It
// holds one block in memory whatever the size.
type genReader struct {
	seed [32]byte
	size int64
	off  int64
	blk  int64 // index of the block in buf, -1 when none
	buf  []byte
	c    rand.ChaCha8
}

func newGenReader(seed [32]byte, size int64) *genReader {
	return &genReader{seed: seed, size: size, blk: -1}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	bi := g.off / genBlock
	if bi != g.blk {
		if g.buf == nil {
			g.buf = make([]byte, genBlock)
		}
		s := g.seed
		binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^uint64(bi))
		g.c.Seed(s)
		_, _ = g.c.Read(g.buf)
		g.blk = bi
	}
	in := g.off - bi*genBlock
	n := int64(len(g.buf)) - in
	if rest := g.size - g.off; n > rest {
		n = rest
	}
	if int64(len(p)) < n {
		n = int64(len(p))
	}
	copy(p, g.buf[in:in+n])
	g.off += n
	return int(n), nil
}

func (g *genReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = g.off + offset
	case io.SeekEnd:
		abs = g.size + offset
	default:
		return 0, errors.New("githubtest: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("githubtest: negative position")
	}
	g.off = abs
	return abs, nil
}

// digestKey names one generated content: the digest depends on the size
// too, since SizeFor may give one asset name different sizes per tag.
type digestKey struct {
	seed [32]byte
	size int64
}

type digestEntry struct {
	once sync.Once
	sum  string
}

// digestCache computes the sha256 of generated content at most once per
// (content, size), streaming, and keeps only the hex digest.
type digestCache struct {
	mu sync.Mutex
	m  map[digestKey]*digestEntry
}

func (d *digestCache) sum(seed [32]byte, size int64) string {
	k := digestKey{seed, size}
	d.mu.Lock()
	if d.m == nil {
		d.m = map[digestKey]*digestEntry{}
	}
	e := d.m[k]
	if e == nil {
		e = &digestEntry{}
		d.m[k] = e
	}
	d.mu.Unlock()
	e.once.Do(func() {
		h := sha256.New()
		_, _ = io.Copy(h, newGenReader(seed, size))
		e.sum = hex.EncodeToString(h.Sum(nil))
	})
	return e.sum
}

// open returns the content of an asset from its start.
func (a *asset) open() io.ReadSeeker {
	if a.content != nil {
		return bytes.NewReader(a.content)
	}
	return newGenReader(a.seed, a.size)
}
