package fs

import (
	"fmt"
	"strings"
)

// maxNameLen is the longest file name Linux accepts (NAME_MAX).
const maxNameLen = 255

// checkName says why an S3 key segment cannot be a file name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "empty path segment"
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a usable file name", name)
	case len(name) > maxNameLen:
		return fmt.Sprintf("name longer than %d bytes", maxNameLen)
	case strings.ContainsRune(name, 0):
		return "NUL byte in name"
	}
	return ""
}
