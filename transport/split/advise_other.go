//go:build !linux

package split

import "os"

func sequential(*os.File) {}

func willNeed(string, int64) {}
