// Package update brings a CycleCloud server up to date from a published
// mirror: it reads the signed index the connected side's `ccmirror sync`
// wrote (manifest/index) from a Source (the sync output folder, carried on
// media or through a diode, or its publish container through an adapter),
// refuses an index older than one it accepted before, works out what the
// server's cloud.project records want exactly as `ccmirror plan` does
// (staging/plan), and downloads, verifies and installs each wanted bundle
// the index offers exactly as `ccmirror install` does (staging.Install).
package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/flock"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/index"
	"github.com/ccmirror/ccmirror/manifest/request"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/staging/plan"
)

// DefaultMaxAge is the index age past which Run warns that the mirror job
// may have stopped.
const DefaultMaxAge = 30 * 24 * time.Hour

// verifyRetryDelay is how long Run waits before reading the index again
// when its signature did not verify: the writer replaces index.json and
// then index.json.sig, so a reader in between sees a mismatched pair.
var verifyRetryDelay = 2 * time.Second

// Options says where to update from and how.
type Options struct {
	// Source is where the mirror's index and bundles are read.
	Source Source
	// Allowed are the keys trusted to sign the index and the bundles
	// (namespace "ccmirror", the allowed_signers install uses).
	Allowed *trust.AllowedSigners
	// Root is the CycleCloud installation folder; "" means
	// staging.DefaultRoot.
	Root string
	// StateDir is ccmirror's state folder; "" means staging.StateDir(Root).
	// It is checked with staging.CheckStateDir before anything in it is
	// trusted.
	StateDir string
	// CyclePath is the cycle_server command; "" means <Root>/cycle_server.
	CyclePath string
	// Timeout bounds cycle_server and each `cyclecloud project build`
	// (0: child.DefaultTimeout).
	Timeout time.Duration
	// AllVersions wants every project version CycleCloud knows, not only
	// the highest of each project.
	AllVersions bool
	// DryRun works out and returns the plan and changes nothing (no
	// sequence recorded, no download, no install).
	DryRun bool
	// MaxAge is the index age past which Run warns; 0 means DefaultMaxAge,
	// negative never warns.
	MaxAge time.Duration
	// Owner and Builder are passed to staging.Install ("" means its
	// defaults).
	Owner   string
	Builder string
	// LockWait is how long each install waits for the staging lock, as
	// staging.InstallOptions.LockWait.
	LockWait time.Duration
	// Log receives what happens; nil discards.
	Log *slog.Logger
	// Notice hears, in one line, of a wait for an install's staging lock;
	// nil: only logged.
	Notice func(line string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Report statuses.
const (
	// StatusUpToDate: every wanted version is staged; nothing was done.
	StatusUpToDate = "up_to_date"
	// StatusInstalled: every wanted version offered was installed.
	StatusInstalled = "installed"
	// StatusPlanned: a dry run found versions to install.
	StatusPlanned = "planned"
	// StatusIncomplete: some wanted versions are not in the index.
	StatusIncomplete = "incomplete"
	// StatusRefused: the index was refused (signature, rollback).
	StatusRefused = "refused"
	// StatusFailed: anything else went wrong.
	StatusFailed = "failed"
)

// Item actions.
const (
	ActionInstall   = "install"   // dry run: would install
	ActionInstalled = "installed" // installed by this run
	ActionFailed    = "failed"    // its download, check or install failed
)

// Report is what Run did, for people (WriteText) and monitoring (JSON).
type Report struct {
	Source      string     `json:"source"`
	Root        string     `json:"root"`
	DryRun      bool       `json:"dry_run"`
	AllVersions bool       `json:"all_versions"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	Index       *IndexInfo `json:"index,omitempty"`
	// Install are the wanted versions the index offers, oldest first, with
	// what happened to each.
	Install []Item `json:"install"`
	// Staged are the wanted versions already staged complete.
	Staged []Item `json:"staged"`
	// NotOffered are the wanted versions the index lacks.
	NotOffered []Item `json:"not_offered"`
	// Downloaded counts the bundle bytes received by this run.
	Downloaded int64     `json:"bytes_downloaded"`
	Warnings   []string  `json:"warnings"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// IndexInfo describes the index Run accepted.
type IndexInfo struct {
	Sequence int64 `json:"sequence"`
	// Previous is the sequence accepted before from the same key, nil
	// when the key is new here.
	Previous *int64    `json:"previous_sequence"`
	Updated  time.Time `json:"updated"`
	// Age is how old the index was when read, in seconds.
	Age       int64  `json:"age_seconds"`
	Signer    string `json:"signer"`
	Principal string `json:"principal"`
	SHA256    string `json:"sha256"`
	Bundles   int    `json:"bundles"`
	// Recorded is true when this run stored the sequence as accepted.
	Recorded bool `json:"recorded"`
}

// Item is one wanted project version.
type Item struct {
	Project string `json:"project"`
	Version string `json:"version"`
	// Reason is why it is wanted (request.ReasonMissing or
	// ReasonIncomplete), Detail what is wrong with an incomplete one.
	Reason     string `json:"reason,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Repository string `json:"repository,omitempty"`
	Tag        string `json:"tag,omitempty"`
	// File, Size, SHA256 and Revision are the bundle the index offers.
	File     string    `json:"file,omitempty"`
	Size     int64     `json:"size,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	Revision int       `json:"revision,omitempty"`
	Action   string    `json:"action,omitempty"`
	Transfer *Transfer `json:"transfer,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Run updates the staging tree under o.Root from o.Source:
//
//  1. takes update's own lock (another update running: ErrConflict);
//  2. reads index.json and index.json.sig and verifies the signature
//     before parsing anything (unsigned, tampered, untrusted: ErrVerify,
//     nothing written);
//  3. refuses an index whose sequence is lower than the one accepted
//     before from the same key, or equal with other content (ErrVerify,
//     naming both numbers; nothing written), warns when it is older than
//     MaxAge, and records the sequence as accepted (not in a dry run);
//  4. asks plan which versions the server wants and intersects them with
//     what the index offers;
//  5. for each offered version, oldest first: reads or downloads
//     (resumably) its bundle, checks its size and sha256 against the
//     index, and installs it with staging.Install under the staging lock.
//
// The sequence is recorded before installing: the index is authentic and
// newer whether or not its bundles install, and recording it at once
// leaves no window in which an older index could still be accepted.
// Versions already staged are left alone; a run with nothing new
// downloads nothing and changes nothing. Wanted versions the index lacks
// are listed and make the error match ErrUpstream (after the others were
// installed). The report is returned, as far as it got, with any error.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	u := &updater{o: o, log: o.Log, now: o.Now}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.o.MaxAge == 0 {
		u.o.MaxAge = DefaultMaxAge
	}
	rep = &Report{DryRun: o.DryRun, AllVersions: o.AllVersions, Install: []Item{}, Staged: []Item{},
		NotOffered: []Item{}, Warnings: []string{}, Started: u.now().UTC()}
	u.rep = rep
	defer func() {
		rep.Finished = u.now().UTC()
		if err != nil {
			rep.Error = err.Error()
			switch {
			case rep.Index == nil && errors.Is(err, errclass.ErrVerify):
				rep.Status = StatusRefused
			case rep.Status == "":
				rep.Status = StatusFailed
			}
		}
	}()
	if o.Source == nil {
		return rep, errors.New("update: no source")
	}
	rep.Source = o.Source.String()
	if o.Allowed == nil {
		return rep, fmt.Errorf("update: no allowed_signers to check the index against: %w", manifest.ErrVerify)
	}
	root := o.Root
	if root == "" {
		root = staging.DefaultRoot
	}
	if root, err = filepath.Abs(root); err != nil {
		return rep, fmt.Errorf("update: root %s: %w", o.Root, err)
	}
	u.root, rep.Root = root, root
	state := o.StateDir
	if state == "" {
		state = staging.StateDir(root)
	}
	u.o.StateDir, u.dir = state, updateDir(state)
	if err := staging.CheckRoot(root); err != nil {
		return rep, fmt.Errorf("update: %w", err)
	}
	ix, id, sum, err := u.readIndex(ctx)
	if err != nil {
		return rep, err
	}
	if !o.DryRun {
		lock, err := u.lock(ctx)
		if err != nil {
			return rep, err
		}
		defer lock.Release()
	}
	if err := u.accept(ix, id, sum); err != nil {
		return rep, err
	}
	if err := u.decide(ctx, ix); err != nil {
		return rep, err
	}
	if o.DryRun {
		for i := range rep.Install {
			rep.Install[i].Action = ActionInstall
		}
	} else {
		u.installAll(ctx, ix)
	}
	return rep, u.finish()
}

// updater carries one Run's state.
type updater struct {
	o    Options
	log  *slog.Logger
	now  func() time.Time
	rep  *Report
	root string
	// dir is update's own folder in the state folder.
	dir  string
	errs []error
}

// warn records a warning in the report (the caller shows it); the log
// gets it at Info level, so it is not printed twice.
func (u *updater) warn(msg string) {
	u.rep.Warnings = append(u.rep.Warnings, msg)
	u.log.Info("warning", "msg", msg)
}

// lock takes update's own lock, so two runs never share a download.
func (u *updater) lock(ctx context.Context) (*flock.Lock, error) {
	dir := u.dir
	if err := staging.CheckStateDir(u.o.StateDir, true); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("update: ccmirror state folder: %w", err)
	}
	l, err := flock.Acquire(ctx, filepath.Join(dir, LockName), flock.Holder{What: "updating from " + u.rep.Source}, flock.Options{Mode: 0o600})
	if err != nil {
		return nil, fmt.Errorf("update: another ccmirror update is running: %w", err)
	}
	return l, nil
}

// readIndex fetches, verifies and parses the index and returns it with
// its signer and the sha256 of its bytes. It writes nothing.
func (u *updater) readIndex(ctx context.Context) (*index.Index, *trust.Identity, string, error) {
	src := u.o.Source
	data, sig, err := fetchIndex(ctx, src)
	if err != nil {
		return nil, nil, "", err
	}
	ix, id, err := index.Open(data, sig, u.o.Allowed, u.now())
	if errors.Is(err, manifest.ErrVerify) {
		// The writer may be between replacing index.json and its
		// signature: read both once more after a moment.
		u.log.Info("index signature did not verify; reading the index again", "source", src.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, nil, "", fmt.Errorf("update: %w", ctx.Err())
		case <-time.After(verifyRetryDelay):
		}
		d2, s2, ferr := fetchIndex(ctx, src)
		if ferr != nil {
			return nil, nil, "", ferr
		}
		if !bytes.Equal(d2, data) || !bytes.Equal(s2, sig) {
			data, sig = d2, s2
			ix, id, err = index.Open(data, sig, u.o.Allowed, u.now())
		}
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("update: %s in %s refused; nothing was changed: %w", index.Name, src, err)
	}
	h := sha256.Sum256(data)
	return ix, id, hex.EncodeToString(h[:]), nil
}

// accept applies the rollback rule to a verified index (under update's
// lock unless dry run), warns about its age, and records its sequence.
func (u *updater) accept(ix *index.Index, id *trust.Identity, sum string) error {
	src := u.o.Source
	seqPath := filepath.Join(u.dir, SequencesName)
	seqs, err := loadSequences(seqPath)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	prev, err := seqs.check(id.Fingerprint, ix.Sequence, sum)
	now := u.now()
	info := &IndexInfo{Sequence: ix.Sequence, Updated: ix.Updated, Age: int64(now.Sub(ix.Updated) / time.Second),
		Signer: id.Fingerprint, Principal: id.Principal, SHA256: sum, Bundles: len(ix.Bundles)}
	if prev != nil {
		p := prev.Sequence
		info.Previous = &p
	}
	if err != nil {
		u.rep.Status = StatusRefused
		u.rep.Index = info
		return fmt.Errorf("update: %s in %s: %w", index.Name, src, err)
	}
	u.rep.Index = info
	u.log.Info("index verified", "source", src.String(), "sequence", ix.Sequence, "signer", id.Fingerprint, "bundles", len(ix.Bundles))
	if ix.Sequence == 0 {
		u.warn(fmt.Sprintf("%s in %s has no sequence number (written by an older ccmirror sync): it is accepted once, as sequence 0; upgrade ccmirror on the connected side", index.Name, src))
	}
	if age := now.Sub(ix.Updated); u.o.MaxAge > 0 && age > u.o.MaxAge {
		u.warn(fmt.Sprintf("%s in %s is %s old (written %s, more than --max-age %s): the mirror job may have stopped",
			index.Name, src, roundAge(age), ix.Updated.UTC().Format(time.RFC3339), roundAge(u.o.MaxAge)))
	} else if age < -time.Hour {
		u.warn(fmt.Sprintf("%s in %s was written %s in the future (%s): check the clocks of both sides", index.Name, src, roundAge(-age), ix.Updated.UTC().Format(time.RFC3339)))
	}
	if !u.o.DryRun && (prev == nil || prev.Sequence != ix.Sequence) {
		seqs.Keys[id.Fingerprint] = Accepted{Sequence: ix.Sequence, IndexSHA256: sum, Updated: ix.Updated.UTC(), Accepted: now.UTC(), Source: src.String()}
		if err := seqs.save(seqPath); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		info.Recorded = true
	}
	return nil
}

// roundAge renders a duration in days, hours or minutes.
func roundAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	}
}

// fetchIndex reads index.json and index.json.sig, each bounded. A missing
// index is an upstream problem; a missing signature an unsigned index.
func fetchIndex(ctx context.Context, src Source) (data, sig []byte, err error) {
	data, err = readObject(ctx, src, index.Name, index.MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("update: no %s in %s (is it the sync job's output folder or publish container?): %w", index.Name, src, errclass.ErrUpstream)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("update: %w", err)
	}
	sig, err = readObject(ctx, src, index.SigName, index.MaxSigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("update: %s in %s is unsigned (no %s); nothing was changed: %w", index.Name, src, index.SigName, manifest.ErrVerify)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("update: %w", err)
	}
	return data, sig, nil
}

// readObject reads a small object whole, refusing more than max bytes.
func readObject(ctx context.Context, src Source, name string, max int64) ([]byte, error) {
	rc, size, err := src.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > max {
		return nil, fmt.Errorf("%s in %s is %d bytes, more than the %d it may have: %w", name, src, size, max, manifest.ErrVerify)
	}
	b, err := io.ReadAll(io.LimitReader(ctxio.NewReader(ctx, rc), max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, src, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s in %s is more than the %d bytes it may have: %w", name, src, max, manifest.ErrVerify)
	}
	return b, nil
}

// decide asks plan what the server wants and splits it into what the
// index offers (to install, oldest first), what is staged and what is not
// offered.
func (u *updater) decide(ctx context.Context, ix *index.Index) error {
	_, prep, err := plan.Make(ctx, plan.Options{Root: u.root, StateDir: u.o.StateDir, CyclePath: u.o.CyclePath, Timeout: u.o.Timeout, AllVersions: u.o.AllVersions})
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	for _, w := range prep.Warnings {
		u.warn(w)
	}
	for _, s := range prep.Staged {
		u.rep.Staged = append(u.rep.Staged, Item{Project: s.Name, Version: s.Version})
	}
	offer := func(it Item) {
		e := ix.Offer(it.Project, it.Version)
		switch {
		case e == nil:
			u.rep.NotOffered = append(u.rep.NotOffered, it)
			return
		case it.Repository != "" && !strings.EqualFold(e.Repository, it.Repository):
			it.Detail = joinDetail(it.Detail, fmt.Sprintf("the index offers %s %s from %s, but CycleCloud's record names %s", it.Project, it.Version, e.Repository, it.Repository))
			u.rep.NotOffered = append(u.rep.NotOffered, it)
			return
		}
		it.File, it.Size, it.SHA256, it.Revision = e.File, e.Size, e.SHA256, e.Revision
		if it.Repository == "" {
			it.Repository, it.Tag = e.Repository, e.Tag
		}
		u.rep.Install = append(u.rep.Install, it)
	}
	for _, w := range prep.Wanted {
		offer(Item{Project: w.Name, Version: w.Version, Reason: w.Reason, Detail: w.Detail, Repository: w.Repository, Tag: w.Tag})
	}
	for _, r := range prep.Unresolvable {
		// The record's Url names no release, but the index is keyed by
		// project name and version, which may still be usable.
		if !manifest.ValidName(r.Name) || !manifest.ValidName(r.Version) {
			u.warn(fmt.Sprintf("not considered: a cloud.project record names no usable project version (name %q, version %q): %s", r.Name, r.Version, r.Problem))
			continue
		}
		offer(Item{Project: r.Name, Version: r.Version, Reason: request.ReasonMissing, Detail: "its record's Url names no release: " + r.Problem})
	}
	sort.SliceStable(u.rep.Install, func(i, j int) bool {
		a, b := u.rep.Install[i], u.rep.Install[j]
		if c := manifest.CompareVersions(a.Version, b.Version); a.Project == b.Project && c != 0 {
			return c < 0
		}
		return a.Project < b.Project
	})
	return nil
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// finish sets the status and returns the run's error.
func (u *updater) finish() error {
	rep := u.rep
	if len(rep.NotOffered) > 0 {
		var names []string
		for _, it := range rep.NotOffered {
			names = append(names, it.Project+" "+it.Version)
		}
		u.errs = append(u.errs, fmt.Errorf("update: %d wanted project %s not in the index of %s: %s: %w",
			len(names), plural(len(names), "version is", "versions are"), rep.Source, strings.Join(names, ", "), errclass.ErrUpstream))
	}
	err := errors.Join(u.errs...)
	switch {
	case err != nil && len(rep.NotOffered) > 0 && len(u.errs) == 1:
		rep.Status = StatusIncomplete
	case err != nil:
		rep.Status = StatusFailed
	case len(rep.Install) == 0:
		rep.Status = StatusUpToDate
	case rep.DryRun:
		rep.Status = StatusPlanned
	default:
		rep.Status = StatusInstalled
	}
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
