package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/jobspec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata with the current output")

// hello is examples/hello.yaml, as the diff cases start from it.
const hello = `job: demo/dev/hello
type: batch
instances: 3
task:
  command: ["sh", "-c", "echo hello from instance $DROVER_INSTANCE"]
  env: {GREETING: hi}
  timeout: 30s
  resources: {cpu: 100, memory: 64MiB}
constraints:
  - {attribute: os, value: linux}
retry:
  attempts: 2
  backoff: 1s
`

// TestSpecDiffGolden renders 'job diff' output for pairs of job files and
// compares it with testdata/diff/NAME.golden; -update rewrites them.
func TestSpecDiffGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from string // "" for a job not submitted yet
		to   string
	}{
		{
			name: "changed",
			from: hello,
			to: `job: demo/dev/hello
type: batch
instances: 4
task:
  command: ["sh", "-c", "echo hello from instance $DROVER_INSTANCE"]
  env: {GREETING: hello, LANG: C.UTF-8}
  timeout: 1m
  resources: {cpu: 100, memory: 64MiB}
retry:
  attempts: 2
  backoff: 1s
`,
		},
		{
			// Comments, order, flow style and defaults written out are
			// not changes.
			name: "cosmetic",
			from: hello,
			to: `# the same job, written differently
job: demo/dev/hello
task:
  timeout: 30s
  command:
    - sh
    - -c
    - echo hello from instance $DROVER_INSTANCE
  env:
    GREETING: hi
  resources: {memory: 67108864, cpu: 100}
  kill_grace: 5s
instances: 3
retry: {backoff: 1s, attempts: 2}
constraints:
  - {attribute: os, operator: "=", value: linux}
`,
		},
		{name: "new-job", from: "", to: hello},
		{
			// Changes far apart make separate hunks.
			name: "two-hunks",
			from: hello,
			to: `job: demo/dev/hello
type: batch
instances: 3
priority: 10
task:
  command: ["sh", "-c", "echo hello from instance $DROVER_INSTANCE"]
  env: {GREETING: hi}
  timeout: 30s
  resources: {cpu: 100, memory: 64MiB}
constraints:
  - {attribute: os, value: linux}
retry:
  attempts: 2
  backoff: 1s
restart:
  interval: 10m
`,
		},
		{
			name: "batch-to-service",
			from: hello,
			to: `job: demo/dev/hello
type: service
instances: 3
task:
  command: ["./serve", "--port", "8080"]
  env: {GREETING: hi}
  resources: {cpu: 100, memory: 64MiB}
  ports: [http]
  health: {http: "http://localhost:8080/health", interval: 10s}
constraints:
  - {attribute: os, value: linux}
restart: {delay: 2s}
`,
		},
		{
			// Control characters come out escaped: a spec cannot drive
			// the terminal it is shown on.
			name: "hostile-text",
			from: hello,
			to: `job: demo/dev/hello
instances: 3
task:
  command: ["sh", "-c", "echo hello from instance $DROVER_INSTANCE"]
  env: {GREETING: "hi\e]0;owned\a\e[2J", C1: "\u009b31m"}
  timeout: 30s
  resources: {cpu: 100, memory: 64MiB}
constraints:
  - {attribute: os, value: linux}
retry:
  attempts: 2
  backoff: 1s
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var from *api.JobSpec
			fromName := "demo/dev/hello (no such job)"
			if tt.from != "" {
				// The server's side: stored, formatted, sent as JSON.
				doc := formatOne(t, tt.from)
				require.NoError(t, viaJSON(&doc))
				from, fromName = &doc, "demo/dev/hello version 2"
			}
			to := formatOne(t, tt.to)
			require.NoError(t, viaJSON(&to))
			var out bytes.Buffer
			require.NoError(t, writeSpecDiff(&out, fromName, from, "next.yaml", to))
			requireGolden(t, filepath.Join("testdata", "diff", tt.name+".golden"), out.Bytes())
		})
	}
}

// TestSpecYAMLRoundTrip: what inspect prints is a job file that parses
// back to the spec it shows.
func TestSpecYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	want, err := jobspec.Parse([]byte(hello))
	require.NoError(t, err)
	doc, err := specYAML(jobspec.Format(want[0]))
	require.NoError(t, err)
	got, err := jobspec.Parse(doc)
	require.NoError(t, err, "%s", doc)
	require.Empty(t, cmp.Diff(want, got), "%s", doc)
}

func TestLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want []string
	}{
		{"", nil},
		{"a\n", []string{"a\n"}},
		{"a\nb\n", []string{"a\n", "b\n"}},
		{"a\nb", []string{"a\n", "b"}},
		{"\n\n", []string{"\n", "\n"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, lines([]byte(tt.text)), "%q", tt.text)
	}
}

// formatOne parses a job file of one job and formats it as inspect shows it.
func formatOne(t *testing.T, doc string) api.JobSpec {
	t.Helper()
	specs, err := jobspec.Parse([]byte(doc))
	require.NoError(t, err, "%s", doc)
	require.Len(t, specs, 1)
	return jobspec.Format(specs[0])
}

// requireGolden compares got with the golden file at path, or rewrites the
// file with -update.
func requireGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create it", t.Name())
	require.Empty(t, cmp.Diff(string(want), string(got)), "%s differs (-want +got); run with -update if the change is meant", path)
}
