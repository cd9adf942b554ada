package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/child"
	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/manifest"
)

// Builders InstallOptions.Builder accepts.
const (
	BuilderAuto       = "auto"
	BuilderCycleCloud = "cyclecloud"
	BuilderNative     = "native"
)

// resolveBuilder turns auto|cyclecloud|native into the builder to run and,
// for cyclecloud, the CLI's path.
func resolveBuilder(b string) (string, string, error) {
	switch b {
	case "", BuilderAuto:
		if p, err := exec.LookPath("cyclecloud"); err == nil {
			return BuilderCycleCloud, p, nil
		}
		return BuilderNative, "", nil
	case BuilderCycleCloud:
		p, err := exec.LookPath("cyclecloud")
		if err != nil {
			return "", "", fmt.Errorf("--builder cyclecloud: the cyclecloud CLI is not on PATH (install it, or use --builder native)")
		}
		return BuilderCycleCloud, p, nil
	case BuilderNative:
		return BuilderNative, "", nil
	default:
		return "", "", fmt.Errorf("builder %q: want auto, cyclecloud or native", b)
	}
}

// buildNative moves specs/<spec>/cluster-init and specs/<spec>/chef of the
// unpacked source src into out/<spec>/, and project.ini into out/: the layout
// a locker holds at projects/<name>/<version>/. Both folders are in root.
func buildNative(root *os.Root, src, out string, warn func(string)) error {
	if err := root.Mkdir(out, 0o755); err != nil {
		return err
	}
	if err := root.Chmod(out, 0o755); err != nil {
		return err
	}
	if err := root.Rename(src+"/project.ini", out+"/project.ini"); err != nil {
		return fmt.Errorf("project.ini: %w", err)
	}
	specs, err := readDir(root, src+"/specs")
	if errors.Is(err, fs.ErrNotExist) {
		warn("source has no specs/ folder: the version holds only project.ini")
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range specs {
		spec := e.Name()
		if e.Type()&fs.ModeSymlink != 0 {
			warn(fmt.Sprintf("skipped specs/%s: a symlink, not a folder", spec))
			continue
		}
		if !e.IsDir() {
			continue
		}
		if !manifest.ValidName(spec) {
			warn(fmt.Sprintf("skipped specs/%s: unusable spec name", spec))
			continue
		}
		made := false
		for _, sub := range []string{"cluster-init", "chef"} {
			from := src + "/specs/" + spec + "/" + sub
			st, err := root.Lstat(from)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if !st.IsDir() {
				warn(fmt.Sprintf("skipped specs/%s/%s: not a folder", spec, sub))
				continue
			}
			if !made {
				if err := root.Mkdir(out+"/"+spec, 0o755); err != nil {
					return err
				}
				if err := root.Chmod(out+"/"+spec, dirMode); err != nil {
					return err
				}
				made = true
			}
			if err := root.Rename(from, out+"/"+spec+"/"+sub); err != nil {
				return fmt.Errorf("specs/%s/%s: %w", spec, sub, err)
			}
		}
	}
	return sanitizeOutput(root, out, warn)
}

// blobInput is a blob handed to `cyclecloud project build` in the source's
// blobs/ folder: linked from the temporary payload, or copied from staging.
type blobInput struct {
	Name    string
	Payload string                   // path in the temporary root, or ""
	Staged  func() (*os.File, error) // opens an already staged blob (on a handle), or nil
}

// maxBuildOutput bounds what `cyclecloud project build` may print: it is
// killed past it (only the last 8 KiB is kept, for messages).
const maxBuildOutput = 64 << 20

// buildCycleCloud runs `cyclecloud project build` in the unpacked source and
// moves build/<name>/ to out. A blobs/ folder in the output is dropped:
// blobs are staged once per project, in <name>/blobs/.
func buildCycleCloud(ctx context.Context, root *os.Root, src, out, name, cc string, timeout time.Duration, blobs []blobInput, log *slog.Logger, warn func(string)) error {
	for _, b := range blobs {
		dst := src + "/blobs/" + b.Name
		if _, err := root.Lstat(dst); err == nil {
			continue // the source tree carries it (hpcpack's blobs/vnet.json)
		}
		if err := root.MkdirAll(path.Dir(dst), 0o755); err != nil {
			return err
		}
		if b.Payload != "" {
			if err := root.Link(b.Payload, dst); err != nil {
				return fmt.Errorf("blob %s: %w", b.Name, err)
			}
			continue
		}
		if err := copyInto(ctx, root, b.Staged, dst); err != nil {
			return fmt.Errorf("blob %s: %w", b.Name, err)
		}
	}
	cmd := exec.Command(cc, "project", "build")
	cmd.Dir = root.Name() + "/" + src
	log.Info("running cyclecloud project build", "dir", cmd.Dir, "cli", cc)
	res, err := child.Run(ctx, cmd, child.Options{Timeout: timeout, MaxStdout: maxBuildOutput, StderrIsStdout: true, Tail: 8 << 10})
	printed := strings.TrimSpace(string(res.Stdout))
	if err != nil {
		return fmt.Errorf("cyclecloud project build: %w: %s", err, text.OneLine(printed))
	}
	log.Debug("cyclecloud project build output", "output", printed)
	built := src + "/build/" + name
	st, err := root.Lstat(built)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("cyclecloud project build produced no build/%s/ folder: %s", name, text.OneLine(printed))
	}
	if err := root.Rename(built, out); err != nil {
		return err
	}
	if err := root.Chmod(out, 0o755); err != nil {
		return err
	}
	if _, err := root.Lstat(out + "/blobs"); err == nil {
		log.Info("left build/" + name + "/blobs out of the version folder: blobs are staged in " + name + "/blobs/")
		if err := root.RemoveAll(out + "/blobs"); err != nil {
			return err
		}
	}
	return sanitizeOutput(root, out, warn)
}

func copyInto(ctx context.Context, root *os.Root, open func() (*os.File, error), to string) error {
	in, err := open()
	if err != nil {
		return err
	}
	defer in.Close()
	return writeEntry(ctx, root, to, in, 0o644)
}

// sanitizeOutput removes from a built version folder every symlink that is
// absolute or resolves outside it, and anything that is neither a file, a
// folder nor a symlink, each with a warning; then it gives every folder and
// file its policy mode (see fileModeFor), whatever the archive or the
// builder left.
func sanitizeOutput(root *os.Root, out string, warn func(string)) error {
	var drop []string
	err := fs.WalkDir(root.FS(), out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, out), "/")
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			target, err := root.Readlink(p)
			if err != nil {
				return err
			}
			if reason := unsafeLink(rel, target); reason != "" {
				if strings.HasPrefix(reason, "points outside") {
					reason = "points outside the version folder"
				}
				warn(fmt.Sprintf("skipped symlink %s -> %s: %s", rel, target, reason))
				drop = append(drop, p)
			}
		case t.IsDir() || t.IsRegular():
		default:
			warn(fmt.Sprintf("skipped special file %s", rel))
			drop = append(drop, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range drop {
		if err := root.Remove(p); err != nil {
			return err
		}
	}
	// Links that stay inside read lexically but leave through another link.
	if err := dropEscapingLinks(root, out, func(rel, target string) {
		warn(fmt.Sprintf("skipped symlink %s -> %s: resolves outside the version folder through another symlink", rel, target))
	}); err != nil {
		return err
	}
	return applyModePolicy(root, out)
}

func readDir(root *os.Root, name string) ([]fs.DirEntry, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	es, err := f.ReadDir(-1)
	sort.Slice(es, func(i, j int) bool { return es[i].Name() < es[j].Name() })
	return es, err
}
