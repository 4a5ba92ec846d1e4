package fs

// Uploading what a killed run wrote back (its journal's records).

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"os"

	"kfs/fs/journal"
	"kfs/fs/store"
)

// FinishWrite uploads a file a killed run closed and had not uploaded
// (its record w), over the object it knew (else both are kept). It
// reports what happened: "uploaded", "conflict" or "missing" (its staging
// file is gone: uploaded or unlinked before the crash).
func (f *FS) FinishWrite(ctx context.Context, w journal.Write) (string, error) {
	var body io.ReaderAt = bytes.NewReader(w.Data)
	size := int64(len(w.Data))
	if w.File != "" {
		file, err := os.Open(w.File)
		if errors.Is(err, os.ErrNotExist) {
			return "missing", nil
		}
		if err != nil {
			return "", err
		}
		defer file.Close()
		fi, err := file.Stat()
		if err != nil {
			return "", err
		}
		body, size = file, fi.Size()
	}
	if size != w.Size {
		f.cfg.Log.Warn("write-back replay: the staging file changed after its close was recorded (written again, not closed); uploading it as it is",
			"path", w.Bucket+"/"+w.Key, "recorded", w.Size, "now", size)
	}
	opts := store.PutOptions{ContentType: w.ContentType, Meta: w.Meta, Tags: w.Tags, IfMatch: w.Expect, IfAbsent: w.Expect == ""}
	_, err := f.store.Put(ctx, store.PutRequest{Bucket: w.Bucket, Key: w.Key, Body: io.NewSectionReader(body, 0, size), Size: size, Options: opts})
	if opts.IfMatch != "" && f.deletedSince(ctx, w.Bucket, w.Key, err) { // what ours replaces was deleted since: the name is free
		opts.IfMatch, opts.IfAbsent = "", true
		_, err = f.store.Put(ctx, store.PutRequest{Bucket: w.Bucket, Key: w.Key, Body: io.NewSectionReader(body, 0, size), Size: size, Options: opts})
	}
	if !errors.Is(err, store.ErrStale) {
		if err != nil {
			return "", err
		}
		return "uploaded", nil
	}
	if f.replayedBefore(ctx, w, body, size) {
		return "uploaded", nil // the earlier run's upload went through; its record did not end
	}
	alt := conflictKey(w.Key, w.Closed)
	opts.IfMatch, opts.IfAbsent = "", false
	if _, err := f.store.Put(ctx, store.PutRequest{Bucket: w.Bucket, Key: alt, Body: io.NewSectionReader(body, 0, size), Size: size, Options: opts}); err != nil {
		return "", err
	}
	f.cfg.Log.Warn("write-back replay: another client wrote the file after it was closed here; both are kept, ours under another name",
		"path", w.Bucket+"/"+w.Key, "ours", w.Bucket+"/"+alt)
	return "conflict", nil
}

// replayedBefore says whether the object under w's key holds the staging
// file's bytes already: an upload that went through just before the crash
// (a single PUT's ETag is the MD5 of its bytes).
func (f *FS) replayedBefore(ctx context.Context, w journal.Write, body io.ReaderAt, size int64) bool {
	info, err := f.store.Stat(ctx, store.ObjectRef{Bucket: w.Bucket, Key: w.Key})
	if err != nil || info.Size != size {
		return false
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(body, 0, size)); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == info.ETag
}

// deletedSince says whether a Put conditioned on the object under key
// failed (err) because that object is gone: SeaweedFS answers NoSuchKey,
// MinIO a failed precondition, which a HEAD then tells from an overwrite.
func (f *FS) deletedSince(ctx context.Context, bucket, key string, err error) bool {
	if errors.Is(err, store.ErrNotFound) {
		return true
	}
	if !errors.Is(err, store.ErrStale) {
		return false
	}
	_, serr := f.store.Stat(ctx, store.ObjectRef{Bucket: bucket, Key: key})
	return errors.Is(serr, store.ErrNotFound)
}
