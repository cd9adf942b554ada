package staging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ccmirror/ccmirror/internal/beneath"
	"github.com/ccmirror/ccmirror/internal/ctxio"

	"github.com/ccmirror/ccmirror/manifest"
)

// InstallOptions controls Install.
type InstallOptions struct {
	Root    string // default DefaultRoot
	Owner   string // USER:GROUP, default DefaultOwner; numeric ids accepted
	Builder string // auto (default), cyclecloud or native
	DryRun  bool   // compute and return the plan, change nothing
	Force   bool   // replace staged content that differs
	Verify  VerifyOptions
	Log     *slog.Logger // nil: no logging
	// Notice hears, in one line naming the holder's pid, when the install
	// has to wait for another's lock; nil: only logged.
	Notice func(line string)
	// LockWait is how long to wait for another install's lock; 0 means
	// DefaultLockWait, negative means fail at once.
	LockWait time.Duration
	// StateDir is where ccmirror keeps its lock, journals, temporary
	// folders and install records; "" means StateDir(Root). It must be
	// writable by root only (CheckStateDir), and on the staging filesystem.
	StateDir string
	// BuildTimeout bounds each `cyclecloud project build`; 0 means
	// child.DefaultTimeout.
	BuildTimeout time.Duration
}

// switches are the test-only knobs of one install. Install uses the zero
// value; tests pass theirs to install, so tests with different switches
// can run in parallel.
type switches struct {
	// hook, when set, is called at named points of an install ("locked",
	// "payload:<path>", "built:<name>", "blob:<name>/<blob>",
	// "version:<name>/<version>", "recorded", "committed", ...) and with
	// "bytes:<n>" as payload bytes are written.
	hook func(point string)
	// noExchange makes placement use the rename-aside fallback instead of
	// renameat2(RENAME_EXCHANGE).
	noExchange bool
	// noSync skips fsync and syncfs: tests that kill installs with SIGKILL
	// lose nothing the kernel already has, so they stay fast on slow disks.
	noSync bool
}

func (in *installer) hook(point string) {
	if in.sw.hook != nil {
		in.sw.hook(point)
	}
}

// Install verifies a bundle and stages every project version it carries
// under R/work/staging/projects/, in one streaming pass over r:
//
//   - checks the state folder (CheckStateDir) and takes the staging lock
//     there;
//   - checks the signature and preflights free space, owner, writability,
//     already staged blobs (conflicts) and required blobs before writing;
//   - streams every payload file into a private temporary folder on the
//     staging filesystem, hashing as it writes;
//   - unpacks each source archive safely and builds the version folder
//     (named by project.ini's version);
//   - places blobs first, each by atomic rename, then each version folder by
//     rename, under a journal that undoes everything on failure or, after a
//     crash, at the next install;
//   - writes an install record in the state folder's records/.
//
// Errors wrap manifest.ErrVerify (bad bundle; nothing written) or
// ErrConflict (staged content differs without Force, or the lock is held).
// The report is returned, as far as it got, even with an error.
func Install(ctx context.Context, r io.Reader, bundleName string, o InstallOptions) (*InstallReport, error) {
	return install(ctx, r, bundleName, o, switches{})
}

