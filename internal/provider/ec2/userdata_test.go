package ec2

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/provider"
)

// The boot script runs for real here: /bin/sh (dash on Debian), curl
// against a local server, and a stand-in drover binary, all under a
// temporary root. Only the path prefix differs from an instance; systemd
// is left out of PATH, so the agent starts under nohup.

// fakeDrover is a stand-in drover binary: it answers --help as drover's
// help does, and as an agent records its arguments in agent.args.
func fakeDrover(root string) string {
	out := shellQuote(filepath.Join(root, "agent.args"))
	return "#!/bin/sh\n" +
		"if [ \"$1\" = --help ]; then echo 'drover runs jobs on an elastic fleet'; exit 0; fi\n" +
		"printf '%s\\n' \"$@\" >" + out + ".tmp\n" +
		"mv " + out + ".tmp " + out + "\n"
}

type bootBundle struct {
	root   string
	path   string // PATH for the script: the tools it needs, no systemd
	server *httptest.Server
}

func setupBoot(t *testing.T) bootBundle {
	t.Helper()
	root := t.TempDir()
	// The one directory of the script's paths that every instance has.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "/var/log"), 0o755))
	bin := t.TempDir()
	for _, tool := range []string{"sh", "mkdir", "cat", "chmod", "mv", "curl", "nohup", "grep"} {
		p, err := exec.LookPath(tool)
		require.NoError(t, err, "the boot script needs %s", tool)
		require.NoError(t, os.Symlink(p, filepath.Join(bin, tool)))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /drover", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(fakeDrover(root)))
	})
	mux.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>please log in</html>\n"))
	})
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return bootBundle{root: root, path: bin, server: srv}
}

// run runs script as user data would be, and returns its output.
func (b bootBundle) run(t *testing.T, script string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "user-data")
	require.NoError(t, os.WriteFile(file, []byte(script), 0o700))
	cmd := exec.Command("/bin/sh", file)
	cmd.Env = []string{"PATH=" + b.path, "HOME=" + b.root}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func bootAgent(downloadURL string) provider.Agent {
	return provider.Agent{
		DownloadURL:  downloadURL,
		ServerURL:    "https://drover.example.com:8443",
		Token:        testToken,
		CACert:       []byte("-----BEGIN CERTIFICATE-----\nMIIBdrover\n-----END CERTIFICATE-----\n"),
		Capabilities: map[string]string{"zone": "a", "owner": "it's me"},
	}
}

func TestBootScriptStartsAgent(t *testing.T) {
	t.Parallel()
	b := setupBoot(t)
	agent := bootAgent(b.server.URL + "/drover")
	// The user's script uses the boot script's own here-document
	// delimiter, which must not end the boot script's here-document.
	userData := "cat >" + shellQuote(filepath.Join(b.root, "setup.out")) + " <<'DROVER_EOF'\nsetup ran, umask $(umask)\nDROVER_EOF\n"

	out, err := b.run(t, bootScript(agent, "etl-1", userData, b.root))
	require.NoError(t, err, "boot script output:\n%s", out)

	token := filepath.Join(b.root, tokenPath)
	info, err := os.Stat(token)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the token file is private")
	requireFile(t, token, testToken+"\n")
	requireFile(t, filepath.Join(b.root, caPath), string(agent.CACert))

	binary := filepath.Join(b.root, binaryPath)
	info, err = os.Stat(binary)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), info.Mode().Perm())
	requireFile(t, binary, fakeDrover(b.root))
	requireFile(t, filepath.Join(b.root, "setup.out"), "setup ran, umask $(umask)\n")

	// The agent runs in the background; wait for it to record its
	// arguments (it writes them whole, by rename).
	argsFile := filepath.Join(b.root, "agent.args")
	var got []byte
	started := assert.Eventually(t, func() bool {
		got, err = os.ReadFile(argsFile)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	if !started {
		require.FailNow(t, "the agent never started", "its log: %s", readAll(filepath.Join(b.root, agentLogPath)))
	}
	want := agent.Args("etl-1", filepath.Join(b.root, dataDir), token, filepath.Join(b.root, caPath))
	require.Equal(t, want, strings.Split(strings.TrimSuffix(string(got), "\n"), "\n"))
	require.NotContains(t, string(got), testToken, "the token is never on the agent's command line")
	require.DirExists(t, filepath.Join(b.root, dataDir))
}

func TestBootScriptRefusesBadDownload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path, want string
	}{
		{"html page", "/portal", "did not give a drover that runs here"},
		{"empty file", "/empty", "did not give a drover that runs here"},
		{"not found", "/missing", "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupBoot(t)
			out, err := b.run(t, bootScript(bootAgent(b.server.URL+tc.path), "etl-2", "", b.root))
			require.Error(t, err, "the boot script stops")
			require.Contains(t, out, tc.want)
			require.NoFileExists(t, filepath.Join(b.root, binaryPath), "nothing is installed")
			require.NoFileExists(t, filepath.Join(b.root, "agent.args"), "no agent started")
		})
	}
}

func TestBootScriptNeedsDroverWithoutDownload(t *testing.T) {
	t.Parallel()
	b := setupBoot(t)
	out, err := b.run(t, bootScript(bootAgent(""), "etl-3", "", b.root))
	require.Error(t, err)
	require.Contains(t, out, "drover: no executable drover at /usr/local/bin/drover")
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "it's", "'", "''", "$(touch /tmp/x) `id` $HOME", "a\nb", `back\slash "dq"`, "*?[a]"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+shellQuote(s)).Output()
		require.NoError(t, err)
		require.Equal(t, s, string(out), "the shell reads back %q", s)
	}
}

func requireFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, string(got), path)
}

// readAll is the content of path, or why there is none.
func readAll(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
