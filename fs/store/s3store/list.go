package s3store

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

	"kfs/fs/store"
)

// List returns one page of a listing. A request for metadata uses
// MinIO's metadata=true extension (each object's user metadata comes with
// the listing, so mode, owner and times need no HEAD per entry). minio-go
// offers that only through an iterator that hides page boundaries, so
// those requests are made and signed here; servers without the extension
// answer a plain listing: their objects' metadata then come from HEADs
// (listmeta.go).
func (s *Store) List(ctx context.Context, r store.ListRequest) (store.ListPage, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return store.ListPage{}, err
	}
	delim := "/"
	if r.Recursive {
		delim = ""
	}
	if r.Meta {
		return s.listWithMeta(ctx, r, delim)
	}
	// Core.ListObjectsV2 takes no context; the watchdog bounds each try.
	var res minio.ListBucketV2Result
	var err error
	for attempt := 0; ; attempt++ {
		res, err = s.core.ListObjectsV2(r.Bucket, r.Prefix, r.StartAfter, r.Token, delim, r.Max)
		if err != nil {
			err = mapErr(err, "list "+r.Bucket+"/"+r.Prefix)
		}
		if err == nil || !retryable(err) || attempt >= s.retries {
			break
		}
		if err := s.backoff(ctx, attempt); err != nil {
			return store.ListPage{}, err
		}
	}
	if err != nil {
		return store.ListPage{}, err
	}
	return page(res)
}

func (s *Store) listWithMeta(ctx context.Context, r store.ListRequest, delim string) (store.ListPage, error) {
	for attempt := 0; ; attempt++ {
		p, err := s.listWithMetaOnce(ctx, r, delim)
		if err == nil {
			err = s.fillMeta(ctx, r.Bucket, &p)
		}
		if err == nil || !retryable(err) || attempt >= s.retries {
			return p, err
		}
		if err := s.backoff(ctx, attempt); err != nil {
			return store.ListPage{}, err
		}
	}
}

func (s *Store) listWithMetaOnce(ctx context.Context, r store.ListRequest, delim string) (store.ListPage, error) {
	q := url.Values{}
	q.Set("list-type", "2")
	q.Set("metadata", "true")
	q.Set("encoding-type", "url")
	q.Set("prefix", r.Prefix)
	if delim != "" {
		q.Set("delimiter", delim)
	}
	if r.Token != "" {
		q.Set("continuation-token", r.Token)
	}
	if r.StartAfter != "" {
		q.Set("start-after", r.StartAfter)
	}
	if r.Max > 0 {
		q.Set("max-keys", strconv.Itoa(r.Max))
	}
	u := *s.c.EndpointURL()
	u.Path = "/" + r.Bucket + "/"
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return store.ListPage{}, err
	}
	creds, err := s.c.GetCreds()
	if err != nil {
		return store.ListPage{}, fmt.Errorf("list %s/%s: credentials: %w", r.Bucket, r.Prefix, err)
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, s.region())
	resp, err := s.hc.Do(req)
	if err != nil {
		return store.ListPage{}, fmt.Errorf("list %s/%s: %w", r.Bucket, r.Prefix, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return store.ListPage{}, fmt.Errorf("list %s/%s: %w", r.Bucket, r.Prefix, err)
	}
	if resp.StatusCode != http.StatusOK {
		er := minio.ErrorResponse{StatusCode: resp.StatusCode}
		_ = xml.Unmarshal(body, &er)
		return store.ListPage{}, mapErr(er, "list "+r.Bucket+"/"+r.Prefix)
	}
	p, err := decodeListing(body)
	if err != nil {
		return store.ListPage{}, fmt.Errorf("list %s/%s: %w", r.Bucket, r.Prefix, err)
	}
	return p, nil
}

func (s *Store) region() string { return s.regionName }

// page turns a ListObjectsV2 answer of minio-go (keys decoded) into a
// ListPage.
func page(r minio.ListBucketV2Result) (store.ListPage, error) {
	p := store.ListPage{Objects: make([]store.ObjectInfo, 0, len(r.Contents)), Prefixes: make([]string, 0, len(r.CommonPrefixes))}
	for _, o := range r.Contents {
		p.Objects = append(p.Objects, store.ObjectInfo{Key: o.Key, Size: o.Size, ETag: trimETag(o.ETag), LastModified: o.LastModified})
	}
	for _, cp := range r.CommonPrefixes {
		p.Prefixes = append(p.Prefixes, cp.Prefix)
	}
	if r.IsTruncated {
		p.NextToken = r.NextContinuationToken
	}
	return p, nil
}

// ListVersions lists every version and delete marker under prefix (of key
// exactly when exact is set), newest first per key.
func (s *Store) ListVersions(ctx context.Context, req store.PrefixRequest) ([]store.Version, error) {
	bucket, prefix, exact := req.Bucket, req.Prefix, req.Exact
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out []store.Version
	for o := range s.c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, WithVersions: true, Recursive: true}) {
		if o.Err != nil {
			return nil, mapErr(o.Err, "versions of "+bucket+"/"+prefix)
		}
		if exact && o.Key != prefix {
			continue
		}
		out = append(out, store.Version{Key: o.Key, VersionID: o.VersionID, Size: o.Size, ETag: trimETag(o.ETag),
			LastModified: o.LastModified, IsLatest: o.IsLatest, DeleteMarker: o.IsDeleteMarker})
	}
	return out, nil
}
