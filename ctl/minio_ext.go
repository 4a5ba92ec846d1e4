package ctl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
)

func (b MinioBackend) Versions(ctx context.Context, bucket, key string) ([]Version, error) {
	var out []Version
	for o := range b.C.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		if o.Key != key {
			continue
		}
		out = append(out, Version{VersionID: o.VersionID, Size: o.Size, ETag: strings.Trim(o.ETag, `"`),
			LastModified: o.LastModified, IsLatest: o.IsLatest, DeleteMarker: o.IsDeleteMarker})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
	}
	return out, nil
}

func notFound(err error, what string) error {
	if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}

func (b MinioBackend) Get(ctx context.Context, o ObjectRef) (io.ReadCloser, error) {
	obj, err := b.C.GetObject(ctx, o.Bucket, o.Key, minio.GetObjectOptions{VersionID: o.VersionID})
	if err != nil {
		return nil, err
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, notFound(err, o.Bucket+"/"+o.Key)
	}
	return obj, nil
}

func (b MinioBackend) Remove(ctx context.Context, o ObjectRef) error {
	return b.C.RemoveObject(ctx, o.Bucket, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID})
}

func (b MinioBackend) RemovePrefix(ctx context.Context, bucket, prefix string) (RemoveResponse, error) {
	var r RemoveResponse
	objs := make(chan minio.ObjectInfo)
	var listErr error
	count := 0
	go func() {
		defer close(objs)
		for o := range b.C.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			count++
			objs <- o
		}
	}()
	for e := range b.C.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			r.Errors = append(r.Errors, e.ObjectName+": "+e.Err.Error())
		}
	}
	if listErr != nil {
		return r, listErr
	}
	r.Removed = count - len(r.Errors)
	return r, nil
}

func (b MinioBackend) Copy(ctx context.Context, src, dst ObjectRef, r CopyRequest) (ObjectStat, error) {
	so := minio.CopySrcOptions{Bucket: src.Bucket, Object: src.Key, MatchETag: r.IfMatch}
	if r.IfModifiedSince != nil {
		so.MatchModifiedSince = *r.IfModifiedSince
	}
	do := minio.CopyDestOptions{Bucket: dst.Bucket, Object: dst.Key}
	if r.ReplaceMetadata || len(r.Metadata) > 0 {
		do.ReplaceMetadata, do.UserMetadata = true, r.Metadata
	}
	if _, err := b.C.CopyObject(ctx, do, so); err != nil {
		if er := minio.ToErrorResponse(err); er.StatusCode == http.StatusPreconditionFailed || er.Code == "PreconditionFailed" {
			return ObjectStat{}, httpError{http.StatusPreconditionFailed, "copy refused: the source does not meet the condition (" + er.Message + ")"}
		}
		return ObjectStat{}, notFound(err, src.Bucket+"/"+src.Key)
	}
	return b.Stat(ctx, dst.Bucket, dst.Key, "")
}

// minComposePart is S3's minimum size of every source but the last.
const minComposePart = 5 << 20

func (b MinioBackend) Compose(ctx context.Context, dst ObjectRef, srcs []ObjectRef) (ObjectStat, error) {
	opts := make([]minio.CopySrcOptions, len(srcs))
	for i, s := range srcs {
		if i < len(srcs)-1 {
			st, err := b.C.StatObject(ctx, s.Bucket, s.Key, minio.StatObjectOptions{})
			if err != nil {
				return ObjectStat{}, notFound(err, s.Bucket+"/"+s.Key)
			}
			if st.Size < minComposePart {
				return ObjectStat{}, httpError{http.StatusBadRequest, fmt.Sprintf(
					"source %d (%s, %d bytes) is under 5 MiB: S3 composes only sources of at least 5 MiB, except the last", i+1, s.Key, st.Size)}
			}
		}
		opts[i] = minio.CopySrcOptions{Bucket: s.Bucket, Object: s.Key}
	}
	if _, err := b.C.ComposeObject(ctx, minio.CopyDestOptions{Bucket: dst.Bucket, Object: dst.Key}, opts...); err != nil {
		return ObjectStat{}, err
	}
	return b.Stat(ctx, dst.Bucket, dst.Key, "")
}

