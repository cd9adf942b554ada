package update

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/staging"
)

// Names under staging.StateDir(root).
const (
	// Dir is update's own folder in the state folder.
	Dir = "update"
	// SequencesName is the file, in Dir, holding the highest index
	// sequence accepted per signing key.
	SequencesName = "sequences.json"
	// DownloadsDir, in Dir, holds bundles being downloaded.
	DownloadsDir = "downloads"
	// LockName, in Dir, is the lock one update run holds.
	LockName = "lock"
	// sequencesSchema is the schema of SequencesName.
	sequencesSchema = "ccmirror.update-sequences/v1"
	// maxSequencesSize bounds SequencesName (a key's record is ~200 bytes).
	maxSequencesSize = 1 << 20
)

// updateDir is update's folder in the state folder state.
func updateDir(state string) string { return filepath.Join(state, Dir) }

// stateDir is update's folder for a staging root with the default state
// folder.
func stateDir(root string) string { return updateDir(staging.StateDir(root)) }

// SequencesPath is the file recording the accepted index sequences of a
// staging root.
func SequencesPath(root string) string { return filepath.Join(stateDir(root), SequencesName) }

// Accepted is what update remembers of the newest index it accepted from
// one signing key.
type Accepted struct {
	// Sequence is the index's sequence.
	Sequence int64 `json:"sequence"`
	// IndexSHA256 is the sha256 of that index.json: an index with the same
	// sequence must be the same index.
	IndexSHA256 string `json:"index_sha256"`
	// Updated is the index's own time; Accepted when update accepted it
	// and Source where from.
	Updated  time.Time `json:"updated"`
	Accepted time.Time `json:"accepted"`
	Source   string    `json:"source"`
}

// sequences is the SequencesName file: per key fingerprint ("SHA256:…").
type sequences struct {
	Schema string              `json:"schema"`
	Keys   map[string]Accepted `json:"keys"`
}

// loadSequences reads the accepted sequences; a missing file is none. A
// damaged file fails closed: without it, a replayed old index could not be
// told from a new one.
func loadSequences(path string) (*sequences, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &sequences{Schema: sequencesSchema, Keys: map[string]Accepted{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accepted index sequences: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSequencesSize+1))
	if err != nil {
		return nil, fmt.Errorf("accepted index sequences %s: %w", path, err)
	}
	damaged := func(why string) error {
		return fmt.Errorf("accepted index sequences %s is damaged (%s); it guards against replayed old indexes, so update stops: restore it, or remove it to accept the next index as if first seen", path, why)
	}
	if len(b) > maxSequencesSize {
		return nil, damaged(fmt.Sprintf("more than %d bytes", maxSequencesSize))
	}
	var s sequences
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, damaged(err.Error())
	}
	if s.Schema != sequencesSchema {
		return nil, damaged(fmt.Sprintf("schema %q", s.Schema))
	}
	if s.Keys == nil {
		s.Keys = map[string]Accepted{}
	}
	for k, a := range s.Keys {
		if !strings.HasPrefix(k, "SHA256:") || a.Sequence < 0 || !manifest.ValidHash(a.IndexSHA256) {
			return nil, damaged("bad record for key " + k)
		}
	}
	return &s, nil
}

// save writes the file atomically, readable by root only.
func (s *sequences) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("accepted index sequences: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("accepted index sequences: %w", err)
	}
	return nil
}

// check refuses an index from key with sequence seq and content hash sum
// when it is older than the newest accepted from that key, or has the same
// sequence but other content. It returns the previous record, if any.
func (s *sequences) check(key string, seq int64, sum string) (*Accepted, error) {
	prev, ok := s.Keys[key]
	if !ok {
		return nil, nil
	}
	switch {
	case seq < prev.Sequence:
		return &prev, fmt.Errorf("index sequence %d is older than sequence %d, accepted from key %s on %s: a replayed old index (stale media or a stale mirror) is refused; nothing was changed: %w",
			seq, prev.Sequence, key, prev.Accepted.UTC().Format(time.RFC3339), manifest.ErrVerify)
	case seq == prev.Sequence && sum != prev.IndexSHA256:
		return &prev, fmt.Errorf("index sequence %d was accepted from key %s before with other content (index sha256 %s, now %s): a writer never reuses a number, so this index is refused; nothing was changed: %w",
			seq, key, short(prev.IndexSHA256), short(sum), manifest.ErrVerify)
	}
	return &prev, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
