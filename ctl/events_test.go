package ctl

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A listen stream as MinIO sends it: one JSON object per line, with
// keep-alive spaces written between them (they land in front of the next
// line).
const recordedListen = `{"Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventTime":"2026-11-23T20:00:00.000Z","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"data"},"object":{"key":"in%2Fa+b.csv","size":12,"eTag":"abc","sequencer":"1"}}}]}
   {"Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventTime":"2026-11-23T20:00:01.000Z","eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"data"},"object":{"key":"in%2Fa+b.csv","sequencer":"2"}}}]}
`

func TestListenAgainstRecordedStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("events") == "" {
			http.Error(w, "not a listen request", 400)
			return
		}
		w.WriteHeader(200)
		for _, line := range strings.SplitAfter(recordedListen, "\n") {
			w.Write([]byte(line))
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for e := range (MinioBackend{C: c}).Listen(ctx, "data", "in/", "") {
		got = append(got, fmt.Sprintf("%s %s/%s %d %s", e.Event, e.Bucket, e.Key, e.Size, e.Source))
		if len(got) == 2 {
			cancel()
		}
	}
	want := "[s3:ObjectCreated:Put data/in/a b.csv 12 listen s3:ObjectRemoved:Delete data/in/a b.csv 0 listen]"
	if fmt.Sprint(got) != want {
		t.Fatalf("events %v, want %s", got, want)
	}
}

func TestHubFiltersAndDeduplicates(t *testing.T) {
	h := NewHub()
	ks, _ := kinds([]string{"created"})
	ch := h.subscribe(filter{bucket: "b", prefix: "in/", suffix: ".csv", kinds: ks})
	for _, e := range []Event{
		{Event: "s3:ObjectCreated:Put", Bucket: "b", Key: "in/x.csv", seq: "1", Source: "webhook"},
		{Event: "s3:ObjectCreated:Put", Bucket: "b", Key: "in/x.csv", seq: "1", Source: "listen"}, // same event, other source
		{Event: "s3:ObjectRemoved:Delete", Bucket: "b", Key: "in/x.csv", seq: "2"},
		{Event: "s3:ObjectCreated:Put", Bucket: "b", Key: "out/x.csv", seq: "3"},
		{Event: "s3:ObjectCreated:Put", Bucket: "b", Key: "in/x.txt", seq: "4"},
		{Event: "s3:ObjectCreated:Put", Bucket: "c", Key: "in/x.csv", seq: "5"},
		{Event: "s3:ObjectCreated:Copy", Bucket: "b", Key: "in/y.csv", seq: "6"},
	} {
		h.Publish(e)
	}
	var got []string
	for len(ch) > 0 {
		e := <-ch
		got = append(got, e.Key+" "+e.Source)
	}
	if fmt.Sprint(got) != "[in/x.csv webhook in/y.csv ]" {
		t.Fatalf("delivered %v", got)
	}
	if _, err := kinds([]string{"exploded"}); err == nil {
		t.Fatal("unknown event kind accepted")
	}
}
