package xattrs

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckMetaName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{{"owner", true}, {"Owner-Team_2", true}, {"bad name", false}, {"café", false}, {"", false}, {strings.Repeat("a", 129), false}} {
		err := CheckMetaName(c.name)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("CheckMetaName(%q) = %v", c.name, err)
		}
	}
}

func TestParseNames(t *testing.T) {
	cases := []struct {
		in     string
		want   Name
		ok     bool
		object bool
		bucket bool
		ro     bool
	}{
		{"user.s3.tag.project", Name{Tag, "project"}, true, true, true, false},
		{"user.s3.tag.a.b", Name{Tag, "a.b"}, true, true, true, false},
		{"user.s3.tags", Name{Kind: Tags}, true, true, true, false},
		{"user.s3.retention", Name{Kind: Retention}, true, true, false, false},
		{"user.s3.legal-hold", Name{Kind: LegalHold}, true, true, false, false},
		{"user.s3.meta.Owner-Team", Name{Meta, "owner-team"}, true, true, false, false},
		{"user.s3.content-type", Name{Kind: ContentType}, true, true, false, false},
		{"user.s3.etag", Name{Kind: ETag}, true, true, false, true},
		{"user.s3.version-id", Name{Kind: VersionID}, true, true, false, true},
		{"user.s3.storage-class", Name{Kind: StorageClass}, true, true, false, true},
		{"user.s3.versioning", Name{Kind: Versioning}, true, false, true, false},
		{"user.s3.object-lock", Name{Kind: ObjectLock}, true, false, true, false},
		{"user.s3.tag.", Name{}, false, false, false, false},
		{"user.s3.meta.", Name{}, false, false, false, false},
		{"user.s3.meta.bad name", Name{Meta, "bad name"}, true, true, false, false}, // served, refused by CheckMetaName on set
		{"user.s3.other", Name{}, false, false, false, false},
		{"security.selinux", Name{}, false, false, false, false},
		{"user.other", Name{}, false, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			n, ok := Parse(c.in)
			if ok != c.ok || n != c.want {
				t.Fatalf("Parse = %+v %v, want %+v %v", n, ok, c.want, c.ok)
			}
			if !ok {
				return
			}
			if n.OnObject() != c.object || n.OnBucket() != c.bucket || n.ReadOnly() != c.ro {
				t.Fatalf("object %v bucket %v ro %v", n.OnObject(), n.OnBucket(), n.ReadOnly())
			}
			if back, _ := Parse(n.String()); back != n {
				t.Fatalf("String() = %q does not parse back", n.String())
			}
		})
	}
}

func TestTags(t *testing.T) {
	good := map[string]string{
		"":                            "",
		"a=1":                         "a=1",
		"project=kfs&team=data":       "project=kfs&team=data",
		"team=data&project=kfs":       "project=kfs&team=data",
		"k=hello+world&x=a%2Fb":       "k=hello+world&x=a%2Fb",
		"empty=":                      "empty=",
		"path=%2Fdata%2F2020.csv":     "path=%2Fdata%2F2020.csv",
		"caf%C3%A9=%C3%BC":            "caf%C3%A9=%C3%BC",
		"a=1&b=2&c=3&d=4&e=5&f=6&g=7": "a=1&b=2&c=3&d=4&e=5&f=6&g=7",
	}
	for in, want := range good {
		tags, err := ParseTags(in)
		if err != nil {
			t.Errorf("ParseTags(%q): %v", in, err)
			continue
		}
		if got := FormatTags(tags); got != want {
			t.Errorf("FormatTags(ParseTags(%q)) = %q, want %q", in, got, want)
		}
	}
	bad := []string{
		"a=1&a=2",
		"k=%zz",
		"=novalue",
		"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11",
		strings.Repeat("k", 129) + "=v",
		"k=" + strings.Repeat("v", 257),
		"k=semi;colon",
		"aws:reserved=x",
		"k=%00",
	}
	for _, in := range bad {
		if _, err := ParseTags(in); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParseTags(%q) = %v, want EINVAL", in, err)
		}
	}
	if err := CheckTag(strings.Repeat("k", 128), strings.Repeat("v", 256)); err != nil {
		t.Errorf("limits exactly: %v", err)
	}
}

func TestRetention(t *testing.T) {
	d := time.Date(2026, 12, 23, 0, 0, 0, 0, time.UTC)
	good := map[string]RetentionValue{
		"GOVERNANCE 2026-12-23T00:00:00Z":        {Mode: Governance, Until: d},
		"governance 2026-12-23T01:00:00+01:00":   {Mode: Governance, Until: d},
		"COMPLIANCE 2026-12-23T00:00:00Z":        {Mode: Compliance, Until: d},
		"GOVERNANCE 2026-12-23T00:00:00Z bypass": {Mode: Governance, Until: d, Bypass: true},
		"NONE bypass":                            {Bypass: true},
	}
	for in, want := range good {
		got, err := ParseRetention(in)
		if err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "NONE", "LOCKED 2026-12-23T00:00:00Z", "GOVERNANCE tomorrow", "GOVERNANCE", "GOVERNANCE 2026-12-23T00:00:00Z extra"} {
		if _, err := ParseRetention(in); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParseRetention(%q) = %v, want EINVAL", in, err)
		}
	}
	if s := FormatRetention(RetentionValue{Mode: Compliance, Until: d}); s != "COMPLIANCE 2026-12-23T00:00:00Z" {
		t.Errorf("FormatRetention = %q", s)
	}
}

