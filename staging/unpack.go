package staging

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/ccmirror/ccmirror/internal/ctxio"

	"github.com/ccmirror/ccmirror/manifest"
)

// unpackSource extracts a GitHub tag archive (gzip-compressed tar) into dir
// of dst, stripping the one top folder every entry shares ("<repo>-<tag>/").
// The pax global header GitHub adds is skipped. Absolute names, ".."
// elements and entries outside the top folder are refused (ErrVerify).
// Symbolic links that are absolute or resolve outside the tree, hard links,
// devices and other special files are skipped, each with a warning. Every
// write goes through dst, an os.Root, so nothing lands outside it.
func unpackSource(ctx context.Context, src io.Reader, dst *os.Root, dir, label string, warn func(string)) error {
	gz, err := gzip.NewReader(src)
	if err != nil {
		return fmt.Errorf("%s: not a gzip archive: %v: %w", label, err, manifest.ErrVerify)
	}
	defer gz.Close()
	if err := dst.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	tr := tar.NewReader(gz)
	top := ""
	dirModes := map[string]fs.FileMode{}
	links := map[string]bool{} // symlinks created, by rel
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: corrupt tar: %v: %w", label, err, manifest.ErrVerify)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		rel, err := splitTop(hdr.Name, &top)
		if err != nil {
			return fmt.Errorf("%s: %v: %w", label, err, manifest.ErrVerify)
		}
		if rel == "" {
			if hdr.Typeflag != tar.TypeDir {
				return fmt.Errorf("%s: %q at the top level: the archive has no top folder: %w", label, hdr.Name, manifest.ErrVerify)
			}
			continue
		}
		name := dir + "/" + rel
		if p := underLink(rel, links); p != "" {
			warn(fmt.Sprintf("%s: skipped %s: inside symlink %s", label, rel, p))
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if links[rel] {
				return fmt.Errorf("%s: %s: duplicate entry: %w", label, rel, manifest.ErrVerify)
			}
			if err := dst.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("%s: %s: %w", label, rel, err)
			}
			dirModes[name] = dirMode
		case tar.TypeReg, tar.TypeRegA:
			if isSparse(hdr) {
				// Holes expand to zeros without bound; GitHub archives
				// never hold sparse files.
				warn(fmt.Sprintf("%s: skipped sparse file %s", label, rel))
				continue
			}
			if err := dst.MkdirAll(path.Dir(name), 0o755); err != nil {
				return fmt.Errorf("%s: %s: %w", label, rel, err)
			}
			if hdr.Mode&^0o777&0o7777 != 0 {
				warn(fmt.Sprintf("%s: %s: dropped setuid/setgid/sticky bits", label, rel))
			}
			if err := writeEntry(ctx, dst, name, tr, fileModeFor(fs.FileMode(hdr.Mode))); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%s: %s: duplicate entry: %w", label, rel, manifest.ErrVerify)
				}
				return fmt.Errorf("%s: %s: %w", label, rel, err)
			}
		case tar.TypeSymlink:
			if reason := unsafeLink(rel, hdr.Linkname); reason != "" {
				warn(fmt.Sprintf("%s: skipped symlink %s -> %s: %s", label, rel, hdr.Linkname, reason))
				continue
			}
			if err := dst.MkdirAll(path.Dir(name), 0o755); err != nil {
				return fmt.Errorf("%s: %s: %w", label, rel, err)
			}
			if err := dst.Symlink(hdr.Linkname, name); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%s: %s: duplicate entry: %w", label, rel, manifest.ErrVerify)
				}
				return fmt.Errorf("%s: %s: %w", label, rel, err)
			}
			links[rel] = true
		case tar.TypeLink:
			warn(fmt.Sprintf("%s: skipped hard link %s -> %s", label, rel, hdr.Linkname))
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			warn(fmt.Sprintf("%s: skipped special file %s", label, rel))
		default:
			warn(fmt.Sprintf("%s: skipped %s: unsupported tar entry type %q", label, rel, hdr.Typeflag))
		}
	}
	if top == "" {
		return fmt.Errorf("%s: empty archive: %w", label, manifest.ErrVerify)
	}
	// A link that is inside read lexically may still leave the tree
	// through another link ("a/up -> .." makes "x -> a/up/.." point above
	// the tree), whatever the order the archive created them in.
	if err := dropEscapingLinks(dst, dir, func(rel, target string) {
		warn(fmt.Sprintf("%s: skipped symlink %s -> %s: resolves outside the source tree through another symlink", label, rel, target))
	}); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	// Directory modes last, deepest first, once nothing more is written.
	names := make([]string, 0, len(dirModes))
	for n := range dirModes {
		names = append(names, n)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		if err := dst.Chmod(n, dirModes[n]); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
	return nil
}

