package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
)

// The TLS tests run the binary TestMain built: a server with a certificate
// from a private CA, the CLI and an agent verifying it with --ca (and
// failing without), 'drover dev' trusting its own certificate, and the
// refusal of plain HTTP off loopback.

// testPKI is a private CA and a server certificate it signed, for
// 127.0.0.1, ::1 and localhost, as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "drover test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "drover test server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)

	p := testPKI{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
		pool:     x509.NewCertPool(),
	}
	p.pool.AddCert(caCert)
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644))
	require.NoError(t, os.WriteFile(p.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644))
	require.NoError(t, os.WriteFile(p.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return p
}

// droverProc is a long-running drover process (server, dev, agent) whose
// output goes to a file.
type droverProc struct {
	cmd    *exec.Cmd
	out    string
	exited chan struct{}
	err    error // set before exited is closed
}

// startDrover starts the drover binary with env (besides PATH and HOME)
// and stops it when the test ends: SIGTERM, then SIGKILL.
func startDrover(t *testing.T, env []string, args ...string) *droverProc {
	t.Helper()
	dir := t.TempDir()
	p := &droverProc{out: filepath.Join(dir, "output"), exited: make(chan struct{})}
	f, err := os.Create(p.out)
	require.NoError(t, err)
	defer f.Close()
	p.cmd = exec.Command(filepath.Join(binDir, "drover"), args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func (p *droverProc) output() string {
	b, _ := os.ReadFile(p.out)
	return string(b)
}

// waitOutput waits until the output matches re and returns the match and
// its groups. A process that exits first fails the test.
func (p *droverProc) waitOutput(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(startTimeout)
	for {
		out := p.output()
		if m := rx.FindStringSubmatch(out); m != nil {
			return m
		}
		select {
		case <-p.exited:
			t.Fatalf("drover exited (%v) before printing %q:\n%s", p.err, re, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("drover did not print %q within %s:\n%s", re, startTimeout, out)
		}
		time.Sleep(pollEvery)
	}
}

// runDrover runs a drover command to its end and returns its stdout and
// stderr, and its error.
func runDrover(t *testing.T, env []string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "drover"), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil && ctx.Err() == context.DeadlineExceeded {
			_ = cmd.Process.Kill()
		}
	}()
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestTLSServer(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	data := t.TempDir()
	addr, err := freeAddr()
	require.NoError(t, err)
	url := "https://" + addr

	srv := startDrover(t, nil, "server", "--data", data, "--listen", addr, "--log-level", "warn",
		"--tls-cert", pki.certFile, "--tls-key", pki.keyFile)
	m := srv.waitOutput(t, `(?s)drover server listening on (\S+) .*created user admin with password (\S+)\n.*agents join with the token in \S+: drover agent --server \S+ --token-file FILE --ca CA.pem\n`)
	require.Equal(t, url, m[1], "the printed URL")
	password := m[2]

	// TLS 1.0 and 1.1 are refused.
	_, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, MaxVersion: tls.VersionTLS11})
	require.Error(t, err, "a TLS 1.1 handshake")

	// Log in with the CA: the token and the CA are remembered for the
	// address.
	cfg := "XDG_CONFIG_HOME=" + t.TempDir()
	stdout, stderr, err := runDrover(t, []string{cfg}, password+"\n", "login", "--addr", url, "--ca", pki.caFile, "--user", "admin")
	require.NoError(t, err, stderr)
	require.Regexp(t, `^logged in to `+regexp.QuoteMeta(url)+` as admin: token \w+ \(expires .*\) saved in (\S+)\n$`, stdout)
	tokenFile := regexp.MustCompile(`saved in (\S+)\n`).FindStringSubmatch(stdout)[1]
	info, err := os.Stat(tokenFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the token file's mode")
	token, err := readTokenFile(tokenFile)
	require.NoError(t, err)

	stdout, stderr, err = runDrover(t, []string{cfg}, "", "job", "list", "--addr", url, "-o", "json")
	require.NoError(t, err, "with the CA remembered by login: %s", stderr)
	require.JSONEq(t, "[]", stdout)

	// Elsewhere, with the token but no cluster list: --ca works, and
	// without it the certificate is not trusted.
	bare := []string{"XDG_CONFIG_HOME=" + t.TempDir(), "DROVER_TOKEN=" + token.Reveal()}
	stdout, stderr, err = runDrover(t, bare, "", "job", "list", "--addr", url, "--ca", pki.caFile, "-o", "json")
	require.NoError(t, err, stderr)
	require.JSONEq(t, "[]", stdout)
	_, stderr, err = runDrover(t, bare, "", "job", "list", "--addr", url, "-o", "json")
	require.Error(t, err, "without --ca")
	require.Contains(t, stderr, "cannot verify the certificate of the drover server")
	require.Contains(t, stderr, "--ca FILE")
	require.Contains(t, stderr, "certificate signed by unknown authority")
	// A CA that did not sign the server's certificate is no better.
	other := newTestPKI(t)
	_, stderr, err = runDrover(t, bare, "", "job", "list", "--addr", url, "--ca", other.caFile)
	require.Error(t, err, "with another CA")
	require.Contains(t, stderr, "certificate signed by unknown authority")
	// Plain HTTP to the TLS port gets nowhere.
	_, stderr, err = runDrover(t, bare, "", "job", "list", "--addr", "http://"+addr)
	require.Error(t, err, "plain HTTP")
	require.Contains(t, stderr, "HTTP request to an HTTPS server")

	// An agent joins over TLS with --ca.
	agent := startDrover(t, nil, "agent", "--server", url, "--ca", pki.caFile, "--token-file", filepath.Join(data, "agent.token"),
		"--data", t.TempDir(), "--name", "tls-node", "--log-level", "warn")
	tlsConf, err := client.TLSConfig(pki.caFile)
	require.NoError(t, err)
	c, err := client.New(url, client.NewHTTPClient(tlsConf))
	require.NoError(t, err)
	c = c.WithToken(token)
	waitReady(t, c, "tls-node", agent)
}

// waitReady waits until the node is READY (a bounded poll: a node's
// registration has no event a client can wait on).
func waitReady(t *testing.T, c *client.Client, name string, agent *droverProc) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	var last []api.Node
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		nodes, err := c.ListNodes(ctx)
		cancel()
		require.NoError(t, err)
		for _, n := range nodes {
			if n.Name == name && n.State == "READY" {
				return
			}
		}
		last = nodes
		if time.Now().After(deadline) {
			t.Fatalf("node %s not READY within %s; nodes %+v; agent output:\n%s", name, startTimeout, last, agent.output())
		}
		time.Sleep(pollEvery)
	}
}

