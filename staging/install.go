package staging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ccmirror/ccmirror/internal/ctxio"

	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/manifest"
)

// DefaultRoot is CycleCloud's installation folder.
const DefaultRoot = "/opt/cycle_server"

// InstallOptions controls Install.
type InstallOptions struct {
	Root    string // default DefaultRoot
	Owner   string // USER:GROUP, default DefaultOwner; numeric ids accepted
	Builder string // auto (default), cyclecloud or native
	DryRun  bool   // compute and return the plan, change nothing
	Force   bool   // replace staged content that differs
	Verify  VerifyOptions
	Log     *slog.Logger // nil: no logging
	// LockWait is how long to wait for another install's lock; 0 means
	// DefaultLockWait, negative means fail at once.
	LockWait time.Duration
}

// CheckRoot says, in one line, when root is not an existing folder: a typo
// in --root must not look like a server with nothing staged.
func CheckRoot(root string) error {
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return fmt.Errorf("root %s does not exist or is not a folder (is CycleCloud installed here? pass --root)", root)
	}
	return nil
}

// ProjectsDir is where CycleCloud looks for staged projects under root.
func ProjectsDir(root string) string { return filepath.Join(root, "work", "staging", "projects") }

// privateDir holds what ccmirror keeps for itself: lock, tmp/, records/.
func privateDir(root string) string { return StateDir(root) }

// StateDir is the folder where ccmirror keeps its own state for the staging
// root (lock, journal, install records, temporary folders, and the index
// sequences update accepted). Code outside staging names state paths only
// through it.
func StateDir(root string) string { return filepath.Join(root, "work", "ccmirror") }

// RecordsDir is where Install writes its install records.
func RecordsDir(root string) string { return filepath.Join(privateDir(root), "records") }

func tmpRoot(root string) string { return filepath.Join(privateDir(root), "tmp") }

// testHook, when set by tests, is called at named points of an install
// ("locked", "payload:<path>", "built", "blob:<name>/<blob>",
// "version:<name>/<version>", "recorded", "committed", ...) and with
// "bytes:<n>" as payload bytes are written.
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}

// noExchange, set by tests, makes placement use the rename-aside fallback
// instead of renameat2(RENAME_EXCHANGE).
var noExchange bool

// Install verifies a bundle and stages every project version it carries
// under R/work/staging/projects/, in one streaming pass over r:
//
//   - takes the staging lock (R/work/ccmirror/lock);
//   - checks the signature and preflights free space, owner, writability,
//     already staged blobs (conflicts) and required blobs before writing;
//   - streams every payload file into a private temporary folder on the
//     staging filesystem, hashing as it writes;
//   - unpacks each source archive safely and builds the version folder
//     (named by project.ini's version);
//   - places blobs first, each by atomic rename, then each version folder by
//     rename, under a journal that undoes everything on failure or, after a
//     crash, at the next install;
//   - writes an install record under R/work/ccmirror/records/.
//
// Errors wrap manifest.ErrVerify (bad bundle; nothing written) or
// ErrConflict (staged content differs without Force, or the lock is held).
// The report is returned, as far as it got, even with an error.
func Install(ctx context.Context, r io.Reader, bundleName string, o InstallOptions) (rep *InstallReport, err error) {
	in := &installer{o: o, log: o.Log}
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
	if !o.DryRun {
		priv := privateDir(root)
		for _, d := range []string{priv, tmpRoot(root), RecordsDir(root)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return rep, fmt.Errorf("ccmirror state folder: %w (is %s writable?)", err, priv)
			}
		}
		wait := o.LockWait
		if wait == 0 {
			wait = DefaultLockWait
		} else if wait < 0 {
			wait = 0
		}
		lock, err := acquireLock(ctx, lockPath(root), wait, bundleName, in.log)
		if err != nil {
			return rep, err
		}
		defer lock.release()
		hook("locked")
		if err := recoverTmp(tmpRoot(root), in.log); err != nil {
			return rep, err
		}
	}
	return rep, in.run(ctx, r)
}