// install is Install with test switches.
func install(ctx context.Context, r io.Reader, bundleName string, o InstallOptions, sw switches) (rep *InstallReport, err error) {
	in := &installer{o: o, log: o.Log, sw: sw, durable: durability{off: sw.noSync}}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	rep = &InstallReport{Bundle: bundleName, DryRun: o.DryRun, Force: o.Force, Counts: map[Action]int{}, Projects: []ProjectPlan{}, Started: time.Now().UTC()}
	in.rep = rep
	defer func() {
		rep.Finished = time.Now().UTC()
		err = localized(err, in.tmp)
		switch {
		case err == nil:
		case errors.Is(err, ErrConflict):
			rep.Status, rep.Error = StatusConflict, err.Error()
		default:
			rep.Status, rep.Error = StatusFailed, err.Error()
		}
	}()
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return rep, fmt.Errorf("root %s: %w", o.Root, err)
	}
	in.root = root
	rep.Root = root
	if err := CheckRoot(root); err != nil {
		return rep, err
	}
	// The root is the administrator's choice and is opened by name this
	// once; everything below it is reached from this handle.
	if in.rootDir, err = beneath.OpenDir(root); err != nil {
		return rep, fmt.Errorf("root %s: %w", root, err)
	}
	in.h.root = in.rootDir
	defer func() {
		in.h.close()
		in.proj.Close()
		in.rootDir.Close()
	}()
	if in.owner, err = ResolveOwner(o.Owner); err != nil {
		return rep, err
	}
	rep.Owner = in.owner
	if !o.DryRun {
		if err := checkCanChown(in.owner); err != nil {
			return rep, err
		}
	}
	if in.builder, in.cyclecloud, err = resolveBuilder(o.Builder); err != nil {
		return rep, err
	}
	rep.Builder = in.builder
	if in.state, err = resolveState(root, o.StateDir); err != nil {
		return rep, err
	}
	if !o.DryRun {
		if err := prepareState(in.state); err != nil {
			return rep, err
		}
		wait := o.LockWait
		if wait == 0 {
			wait = DefaultLockWait
		} else if wait < 0 {
			wait = 0
		}
		lock, err := acquireLock(ctx, lockPath(in.state), wait, bundleName, in.log, o.Notice)
		if err != nil {
			return rep, err
		}
		defer lock.Release()
		in.hook("locked")
		if err := recoverTmp(tmpRoot(in.state), in.rootDir, in.log, in.durable); err != nil {
			return rep, err
		}
	}
	return rep, in.run(ctx, r)
}

// installer carries one Install's state.
type installer struct {
	o          InstallOptions
	sw         switches
	durable    durability
	log        *slog.Logger
	rep        *InstallReport
	root       string
	state      string // the checked state folder
	owner      Owner
	builder    string
	cyclecloud string

	rootDir  *beneath.Dir // the root, on a handle
	proj     *beneath.Dir // R/work/staging/projects, or nil while it does not exist
	m        *manifest.Manifest
	tmp      string      // absolute temporary folder
	troot    *os.Root    // the temporary folder
	blobs    []*blobPlan // unique (project name, blob) pairs
	projects []*projectWork
	journal  *journal
	h        handles    // folders of the staging tree, on handles (placement)
	warnMu   sync.Mutex // warnings come from the stream and the early builds
}

// blobPlan is one blob to stage in <name>/blobs/.
type blobPlan struct {
	project string
	item    PlanItem
	payload string // path in the temporary root; "" for required blobs
	target  string // absolute staged path (for messages)
	rel     string // staged path relative to the projects folder
	carried bool
}

// projectWork is one project version being installed.
type projectWork struct {
	p      manifest.Project
	plan   *ProjectPlan
	src    string // unpacked source, in the temporary root
	out    string // built version folder, in the temporary root
	target string // absolute staged version folder (for messages)
	rel    string // staged version folder relative to the projects folder
	exists bool
	// iniBlobs are the blobs project.ini names.
	iniBlobs []string
}

func (in *installer) warn(msg string) {
	in.log.Warn(msg)
	in.warnMu.Lock()
	defer in.warnMu.Unlock()
	in.rep.Warnings = append(in.rep.Warnings, msg)
}

