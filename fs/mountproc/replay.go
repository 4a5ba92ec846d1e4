package mountproc

// What a killed run left in its journal, finished by the next mount before
// it shows: files written back, directory renames, deletions, held-back
// attributes.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	kfs "kfs/fs"
	"kfs/fs/journal"
)

// finishAttrs stores the attribute changes a killed run had held back
// (their chmod or utime returned 0).
func finishAttrs(fsys *kfs.FS, j *journal.Journal, deadline time.Duration, l *slog.Logger) {
	as := j.PendingAttrs()
	if len(as) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	stored := 0
	for _, a := range as {
		ok, err := fsys.FinishAttrs(ctx, a.Bucket, a.Key, a.ETag, a.ContentType, a.Meta)
		if err != nil {
			l.Error("could not store attributes an earlier run held back; the next mount tries again", "bucket", a.Bucket, "key", a.Key, "err", err)
			continue
		}
		if ok {
			stored++
		}
		j.EndAttrs(a.ID)
	}
	l.Info("stored attribute changes an earlier run held back", "stored", stored, "moot", len(as)-stored)
}

// finishDeletes sends the deletions a killed run had batched but not sent
// (its unlinks returned 0: the files must not come back).
func finishDeletes(fsys *kfs.FS, j *journal.Journal, deadline time.Duration, l *slog.Logger) {
	ds := j.Deletes()
	if len(ds) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var done []string
	kept := 0
	for _, d := range ds {
		deleted, err := fsys.FinishDelete(ctx, d.Bucket, d.Key, d.At)
		if err != nil {
			l.Error("could not send a deletion an earlier run left; the next mount tries again", "bucket", d.Bucket, "key", d.Key, "err", err)
			continue
		}
		if !deleted {
			kept++
		}
		done = append(done, d.ID)
	}
	j.EndDelete(done...)
	l.Info("sent the deletions an earlier run left unsent", "deleted", len(done)-kept, "kept_rewritten", kept)
}

// finishRenames completes the directory renames a crashed run left, before
// the mount shows (each file then exists once, under one name).
func finishRenames(fsys *kfs.FS, renames []journal.Rename, deadline time.Duration, l *slog.Logger) {
	for _, r := range renames {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		if err := fsys.FinishRename(ctx, r.ID, r.Bucket, r.From, r.To); err != nil {
			l.Error("could not finish a directory rename an earlier run left; the next mount tries again", "bucket", r.Bucket, "from", r.From, "to", r.To, "err", err)
		}
		cancel()
	}
}

// finishWrites uploads the files a killed run had written back (their
// close returned 0) and not uploaded, each over the object it knew (else
// both are kept), then clears staging files no record names.
func finishWrites(fsys *kfs.FS, j *journal.Journal, dir string, deadline time.Duration, l *slog.Logger) {
	ws := j.PendingWrites()
	keep := map[string]bool{}
	var failed []journal.Write
	if len(ws) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		counts := map[string]int{}
		for _, w := range ws {
			what, err := finishWrite(ctx, fsys, j, w)
			if err != nil {
				l.Error("could not upload a file an earlier run wrote back; trying again in the background (and at the next mount)", "bucket", w.Bucket, "key", w.Key, "staging", w.File, "err", err)
				keep[w.File] = true
				failed = append(failed, w)
				continue
			}
			counts[what]++
		}
		cancel()
		l.Info("uploaded the files an earlier run wrote back", "uploaded", counts["uploaded"], "kept_both", counts["conflict"], "gone", counts["missing"], "failed", len(failed))
	}
	if n := j.Torn(); n > 0 {
		l.Warn("the journal ends in a record a crash cut short (a close that never returned); its staging files go to lost+found", "records", n)
	}
	clearStaging(dir, keep, j.Torn() > 0, l)
	if len(failed) > 0 {
		go retryWrites(fsys, j, failed, l)
	}
}

// finishWrite uploads one record and ends it.
func finishWrite(ctx context.Context, fsys *kfs.FS, j *journal.Journal, w journal.Write) (string, error) {
	what, err := fsys.FinishWrite(ctx, w)
	if err != nil {
		return "", err
	}
	if w.File != "" {
		os.Remove(w.File)
	}
	j.EndWrite(w.ID)
	return what, nil
}

// retryWrites keeps trying the replays that failed at mount (the store
// was down), with backoff, until they succeed or the process ends (the
// journal keeps them for the next mount).
func retryWrites(fsys *kfs.FS, j *journal.Journal, ws []journal.Write, l *slog.Logger) {
	delay := 5 * time.Second
	for len(ws) > 0 {
		time.Sleep(delay)
		delay = min(2*delay, time.Minute)
		var left []journal.Write
		for _, w := range ws {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, err := finishWrite(ctx, fsys, j, w); err != nil {
				left = append(left, w)
			} else {
				l.Info("uploaded a file an earlier run wrote back", "bucket", w.Bucket, "key", w.Key)
			}
			cancel()
		}
		ws = left
	}
}

// clearStaging removes the named staging files of processes that are gone
// which no record names (written and never closed, or uploaded and not yet
// removed). With torn records (a crash cut a close's record short) they
// go to lost+found instead, logged, so no byte is thrown away.
func clearStaging(dir string, keep map[string]bool, torn bool, l *slog.Logger) {
	paths, _ := filepath.Glob(filepath.Join(dir, "wb-*"))
	for _, p := range paths {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(p), "wb-%d-", &pid); err != nil || keep[p] || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		if !torn {
			os.Remove(p)
			continue
		}
		lf := filepath.Join(dir, "lost+found")
		if err := os.MkdirAll(lf, 0o700); err == nil && os.Rename(p, filepath.Join(lf, filepath.Base(p))) == nil {
			l.Warn("a staging file whose close record a crash cut short was kept", "file", filepath.Join(lf, filepath.Base(p)))
		}
	}
}
