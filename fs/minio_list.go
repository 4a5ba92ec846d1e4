package fs

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// metaLister makes ListObjectsV2 requests with MinIO's metadata=true
// extension, which returns each object's user metadata in the listing (so
// mode, owner and mtime need no HEAD per entry). minio-go offers that only
// through an iterator that hides page boundaries, so the request is made
// and signed here. Servers without the extension answer a plain listing.
type metaLister struct {
	endpoint                *url.URL
	access, secret, session string
	region                  string
	hc                      *http.Client
}

// EnableMetadataListing lets List fetch user metadata when asked to.
func (s *MinioStore) EnableMetadataListing(access, secret, session, region string, rt http.RoundTripper) {
	s.meta = &metaLister{endpoint: s.core.EndpointURL(), access: access, secret: secret, session: session,
		region: region, hc: &http.Client{Transport: rt}}
}

func (l *metaLister) list(ctx context.Context, bucket, prefix, token string, maxKeys int) (ListPage, error) {
	q := url.Values{}
	q.Set("list-type", "2")
	q.Set("metadata", "true")
	q.Set("encoding-type", "url")
	q.Set("prefix", prefix)
	q.Set("delimiter", "/")
	if token != "" {
		q.Set("continuation-token", token)
	}
	if maxKeys > 0 {
		q.Set("max-keys", strconv.Itoa(maxKeys))
	}
	u := *l.endpoint
	u.Path = "/" + bucket + "/"
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ListPage{}, err
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, l.access, l.secret, l.session, l.region)
	resp, err := l.hc.Do(req)
	if err != nil {
		return ListPage{}, fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ListPage{}, fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
	}
	if resp.StatusCode != http.StatusOK {
		er := minio.ErrorResponse{StatusCode: resp.StatusCode}
		_ = xml.Unmarshal(body, &er)
		return ListPage{}, mapErr(er, "list "+bucket+"/"+prefix)
	}
	var r minio.ListBucketV2Result
	if err := xml.Unmarshal(body, &r); err != nil {
		return ListPage{}, fmt.Errorf("list %s/%s: bad response: %w", bucket, prefix, err)
	}
	p := ListPage{}
	for _, o := range r.Contents {
		key, err := url.QueryUnescape(o.Key)
		if err != nil {
			return ListPage{}, fmt.Errorf("list %s/%s: bad key %q", bucket, prefix, o.Key)
		}
		p.Objects = append(p.Objects, ObjectInfo{Key: key, Size: o.Size, ETag: strings.Trim(o.ETag, `"`),
			LastModified: o.LastModified, Meta: userMeta(o.UserMetadata)})
	}
	for _, cp := range r.CommonPrefixes {
		pre, err := url.QueryUnescape(cp.Prefix)
		if err != nil {
			return ListPage{}, fmt.Errorf("list %s/%s: bad prefix %q", bucket, prefix, cp.Prefix)
		}
		p.Prefixes = append(p.Prefixes, pre)
	}
	if r.IsTruncated {
		p.NextToken = r.NextContinuationToken
	}
	return p, nil
}

// userMeta keeps the x-amz-meta-* entries of a listing's metadata, keyed
// lower-case without the prefix; it returns an empty (not nil) map, which
// says "the listing told us: no metadata".
func userMeta(m minio.StringMap) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		lk := strings.ToLower(k)
		if rest, ok := strings.CutPrefix(lk, "x-amz-meta-"); ok {
			out[rest] = v
		}
	}
	return out
}