func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// splitTop cleans a tar entry name, refuses unsafe ones, and strips the top
// folder, which must be the same for every entry (*top remembers it).
func splitTop(name string, top *string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry with an empty or binary name")
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path %q", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("unsafe path %q", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", fmt.Errorf("entry %q names the archive root", name)
	}
	first, rest, _ := strings.Cut(clean, "/")
	if *top == "" {
		*top = first
	} else if first != *top {
		return "", fmt.Errorf("entry %q is outside the top folder %q", name, *top)
	}
	return rest, nil
}

// underLink returns the symlink among rel's parent folders, or "". Nothing
// is created through a symlink, so the lexical check of unsafeLink stays
// true of the real tree.
func underLink(rel string, links map[string]bool) string {
	if len(links) == 0 {
		return ""
	}
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && links[rel[:i]] {
			return rel[:i]
		}
	}
	return ""
}

// unsafeLink says why a symlink at rel (relative to the tree root) pointing
// to target must not be created, or "" when it stays inside the tree.
func unsafeLink(rel, target string) string {
	switch {
	case target == "":
		return "empty target"
	case strings.ContainsRune(target, 0):
		return "binary target"
	case path.IsAbs(target):
		return "absolute target"
	}
	resolved := path.Join(path.Dir(rel), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return "points outside the source tree"
	}
	return ""
}

// writeEntry creates name exclusively in dst, copies r into it and sets mode
// exactly (independent of the umask).
func writeEntry(ctx context.Context, dst *os.Root, name string, r io.Reader, mode fs.FileMode) error {
	f, err := dst.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, ctxio.NewReader(ctx, r))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = dst.Remove(name)
		return err
	}
	return dst.Chmod(name, mode)
}

// maxLinkHops bounds the symlinks followed while resolving one link (as
// the kernel's ELOOP limit does).
const maxLinkHops = 40

// escapes reports whether the symlink at rel (relative to dir in root)
// really resolves outside dir, following the other symlinks on its way as
// the kernel would. A missing component is taken lexically; a loop, an
// absolute or unreadable link counts as escaping.
func escapes(root *os.Root, dir, rel string) bool {
	target, err := root.Readlink(dir + "/" + rel)
	if err != nil || target == "" || path.IsAbs(target) {
		return true
	}
	var cur []string
	if d := path.Dir(rel); d != "." {
		cur = strings.Split(d, "/")
	}
	pending := strings.Split(target, "/")
	hops := 0
	for len(pending) > 0 {
		el := pending[0]
		pending = pending[1:]
		switch el {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return true
			}
			cur = cur[:len(cur)-1]
			continue
		}
		p := dir + "/" + path.Join(append(cur[:len(cur):len(cur)], el)...)
		st, err := root.Lstat(p)
		if err == nil && st.Mode()&fs.ModeSymlink != 0 {
			if hops++; hops > maxLinkHops {
				return true
			}
			t, err := root.Readlink(p)
			if err != nil || t == "" || path.IsAbs(t) {
				return true
			}
			pending = append(strings.Split(t, "/"), pending...)
			continue
		}
		cur = append(cur, el)
	}
	return false
}

// dropEscapingLinks removes every symlink below dir that really resolves
// outside dir (see escapes), telling drop about each, until none is left.
func dropEscapingLinks(root *os.Root, dir string, drop func(rel, target string)) error {
	for {
		var bad []string
		err := fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			rel := strings.TrimPrefix(p, dir+"/")
			if escapes(root, dir, rel) {
				bad = append(bad, rel)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(bad) == 0 {
			return nil
		}
		for _, rel := range bad {
			target, _ := root.Readlink(dir + "/" + rel)
			drop(rel, target)
			if err := root.Remove(dir + "/" + rel); err != nil {
				return err
			}
		}
	}
}
