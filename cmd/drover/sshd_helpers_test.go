package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The ssh pool test runs real OpenSSH servers on loopback ports, one per
// "host" of the pool, as internal/provider/ssh's own tests do: each with a
// host key of its own, accepting one client key for root. CI installs
// Debian's openssh-server; where sshd is missing the test skips and says
// so.

// testSSHDPath is OpenSSH's server.
const testSSHDPath = "/usr/sbin/sshd"

// testSSHD is one sshd the test runs.
type testSSHD struct {
	port    int
	hostKey ssh.PublicKey
	log     string
}

// skipWithoutSSHD skips a test, loudly, where there is no sshd to run.
func skipWithoutSSHD(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(testSSHDPath); err != nil {
		msg := fmt.Sprintf("NOT TESTED: no OpenSSH server at %s (apt-get install openssh-server): %v", testSSHDPath, err)
		fmt.Fprintf(os.Stderr, "\n!!! %s: %s !!!\n\n", t.Name(), msg)
		t.Skip(msg)
	}
}

// writeSSHKey writes a fresh ed25519 private key in OpenSSH format to path
// and returns its public key.
func writeSSHKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "drover-test")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return sp
}

// startTestSSHD runs sshd on a free loopback port with its files under
// dir, accepting the key authorized for root. It is killed when the test
// ends, and dies with the test process.
func startTestSSHD(t *testing.T, dir string, authorized ssh.PublicKey) *testSSHD {
	t.Helper()
	skipWithoutSSHD(t)
	// sshd refuses to start without its privilege separation directory.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	require.NoError(t, os.MkdirAll(dir, 0o700))
	s := &testSSHD{hostKey: writeSSHKey(t, filepath.Join(dir, "host_ed25519")), log: filepath.Join(dir, "sshd.log")}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(authorized), 0o600))
	for attempt := 1; ; attempt++ {
		port, err := freePort("127.0.0.1")
		require.NoError(t, err)
		s.port = port
		conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
`, s.port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
		confFile := filepath.Join(dir, "sshd_config")
		require.NoError(t, os.WriteFile(confFile, []byte(conf), 0o600))
		err = s.run(t, confFile)
		if err == nil {
			return s
		}
		// Another process may have taken the port between freePort and
		// sshd's bind.
		logText, _ := os.ReadFile(s.log)
		if attempt < 3 && strings.Contains(string(logText), "Address already in use") {
			continue
		}
		t.Fatalf("start sshd: %v\n%s", err, logText)
	}
}

// run starts sshd and waits until it accepts connections.
func (s *testSSHD) run(t *testing.T, confFile string) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(testSSHDPath, "-D", "-e", "-f", confFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return fmt.Errorf("sshd exited: %v", err)
		default:
		}
		c, err := net.Dial("tcp", s.addr())
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd not listening within %s: %w", startTimeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// addr is the sshd's HOST:PORT.
func (s *testSSHD) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// knownHostsLine is the known_hosts line giving this sshd's host key.
func (s *testSSHD) knownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, s.hostKey)
}
