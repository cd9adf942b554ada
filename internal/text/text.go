// Package text holds the small formatting idioms shared by every package:
// byte counts for people and messages folded onto one line.
package text

import (
	"fmt"
	"strconv"
	"strings"
)

// HumanBytes renders n bytes with a binary unit ("512 B", "1.5 MiB").
func HumanBytes(n int64) string {
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

// OneLine folds s onto a single line: line breaks become "; " and runs of
// white space one space.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}
