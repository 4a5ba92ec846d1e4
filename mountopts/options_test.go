package mountopts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var baseEnv = map[string]string{"KFS_ENDPOINT": "http://127.0.0.1:9000", "KFS_ACCESS_KEY": "ak", "KFS_SECRET_KEY": "secretkey"}

func writeCred(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cred.json")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseMounts(t *testing.T) {
	o, err := Parse([]string{"--cache-size", "128MiB", "bucket-a:some/pre/", "/mnt/x", "-o", "ro,uid=12,attr_ttl=2s,_netdev"}, envOf(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := Mount{Bucket: "bucket-a", Prefix: "some/pre/", Mountpoint: "/mnt/x"}
	if len(o.Mounts) != 1 || o.Mounts[0] != want {
		t.Fatalf("mounts %+v, want %+v", o.Mounts, want)
	}
	if !o.ReadOnly || o.UID != 12 || o.AttrTTL != 2*time.Second || o.CacheSize != 128<<20 {
		t.Fatalf("options not applied: %+v", o)
	}
	if o.Endpoint != "http://127.0.0.1:9000" || o.AccessKey != "ak" || o.Region != "us-east-1" {
		t.Fatalf("env/defaults not applied: %+v", o)
	}

	dc, err := Parse([]string{"b-1", "/m", "-o", "disk_cache_size=2GiB,passthrough=false"}, envOf(baseEnv))
	if err != nil || dc.DiskCache != 2<<30 || dc.Passthrough {
		t.Fatalf("disk cache options: %+v %v", dc, err)
	}
	if d, _ := Parse([]string{"b-1", "/m"}, envOf(baseEnv)); d.DiskCache != 0 || !d.Passthrough || d.WriteBack {
		t.Fatalf("disk cache defaults: off, passthrough on; write-back off: %+v", d)
	}
	if wb, err := Parse([]string{"b-1", "/m", "-o", "write_back"}, envOf(baseEnv)); err != nil || !wb.WriteBack {
		t.Fatalf("-o write_back: %+v %v", wb, err)
	}

	all, err := Parse([]string{"/mnt/all"}, envOf(baseEnv))
	if err != nil || len(all.Mounts) != 1 || all.Mounts[0].Bucket != "" {
		t.Fatalf("all-buckets mount: %+v %v", all.Mounts, err)
	}
}

func TestParseConfigFile(t *testing.T) {
	p := writeCred(t, `{ "ACCESS_KEY": "fileak", "SECRET_KEY": "filesecret", "PRIVATE_BUCKET": "private-storage-6583",
  "PUBLIC_BUCKET": "shared-storage", "ENDPOINT": "http://127.0.0.1:9999", "COLOUR": "blue", }`, 0o600)
	o, err := Parse([]string{"--config", p, "--private-mountpoint", "/tmp/priv"}, envOf(map[string]string{"KFS_ACCESS_KEY": "envak"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.AccessKey != "envak" || o.SecretKey != "filesecret" || o.Endpoint != "http://127.0.0.1:9999" {
		t.Fatalf("precedence env > file broken: %+v", o)
	}
	want := []Mount{{Bucket: "shared-storage", Mountpoint: "/kfs_public"}, {Bucket: "private-storage-6583", Mountpoint: "/tmp/priv"}}
	if len(o.Mounts) != 2 || o.Mounts[0] != want[0] || o.Mounts[1] != want[1] {
		t.Fatalf("mounts %+v, want %+v", o.Mounts, want)
	}
	if len(o.Warnings) != 1 || !strings.Contains(o.Warnings[0], "COLOUR") {
		t.Fatalf("warnings %q", o.Warnings)
	}
	// A flag beats the file and the environment.
	o, err = Parse([]string{"--config", p, "--access-key", "flagak", "shared-storage", "/m"}, envOf(map[string]string{"KFS_ACCESS_KEY": "envak"}))
	if err != nil || o.AccessKey != "flagak" || len(o.Mounts) != 1 {
		t.Fatalf("flag precedence: %+v %v", o, err)
	}
}

func TestParseErrors(t *testing.T) {
	loose := writeCred(t, `{"ACCESS_KEY":"a","SECRET_KEY":"b","PUBLIC_BUCKET":"shared-storage"}`, 0o644)
	bad := writeCred(t, `{"ACCESS_KEY": 5}`, 0o600)
	empty := writeCred(t, `{"ACCESS_KEY":"a","SECRET_KEY":"b"}`, 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"--bogus", "b-1", "/m"}, baseEnv, `unknown flag "-bogus"`},
		{"mistyped flag", []string{"--entry-tl", "1s", "b-1", "/m"}, baseEnv, "did you mean --entry-ttl?"},
		{"mistyped -o", []string{"-o", "entry_tl=1s", "b-1", "/m"}, baseEnv, "did you mean entry_ttl?"},
		{"unknown -o", []string{"-o", "frobnicate=1", "b-1", "/m"}, baseEnv, "unknown mount option"},
		{"bad size", []string{"--cache-size", "lots", "b-1", "/m"}, baseEnv, "size"},
		{"tiny disk cache", []string{"--disk-cache-size", "1MiB", "b-1", "/m"}, baseEnv, "disk-cache-size 1MiB: want 0 (off) or at least 64MiB"},
		{"bad mode", []string{"--file-mode", "999", "b-1", "/m"}, baseEnv, "mode"},
		{"write-back read-only", []string{"-o", "ro,write_back", "b-1", "/m"}, baseEnv, "write-back and read-only exclude each other"},
		{"bad ttl", []string{"--attr-ttl", "-3s", "b-1", "/m"}, baseEnv, "duration"},
		{"bad bucket", []string{"Bad_Bucket", "/m"}, baseEnv, "bucket"},
		{"bad prefix", []string{"bucket:a//b", "/m"}, baseEnv, "prefix"},
		{"no endpoint", []string{"b-1", "/m"}, map[string]string{"KFS_ACCESS_KEY": "a", "KFS_SECRET_KEY": "b"}, "no endpoint"},
		{"bad endpoint", []string{"b-1", "/m"}, map[string]string{"KFS_ENDPOINT": "ftp://x", "KFS_ACCESS_KEY": "a", "KFS_SECRET_KEY": "b"}, "endpoint"},
		{"no creds", []string{"b-1", "/m"}, map[string]string{"KFS_ENDPOINT": "http://x"}, "no credentials"},
		{"mixed schemes", []string{"--endpoint", "http://a:9000,https://b:9000", "b-1", "/m"}, baseEnv, "share a scheme"},
		{"bad node", []string{"--endpoint", "http://a:9000,b:9000", "b-1", "/m"}, baseEnv, `endpoint "b:9000"`},
		{"node with path", []string{"--endpoint", "http://a:9000,http://b:9000/x", "b-1", "/m"}, baseEnv, "path"},
		{"only commas", []string{"--endpoint", " , ", "b-1", "/m"}, baseEnv, "no URL"},
		{"nothing", nil, baseEnv, "nothing to mount"},
		{"too many", []string{"a", "b", "c"}, baseEnv, "too many"},
		{"loose cred file", []string{"--config", loose}, baseEnv, "chmod 600"},
		{"missing cred file", []string{"--config", "/nonexistent/x.json"}, baseEnv, "no such file"},
		{"bad cred json", []string{"--config", bad}, baseEnv, "string"},
		{"cred no buckets", []string{"--config", empty}, baseEnv, "neither PUBLIC_BUCKET"},
		{"tiny cache", []string{"--cache-size", "1MiB", "b-1", "/m"}, baseEnv, "cache-size"},
		{"tiny block", []string{"--block-size", "1k", "b-1", "/m"}, baseEnv, "block-size"},
		{"readahead", []string{"--max-readahead", "1GiB", "b-1", "/m"}, baseEnv, "max-readahead"},
		{"-o needs value", []string{"-o", "uid", "b-1", "/m"}, baseEnv, "needs a value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.args, envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "4KiB": 4096, "4K": 4096, "64MiB": 64 << 20, "1G": 1 << 30, "2MB": 2e6, " 8 M": 8 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5M", "99999999999T"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if FormatSize(64<<20) != "64MiB" || FormatSize(1000) != "1000" {
		t.Errorf("FormatSize wrong")
	}
}

func TestStripTrailingCommas(t *testing.T) {
	cases := map[string]string{
		`{"a":"b",}`:          `{"a":"b"}`,
		"{\"a\":\"b\",\n }":   "{\"a\":\"b\"\n }",
		`{"a":"x,}",}`:        `{"a":"x,}"}`,
		`{"a":"q\",}",}`:      `{"a":"q\",}"}`,
		`[1,2,]`:              `[1,2]`,
		`{"a":"b","c":"d"}`:   `{"a":"b","c":"d"}`,
		`{"a":[1,],"b":{},}`:  `{"a":[1],"b":{}}`,
		`{"a":"\\",}`:         `{"a":"\\"}`,
		`{"a":"b" , }`:        `{"a":"b"  }`,
		`,}`:                  `}`,
		`{"unterminated,}`:    `{"unterminated,}`,
		`{"k":"v",,}`:         `{"k":"v"}`,
		`{"k":"v"} trailing,`: `{"k":"v"} trailing,`,
	}
	for in, want := range cases {
		if got := string(StripTrailingCommas([]byte(in))); got != want {
			t.Errorf("StripTrailingCommas(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseCredFile(f *testing.F) {
	f.Add([]byte(`{ "ACCESS_KEY": "a", "SECRET_KEY": "b", "PRIVATE_BUCKET": "p", "PUBLIC_BUCKET": "s", }`))
	f.Add([]byte(`{"a":"x,}",}`))
	f.Add([]byte(`[1,2,]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := StripTrailingCommas(data)
		if len(out) > len(data) {
			t.Fatalf("grew: %q -> %q", data, out)
		}
		// Idempotent: a second pass over strict output changes nothing.
		if again := StripTrailingCommas(out); string(again) != string(out) && validJSONish(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", data, out, again)
		}
		c, err := ParseCredFile(data)
		if err == nil && c.AccessKey != strings.TrimSpace(c.AccessKey) {
			t.Fatalf("untrimmed key %q", c.AccessKey)
		}
	})
}

// validJSONish: output whose strings are all closed (the only case where
// idempotence is promised).
func validJSONish(b []byte) bool {
	in, esc := false, false
	for _, c := range b {
		switch {
		case in && esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		}
	}
	return !in
}

func FuzzParseArgs(f *testing.F) {
	f.Add("-o", "ro,uid=3,cache_size=64M", "b-1:p/q")
	f.Add("--attr-ttl", "1s", "/mnt")
	f.Add("-o", "block_size=1k", "x")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		o, err := Parse([]string{a, b, c, "/m"}, envOf(baseEnv))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if verr := o.Validate(); verr != nil {
			t.Fatalf("Parse accepted options Validate rejects: %v", verr)
		}
	})
}

// A small cache alone is fine: the default readahead follows it; an
// explicit readahead too large for the cache is still refused.
func TestSmallCacheScalesDefaultReadahead(t *testing.T) {
	o, err := Parse([]string{"--cache-size", "16MiB", "/mnt/x"}, envOf(baseEnv))
	if err != nil || o.MaxReadahead != 8<<20 {
		t.Fatalf("cache 16MiB: readahead %d, %v", o.MaxReadahead, err)
	}
	if _, err := Parse([]string{"--cache-size", "16MiB", "--max-readahead", "12MiB", "/mnt/x"}, envOf(baseEnv)); err == nil || !strings.Contains(err.Error(), "max-readahead") {
		t.Fatalf("explicit readahead over half the cache: %v", err)
	}
}

// Several endpoints are the nodes of one cluster: the first is the
// endpoint, the others its failover list.
func TestEndpointList(t *testing.T) {
	o, err := Parse([]string{"--endpoint", "http://10.0.0.1:9000, http://10.0.0.2:9000,,http://10.0.0.3:9000", "b-1", "/m"}, envOf(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	if o.Endpoint != "http://10.0.0.1:9000" || len(o.Failover) != 2 || o.Failover[0] != "http://10.0.0.2:9000" || o.Failover[1] != "http://10.0.0.3:9000" {
		t.Fatalf("endpoint %q, failover %q", o.Endpoint, o.Failover)
	}
	o, err = Parse([]string{"--endpoint", "http://one:9000", "b-1", "/m"}, envOf(baseEnv))
	if err != nil || o.Endpoint != "http://one:9000" || len(o.Failover) != 0 {
		t.Fatalf("one endpoint: %q %q %v", o.Endpoint, o.Failover, err)
	}
}
