//go:build !linux

package diskhint

import "os"

// StartWriteback does nothing where sync_file_range does not exist.
func StartWriteback(*os.File, int64, int64) {}

// Sequential does nothing where posix_fadvise is not used.
func Sequential(*os.File) {}

// WillNeed does nothing where posix_fadvise is not used.
func WillNeed(string, int64) {}
