package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// limits are the physical limits of this machine, measured in the same run
// as the rows they bound: sequential write and read of the scratch disk
// and SHA-256 on one core, in bytes per second.
type limits struct {
	Write float64 `json:"disk_write_bytes_per_sec"`
	Read  float64 `json:"disk_read_bytes_per_sec"`
	SHA   float64 `json:"sha256_bytes_per_sec_one_core"`
	Note  string  `json:"note,omitempty"`
}

// measureLimits writes n bytes to a scratch file in dir and fsyncs it,
// drops the page cache (as root) and reads it back, and hashes 256 MiB in
// memory on one goroutine.
func measureLimits(ctx context.Context, dir string, n int64) (limits, error) {
	var l limits
	n = max(n, 64<<20)
	p := filepath.Join(dir, "limits.bin")
	defer os.Remove(p)
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(i*131 + i>>9)
	}
	f, err := os.Create(p)
	if err != nil {
		return l, err
	}
	start := time.Now()
	for w := int64(0); w < n; w += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			f.Close()
			return l, err
		}
		if _, err := f.Write(buf[:min(int64(len(buf)), n-w)]); err != nil {
			f.Close()
			return l, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return l, err
	}
	l.Write = float64(n) / time.Since(start).Seconds()
	f.Close()
	if !dropCaches() {
		l.Note = "not root: page cache not dropped, disk read is a cache read"
	}
	f, err = os.Open(p)
	if err != nil {
		return l, err
	}
	start = time.Now()
	var got int64
	for {
		k, err := f.Read(buf)
		got += int64(k)
		if err != nil {
			break
		}
	}
	l.Read = float64(got) / time.Since(start).Seconds()
	f.Close()

	h := sha256.New()
	const hashBytes = 256 << 20
	start = time.Now()
	for w := 0; w < hashBytes; w += len(buf) {
		h.Write(buf)
	}
	l.SHA = hashBytes / time.Since(start).Seconds()
	return l, nil
}

func (l limits) String() string {
	s := fmt.Sprintf("disk write %.0f MiB/s (fsynced), disk read %.0f MiB/s, SHA-256 %.0f MiB/s on one core",
		l.Write/(1<<20), l.Read/(1<<20), l.SHA/(1<<20))
	if l.Note != "" {
		s += " (" + l.Note + ")"
	}
	return s
}

// secs is how long n bytes take at rate bytes/s.
func secs(n int64, rate float64) float64 {
	if rate <= 0 {
		return 0
	}
	return float64(n) / rate
}