func (in *installer) run(ctx context.Context, r io.Reader) (err error) {
	rep := in.rep
	// Each byte is hashed once, by the payload checks; the bundle is
	// named by the hash of its signed SHA256SUMS.
	body := ctxio.NewReader(ctx, r)
	rd, err := manifest.NewCheckedReader(body, func(sums, sig []byte) (err error) {
		h := sha256.Sum256(sums)
		rep.HeadSHA256 = hex.EncodeToString(h[:])
		rep.Signer, err = checkSignature(sums, sig, in.o.Verify, in.log, in.warn)
		return err
	})
	if err != nil {
		return fmt.Errorf("bundle %s: %w", rep.Bundle, err)
	}
	// The payload hashes run on a goroutine of their own: this one reads,
	// pipeCopy's writes.
	rd.HashElsewhere()
	defer rd.Close()
	in.m = rd.Manifest()
	if in.o.Verify.InsecureSkipSignature {
		rep.Insecure = true
		rep.Warnings = append(rep.Warnings, insecureWarning)
	} else {
		in.log.Info("good signature", "principal", rep.Signer.Principal, "key", rep.Signer.Fingerprint)
	}
	err = in.preflight(ctx)
	in.count()
	if err != nil {
		return err
	}
	if !in.o.DryRun && !in.o.Force {
		if c := in.blobConflicts(); len(c) > 0 {
			return fmt.Errorf("%s; pass --force to replace: %w", strings.Join(c, "; "), ErrConflict)
		}
	}

	// Private temporary folder: on the staging filesystem for a real
	// install, anywhere for a dry run (which must not touch the root).
	if in.o.DryRun {
		in.tmp, err = os.MkdirTemp("", "ccmirror-dry-run-")
	} else {
		in.tmp, err = os.MkdirTemp(tmpRoot(in.state), "install-")
	}
	if err != nil {
		return fmt.Errorf("temporary folder: %w", err)
	}
	keepTmp := false
	defer func() {
		if in.troot != nil {
			in.troot.Close()
		}
		in.journal.close()
		if keepTmp {
			return
		}
		if rerr := os.RemoveAll(in.tmp); rerr != nil {
			in.log.Warn("could not remove the temporary folder", "tmp", in.tmp, "err", rerr)
		}
	}()
	if in.troot, err = os.OpenRoot(in.tmp); err != nil {
		return fmt.Errorf("temporary folder: %w", err)
	}
	// The native builder needs only a project's source: it builds while
	// the blobs stream in.
	var early *earlyBuilds
	streamCtx := ctx
	if in.builder == BuilderNative {
		early = in.startBuilds(ctx)
		streamCtx = early.ctx
	}
	err = in.stream(streamCtx, rd, early)
	built, berr := early.wait()
	if berr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return berr // the stream stopped because the build failed
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("reading the end of the bundle: %w", err)
	}
	in.log.Debug("payload verified and unpacked", "tmp", in.tmp)
	for i := range in.projects {
		if i < len(built) && built[i] {
			continue
		}
		if err := in.buildProject(ctx, i); err != nil {
			return err
		}
	}
	in.log.Debug("version folders built", "builder", in.builder)
	if err := in.checkNamedBlobs(); err != nil {
		return err
	}
	if err := in.planVersions(ctx); err != nil {
		return err
	}
	in.count()
	conflicts := in.conflicts()
	if in.o.DryRun {
		rep.Status = StatusDryRun
		if len(conflicts) > 0 && !in.o.Force {
			return fmt.Errorf("dry run: %s; pass --force to replace: %w", strings.Join(conflicts, "; "), ErrConflict)
		}
		return nil
	}
	if len(conflicts) > 0 && !in.o.Force {
		return fmt.Errorf("%s; pass --force to replace: %w", strings.Join(conflicts, "; "), ErrConflict)
	}
	if rep.Counts[ActionAdd]+rep.Counts[ActionReplace]+rep.Counts[ActionRemove] == 0 {
		rep.Status = StatusAlreadyInstalled
		in.log.Info("already installed: the staging tree already holds exactly this bundle's content; nothing changed")
		return nil
	}
	if err := in.prepareOwnership(); err != nil {
		return err
	}
	in.hook("chowned")
	in.log.Debug("ownership set and the temporary folder synced", "owner", in.owner.Spec)
	if err := in.place(ctx); err != nil {
		if in.journal != nil {
			if uerr := undo(in.journal.ops, in.rootDir, in.log, in.durable); uerr != nil {
				keepTmp = true
				return fmt.Errorf("%w; AND undoing the partial install failed (the next install retries from %s): %w", err, in.tmp, uerr)
			}
		}
		return err
	}
	rep.Status = StatusInstalled
	return nil
}
