// Command listmeta is the direct baseline of the bench's "ls -l with
// metadata" row: it lists a prefix one level deep with minio-go, asking
// MinIO for each object's user metadata (what kfs asks for), and prints the
// entry count and the seconds it took.
//
//	S3_ENDPOINT=http://127.0.0.1:9100 S3_ACCESS_KEY=.. S3_SECRET_KEY=.. S3_BUCKET=b go run ./scripts/listmeta -prefix bench/list/
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	prefix := flag.String("prefix", "", "prefix to list (ending in /)")
	meta := flag.Bool("metadata", true, "ask for user metadata (MinIO's metadata=true)")
	recursive := flag.Bool("recursive", false, "list the whole subtree (no delimiter)")
	flag.Parse()
	u, err := url.Parse(os.Getenv("S3_ENDPOINT"))
	if err != nil || u.Host == "" {
		log.Fatalf("S3_ENDPOINT %q: want http://host:port", os.Getenv("S3_ENDPOINT"))
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY"), ""),
		Secure: u.Scheme == "https", Region: "us-east-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Now()
	n := 0
	for o := range c.ListObjects(context.Background(), os.Getenv("S3_BUCKET"),
		minio.ListObjectsOptions{Prefix: *prefix, WithMetadata: *meta, Recursive: *recursive}) {
		if o.Err != nil {
			log.Fatal(o.Err)
		}
		n++
	}
	fmt.Printf("%d %.3f\n", n, time.Since(t0).Seconds())
}
