package s3store

import (
	"encoding/xml"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"kfs/fs/store"
)

const realListing = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>dir%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter><IsTruncated>true</IsTruncated><NextContinuationToken>MTAwMA==</NextContinuationToken><EncodingType>url</EncodingType><Contents><Key>dir%2Fa+b%25.csv</Key><LastModified>2026-12-01T10:00:00.000Z</LastModified><ETag>&#34;9e107d9d372bb6826bd81d3542a419d6&#34;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass><UserMetadata><X-Amz-Meta-Mode>33188</X-Amz-Meta-Mode><content-type>text/csv</content-type></UserMetadata></Contents><CommonPrefixes><Prefix>dir%2Fsub%2F</Prefix></CommonPrefixes></ListBucketResult>`

func TestDecodeRealListing(t *testing.T) {
	p, err := decodeListing([]byte(realListing))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 1 || p.Objects[0].Key != "dir/a b%.csv" || p.Objects[0].Size != 12 ||
		p.Objects[0].ETag != "9e107d9d372bb6826bd81d3542a419d6" || p.Objects[0].Meta["mode"] != "33188" {
		t.Fatalf("objects: %+v", p.Objects)
	}
	if len(p.Prefixes) != 1 || p.Prefixes[0] != "dir/sub/" || p.NextToken != "MTAwMA==" {
		t.Fatalf("prefixes %v, token %q", p.Prefixes, p.NextToken)
	}
	for _, bad := range []string{
		"", "<html>gateway timeout</html>", realListing[:len(realListing)/2],
		strings.Replace(realListing, "<NextContinuationToken>MTAwMA==</NextContinuationToken>", "", 1),
		strings.Replace(realListing, "dir%2Fa+b%25.csv", "dir%zz", 1),
	} {
		if _, err := decodeListing([]byte(bad)); err == nil {
			t.Errorf("listing %.60q decoded without an error", bad)
		}
	}
}

// A listing body from the network (proxies, truncation, other servers)
// never panics the decoder, and what decodes is consistent: a page that
// says more follows has a token to ask for it.
func FuzzDecodeListing(f *testing.F) {
	f.Add([]byte(realListing))
	f.Add([]byte(realListing[:200]))
	f.Add([]byte(`<ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated></ListBucketResult>`))
	f.Add([]byte(`<?xml version="1.0"?><!-- c --><s3:ListBucketResult xmlns:s3="x"><Name>b&amp;&#x41;</Name><Contents><Key a='>'>k<![CDATA[<&>]]></Key><Size> 3 </Size><UserMetadata/></Contents></s3:ListBucketResult>`))
	f.Add(bigListing(3))
	f.Add([]byte("<ListBucketResult><Name>b</Name><Contents><Key>a\r\nb\rc<![CDATA[\r\n]]></Key></Contents></ListBucketResult>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeListing(body)
		if err != nil {
			return
		}
		// What the scanner reads, encoding/xml reads the same way.
		if ref, refErr := referenceDecode(body); refErr == nil && !samePage(p, ref) {
			t.Fatalf("scanner and encoding/xml differ on %q:\n%+v\n%+v", body, p, ref)
		}
		if strings.Contains(string(body), "<IsTruncated>true") && p.NextToken == "" && strings.Count(string(body), "<IsTruncated>") == 1 {
			t.Fatalf("truncated page without a token from %q", body)
		}
		for _, o := range p.Objects {
			if o.Meta == nil && strings.Contains(string(body), "<UserMetadata>") && len(p.Objects) == 1 {
				t.Fatalf("object %q sent with metadata decoded as sent without", o.Key)
			}
		}
	})
}

// bigListing is a page of n objects with kfs metadata, as MinIO sends it.
func bigListing(n int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>kfsbench</Name><Prefix>bench%2Ftree%2Fd05%2F</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter><IsTruncated>true</IsTruncated><NextContinuationToken>MTAwMA==</NextContinuationToken><EncodingType>url</EncodingType>`)
	for i := 0; i < n; i++ {
		b.WriteString(`<Contents><Key>bench%2Ftree%2Fd05%2Ff` + strings.Repeat("x", i%7) + `</Key><LastModified>2026-12-01T10:00:00.000Z</LastModified><ETag>&#34;9e107d9d372bb6826bd81d3542a419d6&#34;</ETag><Size>1024</Size><Owner><ID>02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4</ID><DisplayName>minio</DisplayName></Owner><StorageClass>STANDARD</StorageClass><UserMetadata><X-Amz-Meta-Mode>33188</X-Amz-Meta-Mode><X-Amz-Meta-Uid>1000</X-Amz-Meta-Uid><X-Amz-Meta-Gid>1000</X-Amz-Meta-Gid><X-Amz-Meta-Mtime>1796136939.910273000</X-Amz-Meta-Mtime><content-type>application/octet-stream</content-type></UserMetadata></Contents>`)
	}
	b.WriteString(`<CommonPrefixes><Prefix>bench%2Ftree%2Fd05%2Fsub%2F</Prefix></CommonPrefixes></ListBucketResult>`)
	return []byte(b.String())
}

