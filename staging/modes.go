package staging

import (
	"io/fs"
	"os"
)

// Modes are policy, not input: tar header modes are not covered by the
// bundle's signature, and a build may leave anything, so ccmirror decides
// every mode it stages. Nothing it stages is group- or world-writable, and
// nothing is setuid, setgid or sticky.
const (
	blobMode = 0o644 // every blob
	fileMode = 0o644 // a file of the version folder
	execMode = 0o755 // a file of the version folder that was executable
	dirMode  = 0o755 // every folder
)

// fileModeFor is the policy mode of a version-folder file that had mode m
// in the source archive or the build output: 0755 if any execute bit was
// set, else 0644.
func fileModeFor(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return execMode
	}
	return fileMode
}

// applyModePolicy gives every folder (dir included) and file below dir in
// root its policy mode. Symlinks are left alone (their mode means nothing
// on Linux); sanitizeOutput has dropped everything else.
func applyModePolicy(root *os.Root, dir string) error {
	return fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch t := d.Type(); {
		case t.IsDir():
			return root.Chmod(p, dirMode)
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return root.Chmod(p, fileModeFor(info.Mode()))
		}
		return nil
	})
}