type minioSelect struct{ r *minio.SelectResults }

func (m minioSelect) Read(p []byte) (int, error) { return m.r.Read(p) }
func (m minioSelect) Close() error               { return m.r.Close() }
func (m minioSelect) Stats() SelectStats {
	st := m.r.Stats()
	if st == nil {
		return SelectStats{}
	}
	return SelectStats{BytesScanned: st.BytesScanned, BytesProcessed: st.BytesProcessed, BytesReturned: st.BytesReturned}
}

func (b MinioBackend) Select(ctx context.Context, o ObjectRef, r SelectRequest) (SelectStream, error) {
	opts := minio.SelectObjectOptions{Expression: r.SQL, ExpressionType: minio.QueryExpressionTypeSQL}
	switch r.Compression {
	case "", "none":
		opts.InputSerialization.CompressionType = minio.SelectCompressionNONE
	case "gzip":
		opts.InputSerialization.CompressionType = minio.SelectCompressionGZIP
	case "bzip2":
		opts.InputSerialization.CompressionType = minio.SelectCompressionBZIP
	default:
		return nil, httpError{http.StatusBadRequest, "compression " + r.Compression + ": want none, gzip or bzip2"}
	}
	switch r.Input {
	case "", "csv":
		in := &minio.CSVInputOptions{}
		switch r.CSVHeader {
		case "", "use":
			in.SetFileHeaderInfo(minio.CSVFileHeaderInfoUse)
		case "ignore":
			in.SetFileHeaderInfo(minio.CSVFileHeaderInfoIgnore)
		case "none":
			in.SetFileHeaderInfo(minio.CSVFileHeaderInfoNone)
		default:
			return nil, httpError{http.StatusBadRequest, "csv header " + r.CSVHeader + ": want use, ignore or none"}
		}
		if r.Delimiter != "" {
			in.SetFieldDelimiter(r.Delimiter)
		}
		opts.InputSerialization.CSV = in
	case "json":
		in := &minio.JSONInputOptions{}
		switch r.JSONType {
		case "", "lines":
			in.SetType(minio.JSONLinesType)
		case "document":
			in.SetType(minio.JSONDocumentType)
		default:
			return nil, httpError{http.StatusBadRequest, "json type " + r.JSONType + ": want lines or document"}
		}
		opts.InputSerialization.JSON = in
	case "parquet":
		opts.InputSerialization.Parquet = &minio.ParquetInputOptions{}
	default:
		return nil, httpError{http.StatusBadRequest, "input " + r.Input + ": want csv, json or parquet"}
	}
	switch r.Output {
	case "", "csv":
		opts.OutputSerialization.CSV = &minio.CSVOutputOptions{}
	case "json":
		opts.OutputSerialization.JSON = &minio.JSONOutputOptions{}
	default:
		return nil, httpError{http.StatusBadRequest, "output " + r.Output + ": want csv or json"}
	}
	res, err := b.C.SelectObjectContent(ctx, o.Bucket, o.Key, opts)
	if err != nil {
		er := minio.ToErrorResponse(err)
		if er.StatusCode == http.StatusBadRequest || strings.Contains(er.Code, "Parse") || strings.Contains(er.Code, "Invalid") {
			return nil, httpError{http.StatusBadRequest, er.Code + ": " + er.Message}
		}
		return nil, notFound(err, o.Bucket+"/"+o.Key)
	}
	return minioSelect{res}, nil
}

func (b MinioBackend) Listen(ctx context.Context, bucket, prefix, suffix string) <-chan Event {
	out := make(chan Event)
	go func() {
		defer close(out)
		events := []string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:ObjectAccessed:*"}
		for info := range b.C.ListenBucketNotification(ctx, bucket, prefix, suffix, events) {
			if info.Err != nil {
				continue // minio-go reconnects (with backoff) after a broken stream
			}
			for _, e := range FromNotification(info, "listen") {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
