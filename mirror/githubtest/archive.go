package githubtest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Archive kinds served by the download host.
const (
	kindTarGz       = "tar.gz"        // /archive/refs/tags/TAG.tar.gz, top folder REPO-TAG/
	kindZip         = "zip"           // /archive/refs/tags/TAG.zip
	kindLegacyTarGz = "legacy.tar.gz" // API tarball, top folder OWNER-REPO-SHORTSHA/
	kindLegacyZip   = "legacy.zip"    // API zipball
)

// archivePrefix is the top folder GitHub gives an archive: REPO-TAG for tag
// archives (a leading "v" of a version tag dropped, as GitHub does) and
// OWNER-REPO-SHORTSHA for API tarballs.
func archivePrefix(rel *release, kind string) string {
	if kind == kindLegacyTarGz || kind == kindLegacyZip {
		return rel.repo.owner + "-" + rel.repo.name + "-" + rel.commit[:7]
	}
	tag := rel.tag
	if len(tag) > 1 && tag[0] == 'v' && isDigit(tag[1]) {
		tag = tag[1:]
	}
	return rel.repo.name + "-" + strings.ReplaceAll(tag, "/", "-")
}

// archiveFilename is the Content-Disposition file name GitHub sends.
func archiveFilename(rel *release, kind string) string {
	switch kind {
	case kindLegacyTarGz:
		return rel.repo.owner + "-" + rel.repo.name + "-" + rel.tag + "-0-g" + rel.commit[:7] + ".tar.gz"
	case kindLegacyZip:
		return rel.repo.owner + "-" + rel.repo.name + "-" + rel.tag + "-0-g" + rel.commit[:7] + ".zip"
	case kindZip:
		return archivePrefix(rel, kind) + ".zip"
	}
	return archivePrefix(rel, kind) + ".tar.gz"
}