// installer carries one Install's state.
type installer struct {
	o          InstallOptions
	log        *slog.Logger
	rep        *InstallReport
	root       string
	owner      Owner
	builder    string
	cyclecloud string

	m        *manifest.Manifest
	tmp      string   // absolute temporary folder
	troot    *os.Root // the temporary folder
	modes    map[string]fs.FileMode
	blobs    []*blobPlan // unique (project name, blob) pairs
	projects []*projectWork
	journal  *journal
}

// blobPlan is one blob to stage in <name>/blobs/.
type blobPlan struct {
	project string
	item    PlanItem
	payload string // path in the temporary root; "" for required blobs
	target  string // absolute staged path
	carried bool
}

// projectWork is one project version being installed.
type projectWork struct {
	p      manifest.Project
	plan   *ProjectPlan
	src    string // unpacked source, in the temporary root
	out    string // built version folder, in the temporary root
	target string // absolute staged version folder
	exists bool
	// iniBlobs are the blobs project.ini names.
	iniBlobs []string
}

func (in *installer) warn(msg string) {
	in.log.Warn(msg)
	in.rep.Warnings = append(in.rep.Warnings, msg)
}

func (in *installer) run(ctx context.Context, r io.Reader) (err error) {
	rep := in.rep
	body := newAsyncHash(ctxio.NewReader(ctx, r))
	defer body.stop()
	rd, err := manifest.NewReader(body)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", rep.Bundle, err)
	}
	in.m = rd.Manifest()
	if rep.Signer, err = checkSignature(rd, in.o.Verify, in.log); err != nil {
		return fmt.Errorf("bundle %s: %w", rep.Bundle, err)
	}
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
		in.tmp, err = os.MkdirTemp(tmpRoot(in.root), "install-")
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
	if err := in.stream(ctx, rd); err != nil {
		return err
	}
	if rep.BundleSHA256, err = drainDigest(body); err != nil {
		return err
	}
	for i := range in.projects {
		if err := in.buildProject(ctx, i); err != nil {
			return err
		}
	}
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
	hook("chowned")
	if err := in.place(ctx); err != nil {
		if in.journal != nil {
			if uerr := undo(in.journal.ops, in.log); uerr != nil {
				keepTmp = true
				return fmt.Errorf("%w; AND undoing the partial install failed (the next install retries from %s): %w", err, in.tmp, uerr)
			}
		}
		return err
	}
	rep.Status = StatusInstalled
	return nil
}

