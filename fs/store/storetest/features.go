package storetest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"kfs/fs/store"
)

// Features beyond objects that not every server offers: S3 Select, the
// listen API and bucket notification settings. A server without one
// refuses it as unsupported (Limits), never answers wrongly.

// selectCSV runs S3 Select over a CSV object; a server without it says
// ErrUnsupported (never a wrong answer).
func selectCSV(t *testing.T, e Env) {
	e.Put("t.csv", []byte("name,n\na,1\nb,2\nc,3\n"))
	r, err := e.Store.Select(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "t.csv"}, store.SelectOptions{
		SQL: "SELECT s.name FROM S3Object s WHERE CAST(s.n AS INT) > 1", Input: "csv", CSVHeader: "use", Output: "csv"})
	var out []byte
	if err == nil {
		out, err = io.ReadAll(r)
		r.Close()
	}
	if e.Limits.NoSelect {
		if !errors.Is(err, store.ErrUnsupported) {
			t.Fatalf("select on a server without it: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil || string(out) != "b\nc\n" {
		t.Fatalf("select = %q, %v", out, err)
	}
	if _, err := e.Store.Select(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "missing.csv"}, store.SelectOptions{SQL: "SELECT * FROM S3Object", Input: "csv", Output: "csv"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("select of a missing object: %v, want ErrNotFound", err)
	}
}

// listen opens the listen API: the stream stays open without an error
// until its context ends, then closes (a server without it sends one
// ErrUnsupported).
func listen(t *testing.T, e Env) {
	lctx, cancel := context.WithCancel(ctx)
	ch := e.Store.Listen(lctx, store.ListenRequest{Bucket: e.Bucket})
	select {
	case ev, ok := <-ch:
		if e.Limits.NoListen {
			cancel()
			if !ok || !errors.Is(ev.Err, store.ErrUnsupported) {
				t.Fatalf("listen on a server without it: %+v %v, want ErrUnsupported", ev, ok)
			}
			for range ch {
			}
			return
		}
		if ok && ev.Err != nil {
			t.Fatalf("listen: %v", ev.Err)
		}
	case <-time.After(time.Second):
		if e.Limits.NoListen {
			t.Fatal("listen on a server without it: no error within a second")
		}
	}
	cancel()
	select {
	case <-drain(ch):
	case <-time.After(10 * time.Second):
		t.Fatal("the listen stream did not close when its context ended")
	}
}

func drain(ch <-chan store.Event) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}

// notificationSettings: a new bucket has none; removing all is allowed
// (what kfs's xattr does on removal).
func notificationSettings(t *testing.T, e Env) {
	doc, err := e.Store.GetNotification(ctx, e.Bucket)
	if e.Limits.NoNotificationConfig {
		if (err != nil || doc != nil) && !errors.Is(err, store.ErrUnsupported) {
			t.Fatalf("notification settings on a server without them: %q %v, want none or ErrUnsupported", doc, err)
		}
		if err := e.Store.SetNotification(ctx, e.Bucket, nil); !errors.Is(err, store.ErrUnsupported) {
			t.Fatalf("changing notification settings on a server without them: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil || doc != nil {
		t.Fatalf("notification of a new bucket: %q %v", doc, err)
	}
	if err := e.Store.SetNotification(ctx, e.Bucket, nil); err != nil {
		t.Fatalf("removing every notification target: %v", err)
	}
	if err := e.Store.SetNotification(ctx, e.Bucket, []byte("<not xml")); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a malformed notification document: %v, want ErrInvalid", err)
	}
}
