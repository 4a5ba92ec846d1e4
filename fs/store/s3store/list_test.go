package s3store

import (
	"strings"
	"testing"
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
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeListing(body)
		if err != nil {
			return
		}
		if strings.Contains(string(body), "<IsTruncated>true") && p.NextToken == "" && strings.Count(string(body), "<IsTruncated>") == 1 {
			t.Fatalf("truncated page without a token from %q", body)
		}
		for _, o := range p.Objects {
			if o.Meta == nil {
				t.Fatalf("object %q of a metadata listing without a metadata map", o.Key)
			}
		}
	})
}
