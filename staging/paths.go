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

// resolveState is the absolute state folder: dir, or StateDir(root).
func resolveState(root, dir string) (string, error) {
	if dir == "" {
		return StateDir(root), nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("state folder %s: %w", dir, err)
	}
	return abs, nil
}
