// Command kfsdemo brings up the local demo: a MinIO server on
// 127.0.0.1:9000 (data and credentials under .tools/demo), the buckets
// shared-storage and private-storage with a few sample files, and the kfs
// credentials file. `kfsdemo down` stops the server again.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"kfs/fs/store"
	"kfs/fs/store/s3store"
	"kfs/integration"
)

type state struct {
	AccessKey, SecretKey string
	EventsToken          string // the auth token MinIO sends to the mounts' webhook receiver
}

// webhookAddr is where the demo mounts receive MinIO's bucket events.
const webhookAddr = "127.0.0.1:9911"

func main() {
	dir := flag.String("state", filepath.Join(integration.RepoRoot(), ".tools", "demo"), "where the demo keeps MinIO's data, pid and credentials")
	addr := flag.String("addr", "127.0.0.1:9000", "MinIO address (loopback)")
	home, _ := os.UserHomeDir()
	cred := flag.String("credentials", filepath.Join(home, ".config", "kfs", "credentials.json"), "kfs credentials file to write")
	flag.Parse()
	var err error
	switch flag.Arg(0) {
	case "up":
		err = up(*dir, *addr, *cred)
	case "down":
		err = down(*dir)
	case "flags": // the kfs mount flags of the demo: its event receiver
		if _, err = loadState(*dir); err == nil {
			fmt.Printf("--events-webhook %s\n", webhookAddr) // the token is in the credentials file
		}
	default:
		err = fmt.Errorf("usage: kfsdemo [flags] up|down|flags")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfsdemo:", err)
		os.Exit(1)
	}
}

func up(dir, addr, credPath string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	m := &integration.Minio{Endpoint: "http://" + addr, Addr: addr, AccessKey: st.AccessKey, SecretKey: st.SecretKey}
	if !live(m.Endpoint) {
		m, err = integration.StartMinio(integration.MinioConfig{DataDir: filepath.Join(dir, "data"), Addr: addr,
			AccessKey: st.AccessKey, SecretKey: st.SecretKey, Detach: true, LogPath: filepath.Join(dir, "minio.log"),
			Env: []string{"MINIO_NOTIFY_WEBHOOK_ENABLE_KFS=on", "MINIO_NOTIFY_WEBHOOK_ENDPOINT_KFS=http://" + webhookAddr + "/",
				"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_KFS=" + st.EventsToken, "MINIO_API_SYNC_EVENTS=on"}})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "minio.pid"), []byte(strconv.Itoa(m.PID())), 0o600); err != nil {
			return err
		}
		fmt.Printf("MinIO %s listening on %s (pid %d, log %s)\n", integration.MinioVersion, addr, m.PID(), filepath.Join(dir, "minio.log"))
	} else {
		fmt.Printf("MinIO already running on %s\n", addr)
	}
	c, err := m.Store()
	if err != nil {
		return err
	}
	if err := seed(c); err != nil {
		return fmt.Errorf("seeding buckets (is another server on %s?): %v", addr, err)
	}
	body, _ := json.MarshalIndent(map[string]string{
		"ACCESS_KEY": st.AccessKey, "SECRET_KEY": st.SecretKey, "ENDPOINT": m.Endpoint,
		"PUBLIC_BUCKET": "shared-storage", "PRIVATE_BUCKET": "private-storage",
		"EVENTS_TOKEN": st.EventsToken, // the webhook's token: off the command line
	}, "", "  ")
	if err := os.MkdirAll(filepath.Dir(credPath), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(credPath, append(body, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Printf("credentials file: %s\n", credPath)
	return nil
}

func live(endpoint string) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(endpoint + "/minio/health/live")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func loadState(dir string) (state, error) {
	p := filepath.Join(dir, "state.json")
	var st state
	if b, err := os.ReadFile(p); err == nil {
		if err := json.Unmarshal(b, &st); err != nil || st.EventsToken != "" {
			return st, err
		}
		st.EventsToken = fmt.Sprintf("ev%x", time.Now().UnixNano()) // a state from before events
		b, _ = json.Marshal(st)
		return st, os.WriteFile(p, b, 0o600)
	}
	rnd := make([]byte, 16)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return st, err
	}
	defer f.Close()
	if _, err := f.Read(rnd); err != nil {
		return st, err
	}
	st = state{AccessKey: fmt.Sprintf("demo%x", rnd[:4]), SecretKey: fmt.Sprintf("%x", rnd[4:]), EventsToken: fmt.Sprintf("ev%x", rnd[8:])}
	b, _ := json.Marshal(st)
	return st, os.WriteFile(p, b, 0o600)
}

var samples = map[string]map[string]string{
	"shared-storage": {
		"README.txt":              "Shared demo bucket, mounted at /kfs_public.\n",
		"movies_data/2020.csv":    "title,year,rating\nSoul,2020,8.0\nTenet,2020,7.3\nNomadland,2020,7.3\n",
		"movies_data/2021.csv":    "title,year,rating\nDune,2021,8.0\nCODA,2021,8.0\n",
		"movies_data/movies.json": `{"title":"Soul","year":2020}` + "\n" + `{"title":"Dune","year":2021}` + "\n",
		"empty-folder/":           "",
	},
	"private-storage": {
		"notes/todo.txt":    "try kfs\n",
		"data/measures.csv": "t,value\n0,1.5\n1,1.7\n2,1.6\n",
	},
}

func seed(c *s3store.Store) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for bucket, files := range samples {
		if err := c.StatBucket(ctx, bucket); err != nil {
			if err := c.MakeBucket(ctx, bucket, store.MakeBucketOptions{}); err != nil {
				return err
			}
		}
		for key, body := range files {
			if _, err := c.Stat(ctx, store.ObjectRef{Bucket: bucket, Key: key}); err == nil {
				continue
			}
			if _, err := c.Put(ctx, store.PutRequest{Bucket: bucket, Key: key, Body: bytes.NewReader([]byte(body)), Size: int64(len(body))}); err != nil {
				return err
			}
		}
		// Attach the demo's webhook target, so the mounts see every change at once.
		if err := c.SetNotification(ctx, bucket, []byte(notifyConfig)); err != nil {
			return fmt.Errorf("attaching the webhook target to %s: %v", bucket, err)
		}
	}
	return nil
}

const notifyConfig = `<NotificationConfiguration><QueueConfiguration><Id>kfs-demo</Id><Queue>arn:minio:sqs::KFS:webhook</Queue>` +
	`<Event>s3:ObjectCreated:*</Event><Event>s3:ObjectRemoved:*</Event></QueueConfiguration></NotificationConfiguration>`

func down(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "minio.pid"))
	if err != nil {
		return fmt.Errorf("no demo server recorded: %v", err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
		return err
	}
	os.Remove(filepath.Join(dir, "minio.pid"))
	fmt.Printf("stopped MinIO (pid %d)\n", pid)
	return nil
}
