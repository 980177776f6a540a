package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/server"
)

// testPackage is a .tar.gz of the entries (name → body; a body of "->X"
// makes a symbolic link to X), with fixed times so its SHA-256 is fixed.
func testPackage(entries ...[2]string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1])), ModTime: time.Unix(1e9, 0)}
		if target, ok := strings.CutPrefix(e[1], "->"); ok {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, target, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(e[1]))
		}
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.String()
}

func sha(body string) string {
	s := sha256.Sum256([]byte(body))
	return hex.EncodeToString(s[:])
}

// The matrix's package, for the shared pool at /srv/app.
var (
	matrixPackage    = testPackage([2]string{"app/run", "#!/bin/sh\n"})
	matrixPackageSHA = sha(matrixPackage)
)

const matrixPackageDir = "/srv/app"

// putPackage uploads a package for pool to dir as bearer.
func (w *world) putPackage(t testing.TB, bearer, poolName, dir, body string) (int, []byte) {
	t.Helper()
	return w.call(t, bearer, "PUT", "/v1/pools/"+poolName+"/packages?to="+url.QueryEscape(dir), body)
}

// nodeInPool is a node of the pool, as its agent describes it.
func nodeInPool(name, poolName string) api.NodeInfo {
	n := nodeInfo(name)
	n.Attributes = map[string]string{"os": "linux", "pool": poolName}
	return n
}

// prepareAgentPackage ships the matrix package to the shared pool and
// registers n3, a node of it, with the matrix's agent token.
func prepareAgentPackage(t *testing.T, w *world) {
	t.Helper()
	code, body := w.putPackage(t, w.tok[whoAdmin], poolS, matrixPackageDir, matrixPackage)
	require.Equal(t, http.StatusOK, code, "%s", body)
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInPool("n3", poolS)}, http.StatusOK)
}

func TestPackageUploadIsChecked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	good := testPackage([2]string{"a.txt", "a"})
	cases := []struct {
		name, pool, to, body string
		code                 int
		field, msg           string
	}{
		{name: "no to", pool: poolS, to: "", body: good, code: 400, field: "to", msg: "is required"},
		{name: "relative to", pool: poolS, to: "srv/app", body: good, code: 400, field: "to", msg: "must be an absolute path"},
		{name: "root", pool: poolS, to: "/", body: good, code: 400, field: "to", msg: `must not be "/"`},
		{name: "unclean to", pool: poolS, to: "/srv/../etc", body: good, code: 400, field: "to", msg: `must be a clean path ("/etc")`},
		{name: "trailing slash", pool: poolS, to: "/srv/app/", body: good, code: 400, field: "to", msg: "must be a clean path"},
		{name: "control character", pool: poolS, to: "/srv/a\nb", body: good, code: 400, field: "to", msg: "control character"},
		{name: "missing pool", pool: "nosuch", to: "/srv/app", body: good, code: 404, msg: "pool nosuch not found"},
		{name: "empty body", pool: poolS, to: "/srv/app", body: "", code: 400, field: "body", msg: "is not a .tar.gz"},
		{name: "a zip", pool: poolS, to: "/srv/app", body: "PK\x03\x04rest", code: 400, field: "body", msg: "is not a .tar.gz"},
		{name: "gzip of no tar", pool: poolS, to: "/srv/app", body: gzipOf("just text"), code: 400, field: "body", msg: "cannot be unpacked"},
		{name: "dot-dot entry", pool: poolS, to: "/srv/app", body: testPackage([2]string{"../etc/passwd", "x"}), code: 400, field: "body", msg: "unsafe entry name"},
		{name: "absolute entry", pool: poolS, to: "/srv/app", body: testPackage([2]string{"/etc/passwd", "x"}), code: 400, field: "body", msg: "unsafe entry name"},
		{name: "symlink out", pool: poolS, to: "/srv/app", body: testPackage([2]string{"l", "->../../etc"}), code: 400, field: "body", msg: "unsafe link"},
	}
	for _, c := range cases {
		code, body := w.putPackage(t, w.tok[whoAdmin], c.pool, c.to, c.body)
		require.Equal(t, c.code, code, "%s: %s", c.name, body)
		var e api.Error
		require.NoError(t, json.Unmarshal(body, &e))
		require.Equal(t, c.field, e.Field, c.name)
		require.Contains(t, e.Error, c.msg, c.name)
	}
	require.Empty(t, w.pool(t, poolS).Packages, "no refused upload is recorded")
}

func gzipOf(s string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return buf.String()
}

