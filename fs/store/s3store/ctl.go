package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"

	"kfs/fs/store"
)

// Presign returns a presigned URL (no network call: the region is set).
func (s *Store) Presign(ctx context.Context, req store.PresignRequest) (string, error) {
	method, o, expires, params := req.Method, req.ObjectRef, req.Expires, req.Params
	u, err := s.c.Presign(ctx, method, o.Bucket, o.Key, expires, params)
	if err != nil {
		return "", fmt.Errorf("presign %s/%s: %v: %w", o.Bucket, o.Key, err, store.ErrInvalid)
	}
	return u.String(), nil
}

type selectStream struct{ r *minio.SelectResults }

func (m selectStream) Read(p []byte) (int, error) { return m.r.Read(p) }
func (m selectStream) Close() error               { return m.r.Close() }
func (m selectStream) Stats() store.SelectStats {
	st := m.r.Stats()
	if st == nil {
		return store.SelectStats{}
	}
	return store.SelectStats{BytesScanned: st.BytesScanned, BytesProcessed: st.BytesProcessed, BytesReturned: st.BytesReturned}
}

// Select runs S3 Select; option values are validated here (ErrInvalid).
func (s *Store) Select(ctx context.Context, o store.ObjectRef, r store.SelectOptions) (store.SelectStream, error) {
	opts, err := selectOptions(r)
	if err != nil {
		return nil, err
	}
	res, err := s.c.SelectObjectContent(ctx, o.Bucket, o.Key, opts)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "MethodNotAllowed" { // SeaweedFS: no S3 Select
			return nil, fmt.Errorf("select on %s/%s: S3 Select: %w", o.Bucket, o.Key, store.ErrUnsupported)
		}
		return nil, mapErr(err, "select on "+o.Bucket+"/"+o.Key)
	}
	return selectStream{res}, nil
}

func badSelect(what, val, want string) error {
	return fmt.Errorf("%s %q: want %s: %w", what, val, want, store.ErrInvalid)
}

// selectOptions turns a request into the SDK's options, refusing unknown
// values by name.
func selectOptions(r store.SelectOptions) (minio.SelectObjectOptions, error) {
	opts := minio.SelectObjectOptions{Expression: r.SQL, ExpressionType: minio.QueryExpressionTypeSQL}
	switch r.Compression {
	case "", "none":
		opts.InputSerialization.CompressionType = minio.SelectCompressionNONE
	case "gzip":
		opts.InputSerialization.CompressionType = minio.SelectCompressionGZIP
	case "bzip2":
		opts.InputSerialization.CompressionType = minio.SelectCompressionBZIP
	default:
		return opts, badSelect("compression", r.Compression, "none, gzip or bzip2")
	}
	var err error
	switch r.Input {
	case "", "csv":
		opts.InputSerialization.CSV, err = csvInput(r)
	case "json":
		in := &minio.JSONInputOptions{}
		switch r.JSONType {
		case "", "lines":
			in.SetType(minio.JSONLinesType)
		case "document":
			in.SetType(minio.JSONDocumentType)
		default:
			return opts, badSelect("json type", r.JSONType, "lines or document")
		}
		opts.InputSerialization.JSON = in
	case "parquet":
		opts.InputSerialization.Parquet = &minio.ParquetInputOptions{}
	default:
		return opts, badSelect("input", r.Input, "csv, json or parquet")
	}
	if err != nil {
		return opts, err
	}
	switch r.Output {
	case "", "csv":
		opts.OutputSerialization.CSV = &minio.CSVOutputOptions{}
	case "json":
		opts.OutputSerialization.JSON = &minio.JSONOutputOptions{}
	default:
		return opts, badSelect("output", r.Output, "csv or json")
	}
	return opts, nil
}

func csvInput(r store.SelectOptions) (*minio.CSVInputOptions, error) {
	in := &minio.CSVInputOptions{}
	switch r.CSVHeader {
	case "", "use":
		in.SetFileHeaderInfo(minio.CSVFileHeaderInfoUse)
	case "ignore":
		in.SetFileHeaderInfo(minio.CSVFileHeaderInfoIgnore)
	case "none":
		in.SetFileHeaderInfo(minio.CSVFileHeaderInfoNone)
	default:
		return nil, badSelect("csv header", r.CSVHeader, "use, ignore or none")
	}
	if r.Delimiter != "" {
		in.SetFieldDelimiter(r.Delimiter)
	}
	return in, nil
}

// Listen streams bucket events (created and removed) under prefix until ctx
// ends; the channel then closes. An empty bucket listens to every bucket.
// minio-go reconnects a broken stream; each break is an Event with Err.
func (s *Store) Listen(ctx context.Context, req store.ListenRequest) <-chan store.Event {
	bucket, prefix, suffix := req.Bucket, req.Prefix, req.Suffix
	out := make(chan store.Event)
	go func() {
		defer close(out)
		events := []string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
		var infos <-chan notification.Info
		if bucket == "" {
			infos = s.c.ListenNotification(ctx, prefix, suffix, events)
		} else {
			infos = s.c.ListenBucketNotification(ctx, bucket, prefix, suffix, events)
		}
		for info := range infos {
			if info.Err != nil {
				select {
				case out <- store.Event{Err: mapErr(info.Err, "listen")}:
				case <-ctx.Done():
					return
				}
				continue
			}
			for _, r := range info.Records {
				key, err := url.QueryUnescape(r.S3.Object.Key)
				if err != nil {
					key = r.S3.Object.Key
				}
				t, _ := time.Parse(time.RFC3339Nano, r.EventTime)
				e := store.Event{Name: "s3:" + strings.TrimPrefix(r.EventName, "s3:"), Bucket: r.S3.Bucket.Name, Key: key,
					Size: r.S3.Object.Size, ETag: r.S3.Object.ETag, Time: t, Sequencer: r.S3.Object.Sequencer}
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
