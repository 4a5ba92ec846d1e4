package ctl

// Server-side copies and compose: new objects made from others.

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"kfs/fs/store"
)

func (s *Server) copyObject(ctx context.Context, body []byte) (any, error) {
	var req CopyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	src, err := s.target(req.Src, req.SrcBucket, req.SrcKey)
	if err != nil {
		return nil, err
	}
	src.VersionID = req.SrcVersionID
	dst, err := s.target(req.Dst, req.DstBucket, req.DstKey)
	if err != nil {
		return nil, err
	}
	if err := s.allowCopy(ctx, req, src, dst); err != nil {
		return nil, err
	}
	o, err := s.copyOptions(ctx, req, src, dst)
	if err != nil {
		return nil, err
	}
	info, err := s.be.Copy(ctx, store.CopyRequest{Src: src, Dst: dst, Options: o})
	if errors.Is(err, store.ErrStale) {
		return nil, httpError{http.StatusPreconditionFailed, "copy refused: " + s.unmet(ctx, src, o)}
	}
	if err != nil {
		return nil, s.explain(ctx, src, err)
	}
	s.cfg.Changed(dst.Bucket, dst.Key)
	s.changed(ctx, "cp --server-side", "src", src.Bucket+"/"+src.Key, "dst", dst.Bucket+"/"+dst.Key)
	return s.statAfter(ctx, dst, info)
}

// allowCopy checks that the caller may read src and change dst, each
// named by a path of this mount or by bucket and key.
func (s *Server) allowCopy(ctx context.Context, req CopyRequest, src, dst store.ObjectRef) error {
	var err error
	if req.SrcBucket != "" {
		err = s.allowRef(ctx, "cp", src.Bucket, src.Key, false)
	} else {
		err = s.allowRead(ctx, "cp", req.Src)
	}
	if err != nil {
		return err
	}
	if req.DstBucket != "" {
		return s.allowRef(ctx, "cp", dst.Bucket, dst.Key, true)
	}
	return s.allowChange(ctx, "cp", req.Dst)
}

// copyOptions are a copy's conditions, and its metadata: the source's
// (merged with or replaced by the request's), with the Content-Type asked
// or the destination's extension implies.
func (s *Server) copyOptions(ctx context.Context, req CopyRequest, src, dst store.ObjectRef) (store.CopyOptions, error) {
	o := store.CopyOptions{IfMatch: req.IfMatch, IfNoneMatch: req.IfNoneMatch}
	if req.IfModifiedSince != nil {
		o.IfModifiedSince = *req.IfModifiedSince
	}
	if req.IfUnmodified != nil {
		o.IfUnmodifiedSince = *req.IfUnmodified
	}
	ct := req.ContentType
	if ct == "" {
		ct = extType(dst.Key) // the destination's extension says what it is
	}
	if req.ReplaceMetadata || len(req.Metadata) > 0 || ct != "" {
		st, err := s.be.Stat(ctx, src)
		if err != nil {
			return o, s.explain(ctx, src, err)
		}
		o.Replace = &store.PutOptions{ContentType: st.ContentType, Meta: req.Metadata}
		if !req.ReplaceMetadata {
			o.Replace.Meta = merged(st.Meta, req.Metadata)
		}
		if ct != "" {
			o.Replace.ContentType = ct
		}
	}
	return o, nil
}

// unmet names the condition a refused copy's source failed (the server
// says only "precondition failed").
func (s *Server) unmet(ctx context.Context, src store.ObjectRef, o store.CopyOptions) string {
	st, err := s.be.Stat(ctx, src)
	if err != nil {
		return "the source does not meet the conditions"
	}
	if why := o.Unmet(st); why != "" {
		return why
	}
	return "the source changed while it was copied"
}

// extType is the Content-Type a key's extension implies ("" for none known).
func extType(key string) string { return store.ContentTypeOf(key) }

func merged(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[strings.ToLower(k)] = v
	}
	return out
}

// statAfter answers a change with the object's facts as the store has them.
func (s *Server) statAfter(ctx context.Context, o store.ObjectRef, fallback store.ObjectInfo) (ObjectStat, error) {
	info, err := s.be.Stat(ctx, o)
	if err != nil {
		info = fallback
	}
	return statOf(o.Bucket, info), nil
}

// minComposePart is S3's minimum size of every source but the last.
const minComposePart = 5 << 20

func (s *Server) compose(ctx context.Context, body []byte) (any, error) {
	var req ComposeRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.Srcs) == 0 || len(req.Srcs) > 10000 {
		return nil, badRequest("compose takes 1 to 10000 sources")
	}
	dst, err := s.resolveObject(req.Dst)
	if err != nil {
		return nil, err
	}
	if err := s.allowChange(ctx, "compose", req.Dst); err != nil {
		return nil, err
	}
	srcs, err := s.composeSources(ctx, req)
	if err != nil {
		return nil, err
	}
	ct := req.ContentType
	if ct == "" {
		ct = extType(dst.Key)
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	first, err := s.be.Stat(ctx, srcs[0])
	if err != nil {
		return nil, s.explain(ctx, srcs[0], err)
	}
	// The result is a new file: the first source's metadata without its
	// times (the object's LastModified is the result's), and --metadata.
	meta := merged(first.Meta, req.Metadata)
	for _, k := range []string{"mtime", "atime", "ctime"} {
		if _, set := req.Metadata[k]; !set {
			delete(meta, k)
		}
	}
	opts := &store.PutOptions{ContentType: ct, Meta: meta}
	info, err := s.be.Compose(ctx, store.ComposeRequest{Dst: dst, Srcs: srcs, Options: opts})
	if err != nil {
		return nil, err
	}
	s.cfg.Changed(dst.Bucket, dst.Key)
	s.changed(ctx, "compose", "dst", req.Dst, "sources", len(srcs))
	return statOf(dst.Bucket, info), nil
}

// composeSources resolves a compose's sources, checks that the caller may
// read each, and that every one but the last is at least 5 MiB.
func (s *Server) composeSources(ctx context.Context, req ComposeRequest) ([]store.ObjectRef, error) {
	srcs := make([]store.ObjectRef, len(req.Srcs))
	var err error
	for i, p := range req.Srcs {
		if i < len(req.SrcRefs) && req.SrcRefs[i].Bucket != "" {
			srcs[i], err = s.target("", req.SrcRefs[i].Bucket, req.SrcRefs[i].Key)
			if err == nil {
				err = s.allowRef(ctx, "compose", srcs[i].Bucket, srcs[i].Key, false)
			}
		} else {
			srcs[i], err = s.resolveObject(p)
			if err == nil {
				err = s.allowRead(ctx, "compose", p)
			}
		}
		if err != nil {
			return nil, err
		}
		if i == len(req.Srcs)-1 {
			continue
		}
		st, err := s.be.Stat(ctx, srcs[i])
		if err != nil {
			return nil, s.explain(ctx, srcs[i], err)
		}
		if st.Size < minComposePart {
			return nil, badRequest("source %d (%s, %d bytes) is under 5 MiB: S3 composes only sources of at least 5 MiB, except the last",
				i+1, p, st.Size)
		}
	}
	return srcs, nil
}
