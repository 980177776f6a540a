// Package sshdtest runs real OpenSSH servers for tests: Debian's sshd on a
// free loopback port, with a host key of its own, accepting one client key
// for root. The ssh provider's tests and the ssh pool's end-to-end test use
// it. CI installs the openssh-server package; where sshd is missing a test
// skips, loudly.
package sshdtest

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

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Path is OpenSSH's server.
const Path = "/usr/sbin/sshd"

// startTimeout bounds an sshd's start; pollEvery is the step of the wait
// for its port (sshd has no readiness signal to wait on).
const (
	startTimeout = 30 * time.Second
	pollEvery    = 50 * time.Millisecond
)

// Server is one sshd a test runs.
type Server struct {
	Port    int
	HostKey ssh.PublicKey
	// Log is sshd's output (-e: its log on stderr).
	Log string
}

// SkipIfMissing skips t, saying so on stderr too, where there is no sshd.
func SkipIfMissing(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		msg := fmt.Sprintf("NOT TESTED: no OpenSSH server at %s (apt-get install openssh-server): %v", Path, err)
		fmt.Fprintf(os.Stderr, "\n!!! %s: %s !!!\n\n", t.Name(), msg)
		t.Skip(msg)
	}
}

// WriteKey writes a fresh ed25519 private key in OpenSSH format to path
// and returns its public key.
func WriteKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	check(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "drover-test")
	check(t, err)
	check(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	sp, err := ssh.NewPublicKey(pub)
	check(t, err)
	return sp
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Start runs sshd on a free loopback port with its files under dir,
// accepting the key authorized for root (skipping t where sshd is
// missing). It is killed when the test ends, and dies with the test
// process.
func Start(t testing.TB, dir string, authorized ssh.PublicKey) *Server {
	t.Helper()
	SkipIfMissing(t)
	// sshd refuses to start without its privilege separation directory.
	check(t, os.MkdirAll("/run/sshd", 0o755))
	check(t, os.MkdirAll(dir, 0o700))
	s := &Server{HostKey: WriteKey(t, filepath.Join(dir, "host_ed25519")), Log: filepath.Join(dir, "sshd.log")}
	check(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(authorized), 0o600))
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		check(t, err)
		s.Port = port
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
`, s.Port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
		confFile := filepath.Join(dir, "sshd_config")
		check(t, os.WriteFile(confFile, []byte(conf), 0o600))
		err = s.run(t, confFile)
		if err == nil {
			return s
		}
		// Another process may have taken the port between FreePort and
		// sshd's bind.
		logText, _ := os.ReadFile(s.Log)
		if attempt < 3 && strings.Contains(string(logText), "Address already in use") {
			continue
		}
		t.Fatalf("start sshd: %v\n%s", err, logText)
	}
}

// run starts sshd and waits until it accepts connections.
func (s *Server) run(t testing.TB, confFile string) error {
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(Path, "-D", "-e", "-f", confFile)
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
		c, err := net.Dial("tcp", s.Addr())
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

// Addr is the sshd's HOST:PORT.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// KnownHostsLine is the known_hosts line giving this sshd's host key.
func (s *Server) KnownHostsLine() string { return KnownHostsLine(s.Addr(), s.HostKey) }

// KnownHostsLine is the known_hosts line giving addr (HOST:PORT) key.
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