func BenchmarkDecodeListing(b *testing.B) {
	body := bigListing(1000)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeListing(body); err != nil {
			b.Fatal(err)
		}
	}
}

// referenceDecode is the listing decoder kfs had before its scanner:
// encoding/xml into minio-go's result type.
func referenceDecode(body []byte) (store.ListPage, error) {
	var r minio.ListBucketV2Result
	if err := xml.Unmarshal(body, &r); err != nil || r.Name == "" {
		return store.ListPage{}, errXML
	}
	p := store.ListPage{}
	for _, o := range r.Contents {
		key, err := url.QueryUnescape(o.Key)
		if err != nil {
			return store.ListPage{}, errXML
		}
		info := store.ObjectInfo{Key: key, Size: o.Size, ETag: trimETag(o.ETag), LastModified: o.LastModified, Meta: map[string]string{}}
		for k, v := range o.UserMetadata {
			if rest, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-"); ok {
				info.Meta[rest] = v
			}
		}
		p.Objects = append(p.Objects, info)
	}
	for _, cp := range r.CommonPrefixes {
		pre, err := url.QueryUnescape(cp.Prefix)
		if err != nil {
			return store.ListPage{}, errXML
		}
		p.Prefixes = append(p.Prefixes, pre)
	}
	if r.IsTruncated {
		p.NextToken = r.NextContinuationToken
	}
	return p, nil
}

func samePage(a, b store.ListPage) bool {
	if len(a.Objects) != len(b.Objects) || len(a.Prefixes) != len(b.Prefixes) || a.NextToken != b.NextToken {
		return false
	}
	for i := range a.Objects {
		x, y := a.Objects[i], b.Objects[i]
		sameMeta := reflect.DeepEqual(x.Meta, y.Meta) || len(x.Meta) == 0 && len(y.Meta) == 0 // encoding/xml cannot say "none sent"
		if x.Key != y.Key || x.Size != y.Size || x.ETag != y.ETag || !x.LastModified.Equal(y.LastModified) || !sameMeta {
			return false
		}
	}
	for i := range a.Prefixes {
		if a.Prefixes[i] != b.Prefixes[i] {
			return false
		}
	}
	return true
}

// The scanner and encoding/xml read real answers alike, and a page of
// 1,000 objects the same way.
func TestScannerMatchesEncodingXML(t *testing.T) {
	for _, body := range [][]byte{[]byte(realListing), bigListing(1000), []byte(strings.ReplaceAll(realListing, "><", ">\n  <"))} {
		p, err := decodeListing(body)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := referenceDecode(body)
		if err != nil {
			t.Fatal(err)
		}
		if !samePage(p, ref) {
			t.Fatalf("differ:\n%+v\n%+v", p, ref)
		}
	}
	for _, bad := range []string{
		`<ListBucketResult><Name>b</Name><Contents><Key>k</Contents></ListBucketResult>`,
		`<ListBucketResult><Name>b&bogus;</Name></ListBucketResult>`,
		`<ListBucketResult><Name>b&#0;</Name></ListBucketResult>`,
		`<ListBucketResult><Name>b</Name><Contents><Size>x</Size></Contents></ListBucketResult>`,
		`<ListBucketResult><Name>b</Name><Contents><LastModified>yesterday</LastModified></Contents></ListBucketResult>`,
		`<ListBucketResult><Name>b</Name><IsTruncated>maybe</IsTruncated></ListBucketResult>`,
		`<ListBucketResult><Name>b</Name></ListBucketResult>trailing`,
		`<ListBucketResult><Name>b</Name></ListBucketResult><ListBucketResult></ListBucketResult>`,
		`<!DOCTYPE x><ListBucketResult><Name>b</Name></ListBucketResult>`,
		`<ListBucketResult><Name>b</Name><!-- never closed`,
		`<ListBucketResult><Name>b</Name><Contents><Key><![CDATA[k</Key></Contents></ListBucketResult>`,
	} {
		if p, err := decodeListing([]byte(bad)); err == nil {
			t.Errorf("%q decoded: %+v", bad, p)
		}
	}
}

func BenchmarkDecodeListingEncodingXML(b *testing.B) {
	body := bigListing(1000)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := referenceDecode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// An object listed without <UserMetadata> (a server without MinIO's
// metadata listing) has Meta nil, so its metadata is looked up; one with
// an empty element has an empty map.
func TestListingWithoutMetadata(t *testing.T) {
	body := `<ListBucketResult><Name>b</Name><Contents><Key>plain</Key><Size>1</Size></Contents>` +
		`<Contents><Key>empty</Key><Size>1</Size><UserMetadata></UserMetadata></Contents></ListBucketResult>`
	p, err := decodeListing([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if p.Objects[0].Meta != nil || p.Objects[1].Meta == nil {
		t.Fatalf("metas: %#v %#v", p.Objects[0].Meta, p.Objects[1].Meta)
	}
}
