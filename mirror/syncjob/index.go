package syncjob

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/index"
	"github.com/ccmirror/ccmirror/mirror"
)

// Names of what the job keeps in its output folder.
const (
	// IndexSchema is the schema of index.json (see manifest/index).
	IndexSchema = index.Schema
	// IndexName is the index file.
	IndexName = index.Name
	// IndexSigName is the index's OpenSSH signature (namespace "ccmirror")
	// over the exact bytes of index.json.
	IndexSigName = index.SigName
	// legacyLockName is the lock file earlier versions kept in the
	// output folder (now LockPath); a run removes it.
	legacyLockName = ".ccmirror-sync.lock"
	// SequenceName records the highest index sequence the job ever wrote,
	// written before each index: when index.json is lost or moved away,
	// the next index still gets a number never used before.
	SequenceName = ".ccmirror-sync.sequence"
)

// Index is index.json, defined in manifest/index (the disconnected side
// reads it too).
type Index = index.Index

// Entry is one bundle in the index.
type Entry = index.Entry

// AssetPrint is what identifies one release asset's content.
type AssetPrint = index.AssetPrint

// AssetsOf returns the prints of a release's uploaded assets, sorted by
// name.
func AssetsOf(rel *mirror.Release) []AssetPrint {
	out := []AssetPrint{}
	for _, a := range rel.Assets {
		if a.State != "" && a.State != "uploaded" {
			continue
		}
		p := AssetPrint{Name: a.Name, Size: a.Size, Digest: strings.ToLower(a.Digest)}
		if p.Digest == "" {
			p.ID = a.ID
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// Fingerprint is index.Fingerprint: equal exactly when the release holds
// the same assets with the same content.
func Fingerprint(assets []AssetPrint) string { return index.Fingerprint(assets) }

// DiffAssets is index.DiffAssets: the names of the assets that differ.
func DiffAssets(old, cur []AssetPrint) []string { return index.DiffAssets(old, cur) }

// ParseIndex parses and checks index.json (index.Parse).
func ParseIndex(b []byte) (*Index, error) { return index.Parse(b) }

// writeIndex writes ix as the next index of the output folder dir: its
// sequence one above both ix's own and the number SequenceName records (so
// no number is used twice, even after index.json was lost or moved away),
// the time now, then index.json and index.json.sig, each atomically. The
// sequence file is written first: a crash after it burns a number, never
// reuses one. A damaged sequence file is reported to log and ix's own
// sequence used: the file is ahead of index.json only by numbers whose
// index was never written. ix is updated only when everything was written.
func writeIndex(dir string, ix *Index, signer manifest.Signer, now time.Time, log *slog.Logger) error {
	seqPath := filepath.Join(dir, SequenceName)
	seq := ix.Sequence
	if b, err := os.ReadFile(seqPath); err == nil {
		n, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil || n < 0 {
			log.Warn("the index sequence file is damaged; continuing from index.json's sequence", "file", seqPath, "sequence", ix.Sequence)
		} else if n > seq {
			seq = n
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("index sequence: %w", err)
	}
	seq++
	if err := atomicfile.WriteFile(seqPath, []byte(strconv.FormatInt(seq, 10)+"\n"), 0o644); err != nil {
		return fmt.Errorf("index sequence: %w", err)
	}
	next := *ix
	next.Schema = IndexSchema
	next.Sequence = seq
	next.Updated = now.UTC().Truncate(time.Second)
	next.Tool = "ccmirror " + mirror.Version
	b, err := next.Marshal()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	sig, err := signer.Sign(b)
	if err != nil {
		return fmt.Errorf("sign index: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, IndexName), b, 0o644); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, IndexSigName), sig, 0o644); err != nil {
		return err
	}
	*ix = next
	return nil
}

// BundleName is the file name of revision rev of a project version:
// "slurm-3.0.12.tar", then "slurm-3.0.12.r2.tar", "…r3.tar".
func BundleName(project, version string, rev int) string {
	if rev <= 1 {
		return project + "-" + version + ".tar"
	}
	return project + "-" + version + ".r" + strconv.Itoa(rev) + ".tar"
}
