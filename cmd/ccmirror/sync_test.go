package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestSyncJSONSequence: sync --json reports the index sequence, also on an
// idle run that writes nothing.
func TestSyncJSONSequence(t *testing.T) {
	w := newUpdateWorld(t, "", 0)
	w.sync("2.5.0")
	var s struct {
		NothingNew bool  `json:"nothing_new"`
		Sequence   int64 `json:"index_sequence"`
	}
	out := mustRunCLI(t, "sync", "--config", filepath.Join(w.dir, "mirror.yaml"), "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("sync --json: %v\n%s", err, out)
	}
	if !s.NothingNew || s.Sequence != 1 {
		t.Errorf("idle sync --json: nothing_new %v, index_sequence %d; want true, 1", s.NothingNew, s.Sequence)
	}
}