// preflight checks everything it can before a byte is written: space,
// filesystem, writability, required blobs and what is already staged.
func (in *installer) preflight(ctx context.Context) error {
	projects := ProjectsDir(in.root)
	existing := nearestExisting(projects)
	if existing != projects {
		if st, err := os.Stat(existing); err != nil || !st.IsDir() {
			return fmt.Errorf("staging folder: %s is not a folder; fix it so %s can be created", existing, projects)
		}
	}
	if err := syscall.Access(existing, unix.W_OK); err != nil {
		return fmt.Errorf("staging folder %s is not writable (%v): run as root, or fix the filesystem", existing, err)
	}
	var need int64
	for _, f := range in.m.Files() {
		need += f.Size
	}
	for _, p := range in.m.Projects {
		need += 2 * p.Source.Size // unpacked source, then the built version folder
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(existing, &sfs); err != nil {
		return fmt.Errorf("free space on %s: %w", existing, err)
	}
	if avail := int64(sfs.Bavail) * int64(sfs.Bsize); avail < need {
		return fmt.Errorf("not enough free space for %s: need %s, %s has %s free; free some space or use a larger --root", in.rep.Bundle, humanBytes(need), existing, humanBytes(avail))
	}
	if !in.o.DryRun {
		var a, b syscall.Stat_t
		if err := syscall.Stat(tmpRoot(in.root), &a); err != nil {
			return err
		}
		if err := syscall.Stat(existing, &b); err != nil {
			return err
		}
		if a.Dev != b.Dev {
			return fmt.Errorf("%s and %s are on different filesystems; ccmirror needs them on one so it can rename atomically (make %s a folder on the staging filesystem)", privateDir(in.root), existing, privateDir(in.root))
		}
	}

	// Blobs: carried (add / skip / conflict) and required (must be staged).
	seen := map[string]*blobPlan{}
	var missing []string
	for _, p := range in.m.Projects {
		pw := &projectWork{p: p, plan: &ProjectPlan{Name: p.Name, BundleVersion: p.Version, Tag: p.Tag, Commit: p.Commit, Repository: p.Repository,
			Blobs: []PlanItem{}, Files: []PlanItem{}}}
		in.projects = append(in.projects, pw)
		for _, b := range p.Blobs {
			key := p.Name + "/" + b.Name
			bp := seen[key]
			if bp == nil {
				bp = &blobPlan{project: p.Name, payload: "payload/" + b.Path, target: filepath.Join(projects, p.Name, "blobs", filepath.FromSlash(b.Name)), carried: true,
					item: PlanItem{Path: b.Name, Type: "blob", Size: b.Size, SHA256: b.SHA256}}
				if err := in.planBlob(ctx, bp); err != nil {
					return err
				}
				seen[key] = bp
				in.blobs = append(in.blobs, bp)
			}
			pw.plan.Blobs = append(pw.plan.Blobs, bp.item)
		}
		for _, b := range p.Required {
			key := p.Name + "/" + b.Name
			if bp := seen[key]; bp != nil && bp.carried {
				if bp.item.SHA256 != b.SHA256 {
					return fmt.Errorf("project %s@%s: blob %s is both carried and required with different hashes: %w", p.Name, p.Version, b.Name, manifest.ErrVerify)
				}
				continue
			}
			target := filepath.Join(projects, p.Name, "blobs", filepath.FromSlash(b.Name))
			got, err := hashIfFile(ctx, target)
			if err != nil {
				return err
			}
			if got != b.SHA256 {
				state := "not staged"
				if got != "" {
					state = "staged with sha256 " + short(got)
				}
				missing = append(missing, fmt.Sprintf("%s/blobs/%s (%s, want sha256 %s)", p.Name, b.Name, state, short(b.SHA256)))
				continue
			}
			item := PlanItem{Path: b.Name, Type: "blob", Action: ActionSkip, Size: b.Size, SHA256: b.SHA256, Reason: "required: already staged with this sha256"}
			if seen[key] == nil {
				bp := &blobPlan{project: p.Name, target: target, item: item}
				seen[key] = bp
				in.blobs = append(in.blobs, bp)
			}
			pw.plan.Blobs = append(pw.plan.Blobs, item)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the bundle relies on blobs the server must already hold, and these are missing or different: %s: %w", strings.Join(missing, ", "), manifest.ErrVerify)
	}
	return nil
}

// planBlob decides add / skip / conflict (replace with Force) for one
// carried blob by looking at what is staged.
func (in *installer) planBlob(ctx context.Context, bp *blobPlan) error {
	st, err := os.Lstat(bp.target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		bp.item.Action = ActionAdd
		return nil
	case err != nil:
		return fmt.Errorf("blob %s: %w", bp.target, err)
	}
	differ := ActionConflict
	if in.o.Force {
		differ = ActionReplace
	}
	switch {
	case !st.Mode().IsRegular():
		bp.item.Action, bp.item.Reason = differ, "staged path is not a regular file"
	case st.Size() != bp.item.Size:
		bp.item.Action, bp.item.Reason = differ, fmt.Sprintf("staged with size %d, bundle has %d", st.Size(), bp.item.Size)
	default:
		got, err := hashFile(ctx, bp.target)
		if err != nil {
			return fmt.Errorf("blob %s: %w", bp.target, err)
		}
		if got == bp.item.SHA256 {
			bp.item.Action, bp.item.Reason = ActionSkip, "already staged with this sha256"
		} else {
			bp.item.Action, bp.item.Reason = differ, "staged with sha256 "+short(got)
		}
	}
	return nil
}

func (in *installer) blobConflicts() []string {
	var out []string
	for _, bp := range in.blobs {
		if bp.item.Action == ActionConflict {
			out = append(out, fmt.Sprintf("%s/blobs/%s: %s, bundle has sha256 %s", bp.project, bp.item.Path, bp.item.Reason, short(bp.item.SHA256)))
		}
	}
	return out
}

func (in *installer) conflicts() []string {
	out := in.blobConflicts()
	for _, pw := range in.projects {
		if pw.plan.Action != ActionConflict {
			continue
		}
		n := 0
		for _, it := range pw.plan.Files {
			if it.Action == ActionConflict {
				n++
			}
		}
		out = append(out, fmt.Sprintf("%s/%s: staged version differs from the bundle's (%d paths)", pw.plan.Name, pw.plan.Version, n))
	}
	return out
}

// stream writes every payload file into the temporary folder while the
// manifest reader hashes it; a mismatch surfaces as ErrVerify from the
// last read.
func (in *installer) stream(ctx context.Context, rd *manifest.Reader) error {
	in.modes = map[string]fs.FileMode{}
	var total int64
	buf := make([]byte, streamBufSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bundle %s: %w", in.rep.Bundle, err)
		}
		name := "payload/" + p.File.Path
		if err := in.troot.MkdirAll(path.Dir(name), 0o700); err != nil {
			return err
		}
		f, err := in.troot.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("%s: %w", p.File.Path, err)
		}
		_, err = io.CopyBuffer(&hookWriter{w: f, total: &total}, p, buf)
		if err == nil {
			startWriteback(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if errors.Is(err, manifest.ErrVerify) {
				return err // names the entry already
			}
			return fmt.Errorf("%s: %w", p.File.Path, err)
		}
		mode := fs.FileMode(p.Mode) & 0o777
		if mode == 0 {
			mode = 0o644
		}
		in.modes[name] = mode
		hook("payload:" + p.File.Path)
	}
}

// streamBufSize is the buffer payload bytes are written from: few, large
// writes.
const streamBufSize = 1 << 20

// startWriteback asks the kernel to start writing f to disk now, without
// waiting (sync_file_range SYNC_FILE_RANGE_WRITE): the disk works while
// the next files stream in, and the syncfs before placement finds little
// left. Only a hint; errors are ignored.
func startWriteback(f *os.File) {
	if noSync {
		return
	}
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// hookWriter reports running byte totals to testHook.
type hookWriter struct {
	w     io.Writer
	total *int64
}

func (h *hookWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	*h.total += int64(n)
	if testHook != nil {
		testHook("bytes:" + strconv.FormatInt(*h.total, 10))
	}
	return n, err
}

// buildProject unpacks project i's source and builds its version folder.
func (in *installer) buildProject(ctx context.Context, i int) error {
	pw := in.projects[i]
	p := pw.p
	label := fmt.Sprintf("%s@%s source", p.Name, p.Version)
	pw.src = "src/" + strconv.Itoa(i)
	pw.out = "out/" + strconv.Itoa(i)
	f, err := in.troot.Open("payload/" + p.Source.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	err = unpackSource(ctx, f, in.troot, pw.src, label, in.warn)
	f.Close()
	if err != nil {
		return err
	}
	hook("unpacked:" + p.Name)
	ini, err := in.readINI(pw.src, label)
	if err != nil {
		return err
	}
	if ini.Name != p.Name {
		return fmt.Errorf("%s: project.ini names project %q, the bundle says %q: %w", label, ini.Name, p.Name, manifest.ErrVerify)
	}
	if !manifest.ValidName(ini.Version) || ini.Version == "blobs" {
		return fmt.Errorf("%s: project.ini version %q is not usable as a folder name: %w", label, ini.Version, manifest.ErrVerify)
	}
	if ini.Version != p.Tag && p.Tag != "" {
		in.warn(fmt.Sprintf("%s: project.ini says version %s but the tag is %s; staging as %s/%s", label, ini.Version, p.Tag, p.Name, ini.Version))
	}
	for _, o := range in.projects[:i] {
		if o.plan.Name == p.Name && o.plan.Version == ini.Version {
			return fmt.Errorf("%s: two projects in the bundle build %s/%s: %w", label, p.Name, ini.Version, manifest.ErrVerify)
		}
	}
	pw.plan.Version = ini.Version
	pw.target = filepath.Join(ProjectsDir(in.root), p.Name, ini.Version)
	pw.plan.Dir = pw.target
	pw.iniBlobs = ini.Blobs
	if err := in.troot.MkdirAll("out", 0o700); err != nil {
		return err
	}
	switch in.builder {
	case BuilderCycleCloud:
		var inputs []blobInput
		for _, bp := range in.blobs {
			if bp.project != p.Name {
				continue
			}
			if bp.carried {
				inputs = append(inputs, blobInput{Name: bp.item.Path, Payload: bp.payload})
			} else {
				inputs = append(inputs, blobInput{Name: bp.item.Path, Staged: bp.target})
			}
		}
		err = buildCycleCloud(ctx, in.troot, pw.src, pw.out, p.Name, in.cyclecloud, inputs, in.log, in.warn)
	default:
		err = buildNative(in.troot, pw.src, pw.out, in.warn)
	}
	if err != nil {
		return fmt.Errorf("build %s/%s: %w", p.Name, ini.Version, err)
	}
	hook("built:" + p.Name)
	return nil
}

func (in *installer) readINI(src, label string) (*manifest.ProjectINI, error) {
	st, err := in.troot.Lstat(src + "/project.ini")
	if err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: no project.ini at the top of the source: %w", label, manifest.ErrVerify)
	}
	f, err := in.troot.Open(src + "/project.ini")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	defer f.Close()
	ini, err := manifest.ParseProjectINI(f, label+": project.ini")
	if err != nil {
		if !errors.Is(err, manifest.ErrVerify) {
			err = fmt.Errorf("%w: %w", manifest.ErrVerify, err)
		}
		return nil, err
	}
	return ini, nil
}

// checkNamedBlobs makes sure CycleCloud will find every blob project.ini
// names once the install is done: carried, required, or already staged.
func (in *installer) checkNamedBlobs() error {
	have := map[string]bool{}
	for _, bp := range in.blobs {
		have[bp.project+"/"+bp.item.Path] = true
	}
	var missing []string
	for _, pw := range in.projects {
		for _, b := range pw.iniBlobs {
			if have[pw.p.Name+"/"+b] {
				continue
			}
			if !manifest.ValidBlobName(b) {
				missing = append(missing, fmt.Sprintf("%s/%s names unusable blob %q", pw.p.Name, pw.plan.Version, b))
				continue
			}
			if st, err := os.Stat(filepath.Join(ProjectsDir(in.root), pw.p.Name, "blobs", filepath.FromSlash(b))); err == nil && st.Mode().IsRegular() {
				in.warn(fmt.Sprintf("%s/%s: blob %s is not in the bundle; using the one already staged (hash not checked)", pw.p.Name, pw.plan.Version, b))
				continue
			}
			missing = append(missing, fmt.Sprintf("%s/blobs/%s", pw.p.Name, b))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("project.ini names blobs the bundle does not carry and staging does not hold: %s: %w", strings.Join(missing, ", "), manifest.ErrVerify)
	}
	return nil
}

// planVersions compares each built version folder with the staged one.
func (in *installer) planVersions(ctx context.Context) error {
	for _, pw := range in.projects {
		built, err := walkTree(ctx, filepath.Join(in.tmp, filepath.FromSlash(pw.out)))
		if err != nil {
			return fmt.Errorf("%s/%s: %w", pw.plan.Name, pw.plan.Version, err)
		}
		var staged []treeEntry
		st, err := os.Lstat(pw.target)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case st.IsDir():
			pw.exists = true
			if staged, err = walkTree(ctx, pw.target); err != nil {
				return fmt.Errorf("staged %s: %w", pw.target, err)
			}
		default:
			pw.exists = true
			staged = []treeEntry{{Path: ".", Type: typeOther, Mode: modeString(st.Mode())}}
		}
		items, identical := diffTrees(built, staged, in.o.Force)
		pw.plan.Files = items
		switch {
		case !pw.exists:
			pw.plan.Action = ActionAdd
		case identical:
			pw.plan.Action = ActionSkip
		case in.o.Force:
			pw.plan.Action = ActionReplace
		default:
			pw.plan.Action = ActionConflict
		}
	}
	return nil
}

// count fills the report's per-action totals (each blob once) and copies
// the final blob decisions into each project's plan.
func (in *installer) count() {
	c := map[Action]int{}
	in.rep.Counts = c
	for _, bp := range in.blobs {
		c[bp.item.Action]++
	}
	in.rep.Projects = in.rep.Projects[:0]
	for _, pw := range in.projects {
		if pw.plan.Action != "" {
			c[pw.plan.Action]++
		}
		for _, it := range pw.plan.Files {
			if it.Action == ActionRemove {
				c[ActionRemove]++
			}
		}
		in.rep.Projects = append(in.rep.Projects, *pw.plan)
	}
}

// prepareOwnership gives the owner and the bundle's modes to everything
// about to be placed, while it is still in the temporary folder.
func (in *installer) prepareOwnership() error {
	uid, gid := in.owner.UID, in.owner.GID
	for _, bp := range in.blobs {
		if !bp.carried || (bp.item.Action != ActionAdd && bp.item.Action != ActionReplace) {
			continue
		}
		if err := in.troot.Chmod(bp.payload, in.modes[bp.payload]); err != nil {
			return err
		}
		if err := in.troot.Chown(bp.payload, uid, gid); err != nil {
			return fmt.Errorf("chown %s to %s: %w", bp.item.Path, in.owner.Spec, err)
		}
	}
	for _, pw := range in.projects {
		if pw.plan.Action == ActionSkip {
			continue
		}
		err := fs.WalkDir(in.troot.FS(), pw.out, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return in.troot.Lchown(p, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("chown %s/%s to %s: %w", pw.plan.Name, pw.plan.Version, in.owner.Spec, err)
		}
	}
	// One syncfs makes every file and folder written so far durable
	// before anything is renamed into the staging tree.
	return syncFS(in.tmp)
}

func syncFS(dir string) error {
	if noSync {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// place moves blobs, then version folders, into the staging tree under
// the journal, then writes the install record and commits.
func (in *installer) place(ctx context.Context) error {
	j, err := createJournal(in.tmp)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	in.journal = j
	if err := in.troot.Mkdir("old", 0o700); err != nil {
		return err
	}
	syncDirs := map[string]bool{}
	for _, bp := range in.blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !bp.carried || (bp.item.Action != ActionAdd && bp.item.Action != ActionReplace) {
			continue
		}
		if err := in.mkdirs(filepath.Dir(bp.target)); err != nil {
			return err
		}
		src := filepath.Join(in.tmp, filepath.FromSlash(bp.payload))
		if bp.item.Action == ActionAdd {
			err = in.addFile(src, bp.target)
		} else {
			err = in.replaceFile(src, bp.target)
		}
		if err != nil {
			return fmt.Errorf("stage blob %s/blobs/%s: %w", bp.project, bp.item.Path, err)
		}
		syncDirs[filepath.Dir(bp.target)] = true
		hook("blob:" + bp.project + "/" + bp.item.Path)
	}
	for d := range syncDirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	hook("blobs-synced")
	for _, pw := range in.projects {
		if err := ctx.Err(); err != nil {
			return err
		}
		if pw.plan.Action == ActionSkip {
			continue
		}
		if err := in.mkdirs(filepath.Dir(pw.target)); err != nil {
			return err
		}
		if err := in.placeVersion(pw); err != nil {
			return fmt.Errorf("stage %s/%s: %w", pw.plan.Name, pw.plan.Version, err)
		}
		if err := syncDir(filepath.Dir(pw.target)); err != nil {
			return err
		}
		hook("version:" + pw.plan.Name + "/" + pw.plan.Version)
	}
	if err := in.writeRecord(); err != nil {
		return fmt.Errorf("install record: %w", err)
	}
	hook("recorded")
	if err := j.log(journalOp{Op: opCommit}); err != nil {
		return err
	}
	hook("committed")
	in.log.Info("installed", "bundle", in.rep.Bundle, "record", in.rep.Record)
	return nil
}

// mkdirs creates the missing folders down to dir, journaled, owned by the
// install's owner.
func (in *installer) mkdirs(dir string) error {
	var missing []string
	projects := ProjectsDir(in.root)
	d := dir
	for ; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if d == in.root || d == filepath.Dir(d) {
			break
		}
	}
	// Every existing folder from the projects folder down must be a real
	// folder: a symlink planted there would send the renames and chowns
	// that follow anywhere on the system.
	if strings.HasPrefix(d+string(filepath.Separator), projects+string(filepath.Separator)) {
		for e := d; ; e = filepath.Dir(e) {
			st, err := os.Lstat(e)
			if err != nil {
				return err
			}
			if !st.IsDir() {
				return fmt.Errorf("%s is not a folder (a symlink?): refusing to stage through it; replace it with a folder", e)
			}
			if e == projects || e == filepath.Dir(e) {
				break
			}
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := in.journal.log(journalOp{Op: opMkdir, Path: d}); err != nil {
			return err
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(d, in.owner.UID, in.owner.GID); err != nil {
			return fmt.Errorf("chown %s to %s: %w", d, in.owner.Spec, err)
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func (in *installer) addFile(src, target string) error {
	if err := in.journal.log(journalOp{Op: opAdd, Path: target, Tmp: src, Ino: inodeOf(src)}); err != nil {
		return err
	}
	return os.Rename(src, target)
}

func (in *installer) replaceFile(src, target string) error {
	backup, err := in.backupName()
	if err != nil {
		return err
	}
	if err := in.journal.log(journalOp{Op: opReplace, Path: target, Tmp: src, Backup: backup, Ino: inodeOf(src)}); err != nil {
		return err
	}
	if err := os.Link(target, backup); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(backup)); err != nil {
		return err
	}
	return os.Rename(src, target)
}

func (in *installer) backupName() (string, error) {
	f, err := os.CreateTemp(filepath.Join(in.tmp, "old"), "b-")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, os.Remove(name)
}

// placeVersion renames the built folder into place: plainly when the
// version is new; otherwise by atomic exchange with the staged folder
// (renameat2 RENAME_EXCHANGE) or, where the filesystem lacks that, by
// renaming the old one aside first.
func (in *installer) placeVersion(pw *projectWork) error {
	src := filepath.Join(in.tmp, filepath.FromSlash(pw.out))
	op := journalOp{Op: opVersion, Path: pw.target, Tmp: src, Ino: inodeOf(src)}
	if !pw.exists {
		op.Mode = placeNew
		if err := in.journal.log(op); err != nil {
			return err
		}
		return os.Rename(src, pw.target)
	}
	if !noExchange {
		op.Mode = placeExchange
		if err := in.journal.log(op); err != nil {
			return err
		}
		err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, pw.target, unix.RENAME_EXCHANGE)
		if err == nil {
			in.log.Info("replaced staged version atomically", "version", pw.target)
			return nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
		in.log.Info("filesystem cannot exchange folders atomically; renaming the old version aside first", "err", err)
	}
	backup, err := in.backupName()
	if err != nil {
		return err
	}
	op.Mode, op.Backup = placeAside, backup
	if err := in.journal.log(op); err != nil {
		return err
	}
	if err := os.Rename(pw.target, backup); err != nil {
		return err
	}
	hook("version-aside:" + pw.plan.Name + "/" + pw.plan.Version)
	return os.Rename(src, pw.target)
}

// nearestExisting returns p or its closest existing ancestor.
func nearestExisting(p string) string {
	for {
		if _, err := os.Lstat(p); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}

func hashIfFile(ctx context.Context, p string) (string, error) {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", nil
	}
	return hashFile(ctx, p)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
