package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCerts makes a CA and a server certificate for 127.0.0.1 signed by
// it, in the layout MinIO's --certs-dir wants; it returns the CA's path.
func writeCerts(t *testing.T, dir string) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfs test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("public.crt", "CERTIFICATE", srvDER)
	write("private.key", "EC PRIVATE KEY", keyDER)
	caPath := filepath.Join(dir, "ca.pem")
	write("ca.pem", "CERTIFICATE", caDER)
	return caPath
}

// An https endpoint works with --ca-file, and is refused without it.
func TestHTTPSEndpointWithCAFile(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	os.Mkdir(certs, 0o700)
	caPath := writeCerts(t, certs)
	m, err := StartMinio(MinioConfig{DataDir: filepath.Join(dir, "data"), Env: nil, CertsDir: certs})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	env := []string{"PATH=" + os.Getenv("PATH"), "KFS_ENDPOINT=" + m.Endpoint, "KFS_ACCESS_KEY=" + m.AccessKey, "KFS_SECRET_KEY=" + m.SecretKey}
	mnt := t.TempDir()
	code, stderr := runKFS(t, append(env, "KFS_CA_FILE=/etc/ssl/certs/ca-certificates.crt"), "mount", mnt)
	if code != 3 || !strings.Contains(stderr, "certificate") {
		t.Fatalf("without the CA: exit %d %q, want a certificate error", code, stderr)
	}
	code, stderr = runKFS(t, env, "mount", "--daemon", "--ca-file", caPath, mnt)
	if code != 0 {
		t.Fatalf("with --ca-file: exit %d %s", code, stderr)
	}
	defer runKFS(t, env, "unmount", mnt)
	if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
		t.Fatalf("readdir over https: %v %v", ents, err)
	}
}