func TestTLSDev(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	addr, err := freeAddr()
	require.NoError(t, err)
	url := "https://" + addr
	cfg := "XDG_CONFIG_HOME=" + t.TempDir()

	// The local agents and the demo trust the served certificate itself.
	dev := startDrover(t, []string{cfg}, "dev", "--data", t.TempDir(), "--listen", addr, "--nodes", "1", "--demo",
		"--tls-cert", pki.certFile, "--tls-key", pki.keyFile)
	m := dev.waitOutput(t, `drover dev: server and web page at (\S+) `)
	require.Equal(t, url, m[1])
	dev.waitOutput(t, `demo: job demo/dev/hello run 1 \(version 1\) SUCCEEDED\n(?s:.*)drover dev: ready`)

	// The CLI finds the token and the certificate in the cluster list.
	stdout, stderr, err := runDrover(t, []string{cfg}, "", "job", "list", "--addr", url, "-o", "json")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, `"key": "demo/dev/hello"`)
}

func TestPlainHTTPOffLoopback(t *testing.T) {
	t.Parallel()
	addr, err := freeAddr()
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	everywhere := "0.0.0.0:" + port

	for _, args := range [][]string{{"server"}, {"dev", "--nodes", "0"}} {
		data := filepath.Join(t.TempDir(), "data")
		args = append(args, "--listen", everywhere, "--data", data)
		_, stderr, err := runDrover(t, []string{"XDG_CONFIG_HOME=" + t.TempDir()}, "", args...)
		require.Error(t, err, "drover %s without TLS", strings.Join(args, " "))
		require.Contains(t, stderr, "refusing to serve plain HTTP on "+everywhere+", which is not a loopback address")
		require.Contains(t, stderr, "--insecure-http")
		require.NoDirExists(t, data, "a refused server leaves no data")
	}

	_, stderr, err := runDrover(t, nil, "", "server", "--listen", addr, "--data", t.TempDir(), "--tls-cert", "x.pem")
	require.Error(t, err)
	require.Contains(t, stderr, "--tls-cert and --tls-key go together")

	// With --insecure-http it serves, and warns.
	srv := startDrover(t, nil, "server", "--listen", everywhere, "--data", t.TempDir(), "--insecure-http")
	srv.waitOutput(t, `level=WARN msg="serving plain HTTP on a non-loopback address \(--insecure-http\)`)
	srv.waitOutput(t, `drover server listening on http://`)
	c, err := client.New("http://"+addr, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, c.Health(ctx))
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:7070", true},
		{"127.3.2.1:7070", true},
		{"[::1]:7070", true},
		{"localhost:7070", true},
		{"0.0.0.0:7070", false},
		{"[::]:7070", false},
		{"10.1.2.3:7070", false},
		{"[fe80::1]:7070", false},
		{"drover.example.com:7070", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, isLoopback(stringAddr(tc.addr)))
			if tcp, err := net.ResolveTCPAddr("tcp", tc.addr); err == nil && net.ParseIP(strings.Trim(strings.Split(tc.addr, "]")[0], "[")) != nil {
				require.Equal(t, tc.want, isLoopback(tcp), "as a *net.TCPAddr")
			}
		})
	}
}

// stringAddr is a net.Addr that is only its text.
type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

func TestServerURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen, actual string
		tls            bool
		want           string
	}{
		{"127.0.0.1:0", "127.0.0.1:41234", false, "http://127.0.0.1:41234"},
		{"127.0.0.1:0", "127.0.0.1:41234", true, "https://127.0.0.1:41234"},
		{"localhost:0", "127.0.0.1:41234", true, "https://localhost:41234"},
		{"drover.example.com:443", "10.0.0.5:443", true, "https://drover.example.com:443"},
		{":7070", "[::]:7070", false, "http://[::]:7070"},
	} {
		require.Equal(t, tc.want, serverURL(tc.listen, stringAddr(tc.actual), tc.tls), "listen %s", tc.listen)
	}
}
