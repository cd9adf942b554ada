package ctxio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := []byte(strings.Repeat("ccmirror", 100000))
	os.WriteFile(p, data, 0o644)
	sum := sha256.Sum256(data)
	got, n, err := HashFile(context.Background(), p)
	if err != nil || got != hex.EncodeToString(sum[:]) || n != int64(len(data)) {
		t.Errorf("HashFile = %s, %d, %v; want %x, %d", got, n, err, sum, len(data))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := HashFile(ctx, p); !errors.Is(err, context.Canceled) {
		t.Errorf("HashFile after cancel: %v, want context.Canceled", err)
	}
	if _, _, err := HashFile(context.Background(), p+"-missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("HashFile of a missing file: %v", err)
	}
}
