package sshprov

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/drover-dev/drover/internal/sshdtest"
)

// startTimeout bounds the start of a drover server, and the wait for
// agents to become READY.
const startTimeout = 30 * time.Second

// pollEvery is the step of the bounded polls for conditions that have no
// event to wait on (a node that is READY).
const pollEvery = 50 * time.Millisecond

// newKey writes a fresh client or host key to path (see sshdtest).
func newKey(t *testing.T, path string) ssh.PublicKey { return sshdtest.WriteKey(t, path) }

// startSSHD runs a real sshd on a free loopback port, accepting the user
// key authorized for root; the test skips where sshd is missing.
func startSSHD(t *testing.T, authorized ssh.PublicKey) *sshdtest.Server {
	return sshdtest.Start(t, t.TempDir(), authorized)
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
