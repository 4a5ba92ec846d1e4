package mountopts

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// CredFile is the users' credentials file: a flat JSON object of strings.
// A trailing comma before the closing brace is accepted, since that is how
// the files our users already have look.
type CredFile struct {
	Endpoint          string // ENDPOINT, e.g. http://127.0.0.1:9000
	AccessKey         string // ACCESS_KEY
	SecretKey         string // SECRET_KEY
	SessionToken      string // SESSION_TOKEN
	Region            string // REGION
	CAFile            string // CA_FILE
	PublicBucket      string // PUBLIC_BUCKET, mounted at PublicMountpoint
	PrivateBucket     string // PRIVATE_BUCKET, mounted at PrivateMountpoint
	PublicMountpoint  string // PUBLIC_MOUNTPOINT, default /kfs_public
	PrivateMountpoint string // PRIVATE_MOUNTPOINT, default /kfs_private
	EventsToken       string // EVENTS_TOKEN: the auth token MinIO sends to the events webhook
	Unknown           []string
}

var credKeys = map[string]func(*CredFile) *string{
	"ENDPOINT":           func(c *CredFile) *string { return &c.Endpoint },
	"ACCESS_KEY":         func(c *CredFile) *string { return &c.AccessKey },
	"SECRET_KEY":         func(c *CredFile) *string { return &c.SecretKey },
	"SESSION_TOKEN":      func(c *CredFile) *string { return &c.SessionToken },
	"REGION":             func(c *CredFile) *string { return &c.Region },
	"CA_FILE":            func(c *CredFile) *string { return &c.CAFile },
	"PUBLIC_BUCKET":      func(c *CredFile) *string { return &c.PublicBucket },
	"PRIVATE_BUCKET":     func(c *CredFile) *string { return &c.PrivateBucket },
	"PUBLIC_MOUNTPOINT":  func(c *CredFile) *string { return &c.PublicMountpoint },
	"PRIVATE_MOUNTPOINT": func(c *CredFile) *string { return &c.PrivateMountpoint },
	"EVENTS_TOKEN":       func(c *CredFile) *string { return &c.EventsToken },
}

// ReadCredFile reads and parses path. It refuses a file that group or others
// can read or write, because it holds a secret key.
func ReadCredFile(path string) (CredFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return CredFile{}, fmt.Errorf("credentials file: %v", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return CredFile{}, fmt.Errorf("credentials file %s has mode %04o: it holds a secret key, so kfs refuses it unless only its owner can read it (chmod 600 %s)", path, perm, path)
	}
	if st.Size() > 1<<20 {
		return CredFile{}, fmt.Errorf("credentials file %s: larger than 1 MiB", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return CredFile{}, fmt.Errorf("credentials file: %v", err)
	}
	c, err := ParseCredFile(data)
	if err != nil {
		return CredFile{}, fmt.Errorf("credentials file %s: %v", path, err)
	}
	return c, nil
}

// ParseCredFile parses the file's bytes.
func ParseCredFile(data []byte) (CredFile, error) {
	var raw map[string]any
	if err := json.Unmarshal(StripTrailingCommas(data), &raw); err != nil {
		return CredFile{}, fmt.Errorf("not a JSON object of strings: %v", err)
	}
	var c CredFile
	for k, v := range raw {
		field, ok := credKeys[strings.ToUpper(k)]
		if !ok {
			c.Unknown = append(c.Unknown, k)
			continue
		}
		s, ok := v.(string)
		if !ok {
			return CredFile{}, fmt.Errorf("%s: want a string value", k)
		}
		*field(&c) = strings.TrimSpace(s)
	}
	sort.Strings(c.Unknown)
	return c, nil
}

// StripTrailingCommas removes commas that directly precede (modulo white
// space, and other such commas) a closing '}' or ']' outside string
// literals, turning the relaxed JSON people write by hand into strict JSON.
// Everything else is unchanged.
func StripTrailingCommas(in []byte) []byte {
	out := make([]byte, 0, len(in))
	inString, escaped := false, false
	var pending []int // indexes in out of commas that may be trailing
	for _, b := range in {
		if inString {
			out = append(out, b)
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		switch b {
		case ' ', '\t', '\n', '\r':
			out = append(out, b)
			continue
		case ',':
			pending = append(pending, len(out))
			out = append(out, b)
			continue
		case '}', ']':
			for i := len(pending) - 1; i >= 0; i-- {
				out = append(out[:pending[i]], out[pending[i]+1:]...)
			}
		case '"':
			inString = true
		}
		pending = pending[:0]
		out = append(out, b)
	}
	return out
}
