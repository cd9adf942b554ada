package staging

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultRoot is CycleCloud's installation folder.
const DefaultRoot = "/opt/cycle_server"

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

// StateDir is the folder where ccmirror keeps its own state for the staging
// root (lock, journal, install records, temporary folders, and the index
// sequences update accepted). Code outside staging names state paths only
// through it.
func StateDir(root string) string { return filepath.Join(root, "work", "ccmirror") }

// RecordsDir is where Install writes its install records.
func RecordsDir(root string) string { return filepath.Join(StateDir(root), "records") }

// tmpRoot holds the temporary folder of each running (or interrupted)
// install, with its journal.
func tmpRoot(root string) string { return filepath.Join(StateDir(root), "tmp") }

// lockPath is the staging lock of root.
func lockPath(root string) string { return filepath.Join(StateDir(root), "lock") }