// archive returns the cached bytes of one archive of a release, building it
// on first use. Archives are small (filler text compresses well) and must
// be byte-identical on every request.
func (s *Server) archive(rel *release, kind string) ([]byte, error) {
	rel.archMu.Lock()
	defer rel.archMu.Unlock()
	if b, ok := rel.archives[kind]; ok {
		return b, nil
	}
	items := archiveItems(rel.tree)
	var b []byte
	var err error
	prefix := archivePrefix(rel, kind)
	switch kind {
	case kindTarGz, kindLegacyTarGz:
		b, err = buildTarGz(rel, prefix, items, s.umask)
	case kindZip, kindLegacyZip:
		b, err = buildZip(rel, prefix, items, s.umask)
	default:
		err = fmt.Errorf("unknown archive kind %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("githubtest: archive %s@%s: %w", rel.repo.full(), rel.tag, err)
	}
	if rel.archives == nil {
		rel.archives = map[string][]byte{}
	}
	rel.archives[kind] = b
	return b, nil
}

// archiveItem is one archive entry: a directory (dir true, path without a
// trailing slash) or a tree entry.
type archiveItem struct {
	dir   bool
	entry treeEntry
}

func (it archiveItem) sortKey() string {
	if it.dir || it.entry.mode == modeGitlink {
		return it.entry.path + "/"
	}
	return it.entry.path
}

// archiveItems lists the tree's entries plus every directory they imply,
// in git's tree order (a directory sorts as "name/", before its contents).
func archiveItems(tree []treeEntry) []archiveItem {
	dirs := map[string]bool{}
	var items []archiveItem
	for _, e := range tree {
		for d := path.Dir(e.path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			items = append(items, archiveItem{dir: true, entry: treeEntry{path: d}})
		}
		items = append(items, archiveItem{entry: e})
	}
	slices.SortFunc(items, func(a, b archiveItem) int { return strings.Compare(a.sortKey(), b.sortKey()) })
	return items
}

// fileContent is the content of a tree file in a synthesized archive: the
// real project.ini at the top, what Options.Content gives, deterministic
// filler text of the recorded size for anything else.
func fileContent(rel *release, e treeEntry) []byte {
	if e.path == "project.ini" {
		return rel.projectINI
	}
	if e.content != nil {
		return e.content
	}
	return filler(e.path, e.size)
}

// filler makes size bytes of plain text that name the file, so archives
// compress well and a unpacked tree is recognisable.
func filler(p string, size int64) []byte {
	var b bytes.Buffer
	b.Grow(int(size))
	switch ext := path.Ext(p); {
	case ext == ".sh" && size >= 10:
		b.WriteString("#!/bin/sh\n")
	case ext == ".py" && size >= 22:
		b.WriteString("#!/usr/bin/env python\n")
	}
	for i := 1; int64(b.Len()) < size; i++ {
		b.WriteString("# ")
		b.WriteString(p)
		b.WriteString(": filler line ")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("\n")
	}
	return b.Bytes()[:size]
}

// symlinkTarget makes the absolute, author's-laptop style target that the
// real pbspro symlink has, padded or cut to the size tree.tsv records.
func symlinkTarget(p string, size int64) string {
	if size <= 0 {
		return ""
	}
	base := "/Users/someone/"
	tail := "/" + path.Base(p)
	if int64(len(base)+len(tail)+1) > size {
		return ("/" + strings.Repeat("x", int(size)))[:size]
	}
	pad := int(size) - len(base) - len(tail)
	return base + strings.Repeat("work", pad/4+1)[:pad] + tail
}

// entryMode maps a git mode to the permission bits git archive writes:
// 0666/0777 for files/executables and 0777 for directories, less the umask;
// symlinks stay 0777.
func entryMode(it archiveItem, umask fs.FileMode) int64 {
	switch {
	case it.dir || it.entry.mode == modeGitlink:
		return int64(0o777 &^ umask)
	case it.entry.mode == modeSymlink:
		return 0o777
	case it.entry.mode == modeExec:
		return int64(0o777 &^ umask)
	}
	return int64(0o666 &^ umask)
}

// countWriter counts bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// buildTarGz writes a tar.gz the way git archive does: a pax global header
// whose comment is the commit id, the top folder, every directory and file
// with the commit time as mtime, root/root ownership, and zero padding to a
// 10240-byte record; gzip without name or mtime.
func buildTarGz(rel *release, prefix string, items []archiveItem, umask fs.FileMode) ([]byte, error) {
	var out bytes.Buffer
	gz, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	gz.OS = 3 // Unix, like git archive's gzip
	cw := &countWriter{w: gz}
	tw := tar.NewWriter(cw)
	mtime := rel.commitTime
	if err := tw.WriteHeader(&tar.Header{
		Typeflag:   tar.TypeXGlobalHeader,
		Name:       "pax_global_header",
		PAXRecords: map[string]string{"comment": rel.commit},
	}); err != nil {
		return nil, err
	}
	hdr := func(name string, typ byte, mode int64) *tar.Header {
		return &tar.Header{
			Name: name, Typeflag: typ, Mode: mode, ModTime: mtime,
			Uname: "root", Gname: "root",
		}
	}
	if err := tw.WriteHeader(hdr(prefix+"/", tar.TypeDir, int64(0o777&^umask))); err != nil {
		return nil, err
	}
	for _, it := range items {
		name := prefix + "/" + it.entry.path
		mode := entryMode(it, umask)
		switch {
		case it.dir || it.entry.mode == modeGitlink:
			err = tw.WriteHeader(hdr(name+"/", tar.TypeDir, mode))
		case it.entry.mode == modeSymlink:
			h := hdr(name, tar.TypeSymlink, mode)
			h.Linkname = symlinkTarget(it.entry.path, it.entry.size)
			err = tw.WriteHeader(h)
		default:
			data := fileContent(rel, it.entry)
			h := hdr(name, tar.TypeReg, mode)
			h.Size = int64(len(data))
			if err = tw.WriteHeader(h); err == nil {
				_, err = tw.Write(data)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if pad := (10240 - cw.n%10240) % 10240; pad > 0 {
		if _, err := cw.Write(make([]byte, pad)); err != nil {
			return nil, err
		}
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// buildZip writes the zip GitHub serves for the same tree: directories,
// files and symlinks with the commit time, and the commit id as the
// archive comment (as git archive --format=zip does).
func buildZip(rel *release, prefix string, items []archiveItem, umask fs.FileMode) ([]byte, error) {
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	if err := zw.SetComment(rel.commit); err != nil {
		return nil, err
	}
	add := func(name string, mode fs.FileMode, method uint16, data []byte) error {
		fh := &zip.FileHeader{Name: name, Method: method, Modified: rel.commitTime}
		fh.SetMode(mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	if err := add(prefix+"/", fs.ModeDir|(0o777&^umask), zip.Store, nil); err != nil {
		return nil, err
	}
	for _, it := range items {
		name := prefix + "/" + it.entry.path
		mode := fs.FileMode(entryMode(it, umask))
		var err error
		switch {
		case it.dir || it.entry.mode == modeGitlink:
			err = add(name+"/", fs.ModeDir|mode, zip.Store, nil)
		case it.entry.mode == modeSymlink:
			err = add(name, fs.ModeSymlink|mode, zip.Store, []byte(symlinkTarget(it.entry.path, it.entry.size)))
		default:
			err = add(name, mode, zip.Deflate, fileContent(rel, it.entry))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
