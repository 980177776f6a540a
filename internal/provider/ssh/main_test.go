package sshprov

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/secret"
)

// droverBin is the real drover binary, built once by TestMain; the tests
// copy it to their hosts and run it as a server.
var droverBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "drover-sshprov-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	droverBin = filepath.Join(dir, "drover")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	build := exec.Command(goBin, "build", "-o", droverBin, "github.com/drover-dev/drover/cmd/drover")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build drover for the ssh provider tests: %v\n", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// Every ssh connection the provider opened is closed.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return code
}

// server is a real 'drover dev --nodes 0': a server that ssh-launched
// agents join.
type server struct {
	url        string
	agentToken string
	admin      *client.Client
	log        string
}

// startServer starts drover dev on a free port with its data under a temp
// dir and waits until it answers and has written its tokens. It is killed
// when the test ends (and dies with the test process).
func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := &server{log: filepath.Join(dir, "dev.log")}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s.url = "http://" + addr
	logf, err := os.Create(s.log)
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command(droverBin, "dev", "--nodes", "0", "--data", data, "--listen", addr, "--log-level", "info")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, ".config")}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	cl, err := client.New(s.url, nil)
	require.NoError(t, err)
	waitFor(t, startTimeout, func(ctx context.Context) (bool, string) {
		select {
		case <-exited:
			t.Fatalf("drover dev exited while starting:\n%s", readFile(s.log))
		default:
		}
		if err := cl.Health(ctx); err != nil {
			return false, "the server does not answer: " + err.Error()
		}
		admin, err1 := os.ReadFile(filepath.Join(data, "admin.token"))
		agent, err2 := os.ReadFile(filepath.Join(data, "agent.token"))
		if err1 != nil || err2 != nil {
			return false, "no admin or agent token yet"
		}
		s.admin = cl.WithToken(secret.New(strings.TrimSpace(string(admin))))
		s.agentToken = strings.TrimSpace(string(agent))
		return true, ""
	})
	return s
}

// readyNodes returns the server's READY nodes by name.
func (s *server) readyNodes(ctx context.Context) (map[string]api.Node, error) {
	ns, err := s.admin.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	ready := map[string]api.Node{}
	for _, n := range ns {
		if n.State == "READY" {
			ready[n.Name] = n
		}
	}
	return ready, nil
}

// waitReady waits until every named node is READY and returns them.
func (s *server) waitReady(t *testing.T, names ...string) map[string]api.Node {
	t.Helper()
	var ready map[string]api.Node
	waitFor(t, startTimeout, func(ctx context.Context) (bool, string) {
		var err error
		ready, err = s.readyNodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range names {
			if _, ok := ready[n]; !ok {
				return false, fmt.Sprintf("node %s is not READY (READY: %v)\n%s", n, keys(ready), readFile(s.log))
			}
		}
		return true, ""
	})
	return ready
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
