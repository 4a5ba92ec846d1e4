package xattrs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every setfattr example the README and `kfs help xattrs` show must be
// accepted as written (one was refused: "Queue" for "QueueArn").
func TestDocumentedExamplesAreAccepted(t *testing.T) {
	setfattr := regexp.MustCompile(`setfattr -n (user\.s3\.[a-z.-]+[A-Za-z0-9_.-]*) -v ('[^']*'|"[^"$]*"|[^ '"$]+)`)
	found := 0
	for _, file := range []string{"../README.md", "../ctl/cli/admin.go"} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range setfattr.FindAllStringSubmatch(string(text), -1) {
			name, ok := Parse(m[1])
			if !ok {
				t.Errorf("%s: example names an unknown attribute: %s", file, m[0])
				continue
			}
			value := strings.Trim(m[2], `'"`)
			if err := Check(name, value); err != nil {
				t.Errorf("%s: example refused: %s\n  %v", file, m[0], err)
			}
			found++
		}
	}
	if found < 15 {
		t.Fatalf("found only %d examples: the pattern no longer matches the docs", found)
	}
}

func TestNotificationTargetSpellings(t *testing.T) {
	for _, doc := range []string{
		`{"QueueConfigurations":[{"QueueArn":"arn:minio:sqs::KFS:webhook","Events":["s3:ObjectCreated:*"]}]}`,
		`{"QueueConfigurations":[{"Queue":"arn:minio:sqs::KFS:webhook","Events":["s3:ObjectCreated:*"]}]}`,
	} {
		x, err := NotificationFromJSON(doc)
		if err != nil || !strings.Contains(string(x), "<Queue>arn:minio:sqs::KFS:webhook</Queue>") {
			t.Errorf("%s: %s %v", doc, x, err)
		}
	}
	if _, err := NotificationFromJSON(`{"QueueConfigurations":[{"Queue":"arn:a:b::c:d","QueueArn":"arn:a:b::c:e","Events":["s3:ObjectCreated:*"]}]}`); err == nil {
		t.Error("two different ARNs for one target were accepted")
	}
}