// TestPackageTooLarge: an upload past MaxPackageBody is refused with 413
// once the limit is read, not read to its end, and not recorded.
func TestPackageTooLarge(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const over = server.MaxPackageBody + 1<<20
	body := io.MultiReader(strings.NewReader("\x1f\x8b"), &countingReader{n: over - 2})
	req := httptest.NewRequestWithContext(t.Context(), "PUT", "/v1/pools/"+poolS+"/packages?to=/srv/app", body)
	req.Header.Set("Authorization", "Bearer "+w.tok[whoAdmin])
	rec := w.serve(req)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "%s", rec.Body)
	require.Empty(t, w.pool(t, poolS).Packages)
}

// TestPackageReachesPoolNodes: a pool's package is in the sync answer of
// its nodes only, can be fetched by them only, is replaced by the next
// package for its directory, survives a pool update, and what an agent
// reports installed shows in the node list.
func TestPackageReachesPoolNodes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v1 := testPackage([2]string{"v", "1"})
	code, body := w.putPackage(t, w.tok[whoAdmin], poolS, "/srv/app", v1)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var p api.Pool
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, poolS, p.Name, "the answer is the pool")
	other := testPackage([2]string{"o", "1"})
	code, body = w.putPackage(t, w.tok[whoAdmin], poolS, "/srv/other", other)
	require.Equal(t, http.StatusOK, code, "%s", body)

	resp := w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInPool("n3", poolS)}, http.StatusOK)
	require.ElementsMatch(t, []api.Package{
		{SHA256: sha(v1), To: "/srv/app", Size: int64(len(v1))}, {SHA256: sha(other), To: "/srv/other", Size: int64(len(other))},
	}, resp.Packages)
	resp = w.syncAs(t, w.agent2, api.SyncRequest{Node: nodeInfo("n2")}, http.StatusOK)
	require.Empty(t, resp.Packages, "n2 is in no pool")

	fetch := func(bearer, node, sum string) (int, string) {
		code, body := w.call(t, bearer, "GET", "/v1/agent/packages/"+sum+"?node="+node, "")
		return code, string(body)
	}
	code, got := fetch(w.tok[whoAgent], "n3", sha(v1))
	require.Equal(t, http.StatusOK, code, got)
	require.Equal(t, v1, got)
	for _, c := range []struct{ name, bearer, node, sum string }{
		{"a node of no pool", w.agent2, "n2", sha(v1)},
		{"a node of another token", w.agent2, "n3", sha(v1)},
		{"no node", w.tok[whoAgent], "", sha(v1)},
		{"a package of no pool", w.tok[whoAgent], "n3", sha("nothing")},
	} {
		code, got := fetch(c.bearer, c.node, c.sum)
		require.Equal(t, http.StatusNotFound, code, "%s: %s", c.name, got)
		require.NotContains(t, got, v1[:10], c.name)
	}
	code, got = fetch(w.tok[whoAgent], "n3", "..%2F..%2Fetc%2Fpasswd")
	require.Equal(t, http.StatusBadRequest, code, got)
	code, got = fetch(w.tok[whoAgent], "n3", strings.ToUpper(sha(v1)))
	require.Equal(t, http.StatusBadRequest, code, got)

	// The next package for /srv/app replaces the first; the first can no
	// longer be fetched.
	v2 := testPackage([2]string{"v", "2"})
	code, body = w.putPackage(t, w.tok[whoAdmin], poolS, "/srv/app", v2)
	require.Equal(t, http.StatusOK, code, "%s", body)
	resp = w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInPool("n3", poolS),
		Packages: map[string]string{"/srv/app": sha(v1), "relative": sha(v1), "/srv/bad": "not-a-sum"}}, http.StatusOK)
	require.ElementsMatch(t, []string{sha(v2), sha(other)}, []string{resp.Packages[0].SHA256, resp.Packages[1].SHA256})
	code, _ = fetch(w.tok[whoAgent], "n3", sha(v1))
	require.Equal(t, http.StatusNotFound, code)
	code, got = fetch(w.tok[whoAgent], "n3", sha(v2))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, v2, got)

	// The node list shows what n3's agent reported, without what no
	// honest agent sends.
	var nodes []api.Node
	require.NoError(t, json.Unmarshal(w.must(t, w.tok[whoAdmin], "GET", "/v1/nodes?pool="+poolS, "", http.StatusOK), &nodes))
	require.Len(t, nodes, 1)
	require.Equal(t, map[string]string{"/srv/app": sha(v1)}, nodes[0].Packages)

	// A new definition of the pool keeps its packages.
	w.must(t, w.tok[whoAdmin], "PUT", "/v1/pools/"+poolS, strings.Replace(poolYAML(poolS), "max: 2", "max: 3", 1), http.StatusOK)
	got2 := w.pool(t, poolS)
	require.Equal(t, 3, got2.Max)
	var sums []string
	for _, pk := range got2.Packages {
		sums = append(sums, pk.To+"="+pk.SHA256)
	}
	require.ElementsMatch(t, []string{"/srv/app=" + sha(v2), "/srv/other=" + sha(other)}, sums)

}