func TestLegalHoldFlagsFitList(t *testing.T) {
	for in, want := range map[string]bool{"ON": true, "on": true, " OFF\n": false} {
		if got, err := ParseLegalHold(in); err != nil || got != want {
			t.Errorf("ParseLegalHold(%q) = %v %v", in, got, err)
		}
	}
	if _, err := ParseLegalHold("yes"); !errors.Is(err, syscall.EINVAL) {
		t.Error("ParseLegalHold(yes) accepted")
	}
	flagCases := []struct {
		flags  uint32
		exists bool
		want   error
	}{
		{0, false, nil}, {0, true, nil},
		{FlagCreate, false, nil}, {FlagCreate, true, ErrExists},
		{FlagReplace, true, nil}, {FlagReplace, false, ErrNoData},
		{FlagCreate | FlagReplace, true, ErrInvalid},
	}
	for _, c := range flagCases {
		if err := CheckFlags(c.flags, c.exists); err != c.want {
			t.Errorf("CheckFlags(%d, %v) = %v, want %v", c.flags, c.exists, err, c.want)
		}
	}
	if n, err := Fit([]byte("value"), nil); n != 5 || err != nil {
		t.Errorf("size query: %d %v", n, err)
	}
	if n, err := Fit([]byte("value"), make([]byte, 3)); n != 5 || err != syscall.ERANGE {
		t.Errorf("short buffer: %d %v", n, err)
	}
	buf := make([]byte, 10)
	if n, err := Fit([]byte("value"), buf); n != 5 || err != nil || string(buf[:n]) != "value" {
		t.Errorf("fit: %d %v", n, err)
	}
	if got := string(List([]string{"user.s3.tags", "user.s3.etag"})); got != "user.s3.tags\x00user.s3.etag\x00" {
		t.Errorf("List = %q", got)
	}
}

func FuzzTags(f *testing.F) {
	f.Add("project=kfs&team=data")
	f.Add("k=%zz&a=")
	f.Add("caf%C3%A9=%C3%BC")
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := ParseTags(s)
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("error not EINVAL: %v", err)
			}
			return
		}
		again, err := ParseTags(FormatTags(tags))
		if err != nil || FormatTags(again) != FormatTags(tags) || len(again) != len(tags) {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}

func FuzzNamesAndValues(f *testing.F) {
	f.Add("user.s3.tag.x", "GOVERNANCE 2026-12-23T00:00:00Z bypass")
	f.Add("user.s3.meta.a", "ON")
	f.Fuzz(func(t *testing.T, name, value string) {
		if n, ok := Parse(name); ok {
			if back, ok2 := Parse(n.String()); !ok2 || back != n {
				t.Fatalf("%q -> %+v -> %q does not round-trip", name, n, n.String())
			}
		}
		if r, err := ParseRetention(value); err == nil && r.Mode != "" {
			back, err := ParseRetention(FormatRetention(r))
			if err != nil || back.Mode != r.Mode || !back.Until.Equal(r.Until) {
				t.Fatalf("retention %q round trip: %+v %v", value, back, err)
			}
		} else if err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("retention error not EINVAL: %v", err)
		}
		if _, err := ParseLegalHold(value); err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("legal hold error not EINVAL: %v", err)
		}
	})
}

func TestApplyTagChange(t *testing.T) {
	base := map[string]string{"a": "1"}
	tag := func(k string) Name { return Name{Kind: Tag, Arg: k} }
	all := Name{Kind: Tags}
	cases := []struct {
		name   string
		n      Name
		value  string
		flags  uint32
		remove bool
		want   string
		err    error
	}{
		{"add", tag("b"), "2", 0, false, "a=1&b=2", nil},
		{"update", tag("a"), "9", FlagReplace, false, "a=9", nil},
		{"create exists", tag("a"), "9", FlagCreate, false, "", ErrExists},
		{"replace missing", tag("z"), "9", FlagReplace, false, "", ErrNoData},
		{"remove", tag("a"), "", 0, true, "", nil},
		{"remove missing", tag("z"), "", 0, true, "", ErrNoData},
		{"bad value", tag("b"), "semi;", 0, false, "", ErrInvalid},
		{"whole set", all, "x=1&y=2", 0, false, "x=1&y=2", nil},
		{"whole set create over existing", all, "x=1", FlagCreate, false, "", ErrExists},
		{"clear", all, "", 0, true, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ApplyTagChange(base, c.n, c.value, c.flags, c.remove)
			if c.err != nil {
				if !errors.Is(err, c.err) && err != c.err {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || FormatTags(got) != c.want {
				t.Fatalf("got %q %v, want %q", FormatTags(got), err, c.want)
			}
			if FormatTags(base) != "a=1" {
				t.Fatal("input changed")
			}
		})
	}
}
