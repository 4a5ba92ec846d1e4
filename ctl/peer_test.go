package ctl

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A socket someone else planted where the client looks for a mount's
// socket is refused with the reason, before a byte is sent: a directory
// or socket of another user, a directory others may write, a server
// running as another user.
func TestPlantedSocketsAreRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the planted-socket test runs as root (it makes files of other users)")
	}
	const owner, attacker = 4242, 65534
	dir := DefaultRuntimeDir(owner)
	os.RemoveAll(dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := MountEntry{Point: "/mnt/planted", FSType: "fuse.kfs", Options: "rw,user_id=4242,group_id=4242"}
	sock := filepath.Join(dir, socketName(m.Point))
	plant := func(dirOwner int, dirMode os.FileMode, serveAs int, sockOwner int) {
		t.Helper()
		os.RemoveAll(dir)
		os.Mkdir(dir, dirMode)
		os.Chmod(dir, dirMode)
		os.Chown(dir, dirOwner, dirOwner)
		// The server is a process of serveAs listening on the socket.
		// A plain HTTP server answering every request with the attacker's
		// URL, run as serveAs (the system's python: every user may run it).
		script := "import http.server,socketserver,sys\n" +
			"class H(http.server.BaseHTTPRequestHandler):\n" +
			" def do_POST(self):\n" +
			"  b=b'{\"url\":\"http://evil.example/phish\"}'\n" +
			"  self.rfile.read(int(self.headers.get('Content-Length',0)))\n" +
			"  self.send_response(200);self.send_header('Content-Length',str(len(b)));self.end_headers();self.wfile.write(b)\n" +
			"class S(socketserver.UnixStreamServer):\n" +
			" def get_request(self):\n  r,_=super().get_request();return r,('local',0)\n" +
			"S(sys.argv[1],H).serve_forever()\n"
		os.Chmod(dir, 0o777) // let serveAs bind, then put the mode back
		cmd := exec.Command("setpriv", "--reuid="+itoa(serveAs), "--regid="+itoa(serveAs), "--clear-groups", "/usr/bin/python3", "-c", script, sock)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for i := 0; i < 200; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		os.Chmod(dir, dirMode)
		os.Chown(sock, sockOwner, sockOwner)
		os.Chmod(sock, 0o666)
	}
	for _, c := range []struct {
		name                      string
		dirOwner, serveAs, sockOw int
		dirMode                   os.FileMode
		want                      string
	}{
		{"directory of another user", attacker, attacker, attacker, 0o755, "owned by uid 65534, not by the mount's owner (uid 4242)"},
		{"directory others may write", owner, owner, owner, 0o777, "writable by other users"},
		{"socket of another user", owner, attacker, attacker, 0o711, "owned by uid 65534"},
		{"server of another user", owner, attacker, owner, 0o711, "served by uid 65534"},
	} {
		t.Run(c.name, func(t *testing.T) {
			plant(c.dirOwner, c.dirMode, c.serveAs, c.sockOw)
			cl, err := forEntry(m)
			if err == nil {
				var out PresignResponse
				err = cl.Call("/v1/presign", PresignRequest{Path: "/mnt/planted/f"}, &out)
				if err == nil {
					t.Fatalf("talked to a planted socket: got %q", out.URL)
				}
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("refusal %q does not say %q", err, c.want)
			}
		})
	}
	// The real thing passes: the owner's directory and socket, served by
	// the owner (root here stands for a process the owner trusts).
	plant(owner, 0o711, 0, owner)
	cl, err := forEntry(m)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	var out PresignResponse
	if err := cl.Call("/v1/presign", PresignRequest{Path: "/mnt/planted/f"}, &out); err != nil || out.URL == "" {
		t.Fatalf("the owner's (root's) socket: %q %v", out.URL, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
