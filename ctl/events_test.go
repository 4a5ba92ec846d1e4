package ctl

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHubFiltersAndDeduplicates(t *testing.T) {
	h := NewHub()
	ks, _ := kinds([]string{"created"})
	ch := h.subscribe(filter{bucket: "b", prefix: "in/", suffix: ".csv", kinds: ks})
	var sunk []string
	h.OnEvent(func(e Event) { sunk = append(sunk, e.Key) })
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
	if len(sunk) != 6 {
		t.Fatalf("sinks saw %v, want every event but the duplicate", sunk)
	}
	if _, err := kinds([]string{"exploded"}); err == nil {
		t.Fatal("unknown event kind accepted")
	}
}

const webhookBody = `{"EventName":"s3:ObjectCreated:Put","Key":"data/in/a b.csv","Records":[{"eventVersion":"2.0","eventSource":"minio:s3",` +
	`"eventTime":"2026-11-23T20:00:00.000Z","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"data"},` +
	`"object":{"key":"in%2Fa+b.csv","size":12,"eTag":"abc","sequencer":"1"}}}]}`

func TestWebhookAcceptsOnlyEventsWithTheToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := NewHub()
	var got []string
	done := make(chan struct{}, 10)
	h.OnEvent(func(e Event) { got = append(got, e.Event+" "+e.Bucket+"/"+e.Key); done <- struct{}{} })
	st := NewSourceStats("webhook")
	addr, err := ServeWebhook(ctx, "127.0.0.1:0", "s3cret", h, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		token, body string
		want        int
	}{
		{"", webhookBody, 401},
		{"wrong", webhookBody, 401},
		{"s3cret", `{"Records":[{"eventName":"s3:ObjectCreated:Put"}]}`, 400},
		{"s3cret", `not json`, 400},
		{"s3cret", `{"Records":[]}`, 400},
		{"s3cret", strings.Repeat(" ", maxEventBody+1), 400},
		{"s3cret", webhookBody, 200},
	} {
		if code := post(c.token, c.body); code != c.want {
			t.Errorf("POST %.40q with token %q: %d, want %d", c.body, c.token, code, c.want)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	if fmt.Sprint(got) != "[s3:ObjectCreated:Put data/in/a b.csv]" {
		t.Fatalf("published %v", got)
	}
	if s := st.Snapshot(); s.Events != 1 || s.Rejected != 6 || s.State != "live" {
		t.Fatalf("stats %+v", s)
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add(webhookBody)
	f.Add(`{"Records":[{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, body string) {
		evs, err := ParseEvents([]byte(body), "webhook")
		if err != nil {
			if evs != nil {
				t.Fatal("events with an error")
			}
			return
		}
		for _, e := range evs {
			if e.Bucket == "" || e.Key == "" || !strings.HasPrefix(e.Event, "s3:Object") {
				t.Fatalf("accepted an incomplete event %+v", e)
			}
		}
	})
}
