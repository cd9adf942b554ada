package staging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/regfile"
)

// maxRecord bounds an install record file.
const maxRecord = 64 << 20

// RecordSchema identifies the install record format.
const RecordSchema = "ccmirror.install-record/v1"

// Record is what one install wrote, kept as JSON in the state folder's records/
// so that Status can tell which bundle staged a version and which hash each
// blob should have.
type Record struct {
	Schema string    `json:"schema"`
	Time   time.Time `json:"time"`
	Bundle string    `json:"bundle"`
	// HeadSHA256 is the sha256 of the bundle's signed SHA256SUMS (since
	// records name bundles by it); BundleSHA256, of the whole file, is in
	// records of earlier versions.
	HeadSHA256   string          `json:"head_sha256,omitempty"`
	BundleSHA256 string          `json:"bundle_sha256,omitempty"`
	Signer       *SignerInfo     `json:"signer,omitempty"`
	Insecure     bool            `json:"insecure_skip_signature,omitempty"`
	Owner        Owner           `json:"owner"`
	Builder      string          `json:"builder"`
	Force        bool            `json:"force,omitempty"`
	PID          int             `json:"pid"`
	Projects     []RecordProject `json:"projects"`
	// Path is where the record was read from (not stored).
	Path string `json:"-"`
}

// RecordProject is one project version an install staged (or found
// already staged).
type RecordProject struct {
	Name          string     `json:"name"`
	Version       string     `json:"version"`
	BundleVersion string     `json:"bundle_version"`
	Tag           string     `json:"tag,omitempty"`
	Commit        string     `json:"commit,omitempty"`
	Repository    string     `json:"repository,omitempty"`
	Action        Action     `json:"action"`
	Blobs         []PlanItem `json:"blobs"`
	Files         []PlanItem `json:"files"`
}

// writeRecord writes the install record into records/ atomically
// (internal/atomicfile), journaled like every other change.
func (in *installer) writeRecord() error {
	rep := in.rep
	rec := Record{Schema: RecordSchema, Time: time.Now().UTC(), Bundle: rep.Bundle, HeadSHA256: rep.HeadSHA256,
		Signer: rep.Signer, Insecure: rep.Insecure, Owner: in.owner, Builder: in.builder, Force: in.o.Force, PID: os.Getpid()}
	for _, pw := range in.projects {
		rp := RecordProject{Name: pw.plan.Name, Version: pw.plan.Version, BundleVersion: pw.plan.BundleVersion,
			Tag: pw.plan.Tag, Commit: pw.plan.Commit, Repository: pw.plan.Repository, Action: pw.plan.Action, Blobs: pw.plan.Blobs}
		for _, it := range pw.plan.Files {
			if it.Action != ActionRemove && !(it.Action == ActionConflict && it.Reason == reasonNotInBundle) {
				rp.Files = append(rp.Files, it)
			}
		}
		rec.Projects = append(rec.Projects, rp)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := recordsDir(in.state)
	name := fmt.Sprintf("%s-%s.json", rec.Time.Format("20060102T150405.000000000Z"), short(rep.HeadSHA256))
	target := filepath.Join(dir, name)
	// atomicfile writes beside the target, fsyncs, renames and fsyncs the
	// folder; the journal learns the temporary file's inode first, so an
	// undo removes exactly this record.
	f, err := atomicfile.Create(target, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if err := in.journal.log(journalOp{Op: opAdd, Path: target, Tmp: f.Name(), Ino: inodeOf(f.Name())}); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	rep.Record = target
	return nil
}

// readRecords loads every install record of the state folder, oldest
// first. Files that cannot be read, or that are not regular files owned by
// root and writable by root only, are reported in bad and not trusted.
func readRecords(state string) (recs []Record, bad []string, err error) {
	dir := recordsDir(state)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := checkStateEntry(p, false); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		b, err := regfile.ReadFile(p, maxRecord, regfile.Options{NoFollow: true})
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		rec, err := parseRecord(b)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		rec.Path = p
		recs = append(recs, *rec)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	return recs, bad, nil
}

// parseRecord decodes one install record.
func parseRecord(b []byte) (*Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("not an install record: %v", err)
	}
	if rec.Schema != RecordSchema {
		return nil, fmt.Errorf("schema %q, want %q", rec.Schema, RecordSchema)
	}
	return &rec, nil
}
