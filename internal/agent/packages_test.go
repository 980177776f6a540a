package agent_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/agent"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/pool/manager"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

// TestAgentInstallsPoolPackages: a package shipped to a pool before its
// node existed is installed by the node's agent when it starts, reported
// in the node list, and replaced by the next package; an agent of another
// pool gets nothing. Real server, real agents, real HTTP.
func TestAgentInstallsPoolPackages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	sched, err := scheduler.New(scheduler.Config{Store: db})
	require.NoError(t, err)
	pools, err := manager.New(ctx, manager.Config{Store: db, Scheduler: sched, Providers: manager.Providers(dir)})
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: db, Scheduler: sched, DataDir: dir, Pools: pools})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	adminTok, agentTok := testTokens(t, srv)
	c, err := client.New(hs.URL, nil)
	require.NoError(t, err)
	admin := c.WithToken(adminTok)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		require.NoError(t, srv.Close())
		require.NoError(t, db.Close())
	})
	for _, name := range []string{"web", "batch"} {
		_, err = admin.CreatePool(ctx, []byte("pool: "+name+"\nprovider: local\nmax: 2\npolicy: {fixed: {size: 0}}\n"))
		require.NoError(t, err)
	}
	target := filepath.Join(t.TempDir(), "deploy", "app")
	v1 := packageOf(t, map[string]string{"hello.txt": "v1", "old.txt": "v1"})
	_, err = admin.UploadPackage(ctx, "web", target, bytes.NewReader(v1))
	require.NoError(t, err)

	startPoolAgent := func(name, pool string) {
		a, err := agent.New(agent.Config{Client: c.WithToken(agentTok), DataDir: filepath.Join(dir, name), Name: name,
			Capabilities: map[string]string{"pool": pool}, CPU: 1000, Memory: 1 << 30, SyncWait: time.Second, Logger: testLogger()})
		require.NoError(t, err)
		actx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		t.Cleanup(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	startPoolAgent("web-1", "web")
	startPoolAgent("batch-1", "batch")

	waitInstalled(t, admin, "web", "web-1", target, hexSum(v1))
	require.Equal(t, "v1", readFile(t, filepath.Join(target, "hello.txt")))

	v2 := packageOf(t, map[string]string{"hello.txt": "v2"})
	_, err = admin.UploadPackage(ctx, "web", target, bytes.NewReader(v2))
	require.NoError(t, err)
	waitInstalled(t, admin, "web", "web-1", target, hexSum(v2))
	require.Equal(t, "v2", readFile(t, filepath.Join(target, "hello.txt")))
	require.NoFileExists(t, filepath.Join(target, "old.txt"))

	nodes, err := admin.ListNodesInPool(ctx, "batch")
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.Empty(t, nodes[0].Packages, "a node of another pool gets no package")
}

// waitInstalled waits until the node reports sum installed at to.
func waitInstalled(t *testing.T, c *client.Client, pool, node, to, sum string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		nodes, err := c.ListNodesInPool(t.Context(), pool)
		require.NoError(t, err)
		for _, n := range nodes {
			if n.Name == node && n.Packages[to] == sum {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s never reported package %s at %s: %+v", node, sum, to, nodes)
		}
		time.Sleep(50 * time.Millisecond) // a bounded poll of the node list
	}
}

// packageOf is a .tar.gz of the files.
func packageOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}
