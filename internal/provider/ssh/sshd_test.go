package sshprov

import (
	"context"
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

// sshdPath is OpenSSH's server; tests that need it skip without it (CI
// installs the openssh-server package).
const sshdPath = "/usr/sbin/sshd"

// startTimeout bounds the start of an sshd or a drover server, and the
// wait for agents to become READY.
const startTimeout = 30 * time.Second

// pollEvery is the step of the bounded polls for conditions that have no
// event to wait on (a port that listens, a node that is READY).
const pollEvery = 50 * time.Millisecond

// sshd is a real OpenSSH server on a loopback port, run by the test.
type sshd struct {
	port    int
	hostKey ssh.PublicKey
	log     string
}

// newKey writes a fresh ed25519 private key in OpenSSH format to path and
// returns its public key.
func newKey(t *testing.T, path string) ssh.PublicKey {
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

// startSSHD runs sshd on a free loopback port, accepting the user key
// authorized for root. It is killed when the test ends.
func startSSHD(t *testing.T, authorized ssh.PublicKey) *sshd {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("no OpenSSH server at %s (apt-get install openssh-server): %v", sshdPath, err)
	}
	// sshd refuses to start without its privilege separation directory.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	dir := t.TempDir()
	s := &sshd{hostKey: newKey(t, filepath.Join(dir, "host_ed25519")), log: filepath.Join(dir, "sshd.log")}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(authorized), 0o600))
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
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
		err := s.run(t, confFile)
		if err == nil {
			return s
		}
		if attempt < 3 && strings.Contains(readFile(s.log), "Address already in use") {
			continue
		}
		t.Fatalf("start sshd: %v\n%s", err, readFile(s.log))
	}
}

// run starts sshd and waits until it accepts connections.
func (s *sshd) run(t *testing.T, confFile string) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", confFile)
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
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
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

// knownHostsLine is the known_hosts line of this sshd's key.
func (s *sshd) knownHostsLine() string {
	return knownHostsLineFor(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), s.hostKey)
}

// knownHostsLineFor is the known_hosts line giving addr (HOST:PORT) key.
func knownHostsLineFor(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// waitFor polls cond until it holds or timeout passes; then it fails the
// test with what cond last said.
func waitFor(t *testing.T, timeout time.Duration, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, state := cond(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, state)
		}
		time.Sleep(pollEvery)
	}
}
