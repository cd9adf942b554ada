package staging

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/internal/beneath"
)

// projectsRel is the projects folder relative to the root.
const projectsRel = "work/staging/projects"

// openProjects opens R/work/staging/projects on a handle: the root by path
// (the administrator's choice), then work, staging and projects, each a
// real folder, never a symlink (internal/beneath). It returns nil, nil when
// the projects folder does not exist yet (install creates it).
func openProjects(rootDir *beneath.Dir) (*beneath.Dir, error) {
	d, err := rootDir.OpenDir(projectsRel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, beneath.ErrSymlink):
		return nil, fmt.Errorf("%s: a folder on the way is a symlink or not a folder; refusing to read or stage through it (replace it with a real folder)", ProjectsDir(rootDir.Name))
	case err != nil:
		return nil, fmt.Errorf("staging folder: %w", err)
	}
	return d, nil
}

// lstatAt is lstat of rel below d (its folders opened without following
// symlinks). A missing path wraps fs.ErrNotExist; a symlink on the way
// wraps beneath.ErrSymlink.
func lstatAt(d *beneath.Dir, rel string) (*unix.Stat_t, error) {
	dir, name := path.Split(rel)
	if dir == "" {
		return d.Lstat(name)
	}
	p, err := d.OpenDir(path.Clean(dir))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Lstat(name)
}
