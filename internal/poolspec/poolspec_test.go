package poolspec_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/poolspec"
)

// examplesDir holds the pool files users copy from.
const examplesDir = "../../examples/pools"

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, name))
	require.NoError(t, err)
	return data
}

// nodeSpec decodes a pool's node spec.
func nodeSpec(t *testing.T, p pool.Pool) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.Unmarshal(p.Spec, &out))
	return out
}

func TestParseExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	require.NoError(t, err)
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	// Every example is checked below; a new one must be added here.
	require.ElementsMatch(t, []string{"adhoc.yaml", "burst.yaml", "fixed.yaml", "nightly.yaml"}, names)

	tests := map[string]func(t *testing.T, p pool.Pool){
		"burst.yaml": func(t *testing.T, p pool.Pool) {
			require.Equal(t, pool.Pool{
				Name:              "burst",
				Provider:          pool.ProviderLocal,
				Capabilities:      map[string]string{"burst": "true"},
				Min:               0,
				Max:               4,
				Policy:            pool.Policy{Queue: &pool.QueuePolicy{HighWater: 2, LowWater: 0}},
				StartTimeout:      30 * time.Second,
				IdleTimeout:       10 * time.Second,
				ScaleUpCooldown:   pool.DefaultScaleUpCooldown,
				ScaleDownCooldown: pool.DefaultScaleDownCooldown,
				MaxFailures:       pool.DefaultMaxFailures,
				Desired:           0,
			}, p)
		},
		"fixed.yaml": func(t *testing.T, p pool.Pool) {
			require.Equal(t, pool.ProviderLocal, p.Provider)
			require.Equal(t, "fixed", p.Policy.Kind())
			require.Equal(t, 2, p.Policy.Fixed.Size)
			require.Equal(t, 2, p.Desired, "a fixed pool starts at its size")
			require.Nil(t, p.Spec, "a local pool has no node spec")
		},
		"nightly.yaml": func(t *testing.T, p pool.Pool) {
			require.Equal(t, pool.ProviderEC2, p.Provider)
			require.Equal(t, &pool.SchedulePolicy{Cron: "30 1 * * *", TimeZone: "Europe/Amsterdam", Size: 5, Duration: 3 * time.Hour}, p.Policy.Schedule)
			require.Equal(t, 0, p.Desired, "a schedule pool starts at min")
			require.Equal(t, time.Minute, p.ScaleUpCooldown)
			require.Equal(t, 5*time.Minute, p.ScaleDownCooldown)
			node := nodeSpec(t, p)
			for _, k := range []string{"region", "instance_type", "image_id", "key_name", "security_group_ids", "subnet_id", "spot", "spot_max_price", "shutdown_behavior", "tags", "user_data"} {
				require.Contains(t, node, k)
			}
			require.Equal(t, "m7i.xlarge", node["instance_type"])
			require.Equal(t, true, node["spot"])
			require.Equal(t, "0.12", node["spot_max_price"], "a price stays a decimal string")
			require.Equal(t, []any{"sg-0123456789abcdef0"}, node["security_group_ids"])
			require.Equal(t, map[string]any{"team": "data", "cost-center": "etl"}, node["tags"])
			require.Contains(t, node["user_data"], "apt-get install")
		},
		"adhoc.yaml": func(t *testing.T, p pool.Pool) {
			require.Equal(t, pool.ProviderSSH, p.Provider)
			require.Equal(t, &pool.QueuePolicy{HighWater: 1}, p.Policy.Queue)
			require.Equal(t, pool.DefaultStartTimeout, p.StartTimeout)
			require.Equal(t, 20*time.Minute, p.IdleTimeout)
			node := nodeSpec(t, p)
			require.Equal(t, "/etc/drover/known_hosts", node["known_hosts_file"])
			require.Equal(t, map[string]any{"user": "drover", "port": float64(22), "key_file": "/etc/drover/id_ed25519", "work_dir": ".drover-agent"}, node["defaults"])
			hosts, ok := node["hosts"].([]any)
			require.True(t, ok, "hosts is a list: %v", node["hosts"])
			require.Len(t, hosts, 3)
			require.Equal(t, map[string]any{"address": "build2.lab.example.com", "port": float64(2222)}, hosts[1])
			require.Equal(t, map[string]any{
				"address": "10.0.4.17", "name": "gpu1", "user": "root", "key_file": "/etc/drover/gpu_ed25519",
				"work_dir": "/var/lib/drover-agent", "capabilities": map[string]any{"gpu": "true"},
			}, hosts[2])
		},
	}
	for name, check := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := poolspec.Parse(readExample(t, name))
			require.NoError(t, err)
			require.NoError(t, p.Validate())
			check(t, p)
			requireRoundTrip(t, p)
		})
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	p, err := poolspec.Parse([]byte("pool: web\nprovider: local\nmax: 3\npolicy: {queue: {high_water: 5}}\n"))
	require.NoError(t, err)
	require.Equal(t, pool.Pool{
		Name:              "web",
		Provider:          pool.ProviderLocal,
		Min:               0,
		Max:               3,
		Policy:            pool.Policy{Queue: &pool.QueuePolicy{HighWater: 5, LowWater: 0}},
		StartTimeout:      pool.DefaultStartTimeout,
		IdleTimeout:       pool.DefaultIdleTimeout,
		ScaleUpCooldown:   pool.DefaultScaleUpCooldown,
		ScaleDownCooldown: pool.DefaultScaleDownCooldown,
		MaxFailures:       pool.DefaultMaxFailures,
	}, p)

	// One cooldown given leaves the other at its default.
	p, err = poolspec.Parse([]byte("pool: web\nprovider: local\nmin: 1\nmax: 3\npolicy: {queue: {high_water: 5}}\ncooldown: {up: 10s}\nnode: {}\ncapabilities: {}\n"))
	require.NoError(t, err)
	require.Equal(t, 10*time.Second, p.ScaleUpCooldown)
	require.Equal(t, pool.DefaultScaleDownCooldown, p.ScaleDownCooldown)
	require.Equal(t, 1, p.Desired, "a queue pool starts at min")
	require.Nil(t, p.Spec, "an empty node spec is no node spec")
	require.Nil(t, p.Capabilities)
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	// The body of POST /v1/pools from a program: JSON, with escapes YAML
	// reads otherwise.
	p, err := poolspec.Parse([]byte(`{"pool":"gpu","provider":"ssh","max":2,"policy":{"fixed":{"size":1}},` +
		`"node":{"known_hosts_file":"\/etc\/kh","hosts":[{"address":"h1","port":2222}]},"capabilities":{"note":"\ud83d\ude00"}}`))
	require.NoError(t, err)
	require.Equal(t, 1, p.Desired)
	require.Equal(t, "\U0001F600", p.Capabilities["note"])
	require.JSONEq(t, `{"known_hosts_file":"/etc/kh","hosts":[{"address":"h1","port":2222}]}`, string(p.Spec))
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const head = "pool: web\nprovider: local\n"
	tests := []struct {
		name string
		file string
		want []string // every line of the error, in order
	}{
		{
			name: "unknown field with a suggestion",
			file: head + "max: 2\npolicy: {queue: {high_water: 1}}\nmax_failurs: 2\n",
			want: []string{`max_failurs: unknown field, did you mean "max_failures"? (line 5)`},
		},
		{
			name: "unknown field in a policy",
			file: head + "max: 2\npolicy:\n  queue: {high_water: 1, low: 0}\n",
			want: []string{`policy.queue.low: unknown field (line 5)`},
		},
		{
			name: "two policies",
			file: head + "max: 2\npolicy:\n  fixed: {size: 1}\n  queue: {high_water: 1}\n",
			want: []string{`policy: needs exactly one of fixed, queue or schedule (line 5)`},
		},
		{
			name: "no policy",
			file: head + "max: 2\n",
			want: []string{`policy: needs exactly one of fixed, queue or schedule`},
		},
		{
			name: "max less than min",
			file: head + "min: 3\nmax: 2\npolicy: {queue: {high_water: 1}}\n",
			want: []string{`max: 2 is less than min 3 (line 4)`},
		},
		{
			name: "max missing",
			file: head + "policy: {queue: {high_water: 1}}\n",
			want: []string{`max: must be set`},
		},
		{
			name: "bad durations",
			file: head + "max: 2\npolicy: {queue: {high_water: 1}}\nstart_timeout: 5 minutes\ncooldown:\n  down: soon\n",
			want: []string{
				`start_timeout: "5 minutes" is not a duration: write it like 30s, 5m or 1h30m (line 5)`,
				`cooldown.down: "soon" is not a duration: write it like 30s, 5m or 1h30m (line 7)`,
			},
		},
		{
			name: "wrong types",
			file: head + "max: lots\nmin: 1.5\npolicy: {queue: {high_water: [1]}}\ncapabilities: [a]\n",
			want: []string{
				`max: must be a whole number, not "lots" (line 3)`,
				`min: must be a whole number, not "1.5" (line 4)`,
				`policy.queue.high_water: must be a whole number, not a list (line 5)`,
				`capabilities: must be a mapping of names to values, not a list (line 6)`,
			},
		},
		{
			name: "fixed size out of range and missing fields",
			file: "pool: Web\nprovider: gce\nmax: 2\npolicy:\n  fixed: {size: 3}\nmax_failures: 0\n",
			want: []string{
				`pool: "Web" ` + job.NameRule + ` (line 1)`,
				`provider: must be "local", "ssh" or "ec2", not "gce" (line 2)`,
				`policy.fixed.size: must be between min 0 and max 2, not 3 (line 5)`,
				`max_failures: must be between 1 and 100, not 0 (line 6)`,
			},
		},
		{
			name: "required policy fields",
			file: head + "max: 2\npolicy:\n  schedule: {cron: '0 25 * * *'}\n",
			// A field left out sorts at the line of the mapping it belongs in.
			want: []string{
				`policy.schedule.cron: "0 25 * * *": hour 25 is out of range 0-23 (line 5)`,
				`policy.schedule.duration: must be set: how long the pool keeps size nodes, like 3h`,
				`policy.schedule.size: must be set`,
			},
		},
		{
			name: "schedule time zone",
			file: head + "max: 2\npolicy:\n  schedule: {cron: '0 1 * * *', time_zone: Mars/Olympus, size: 1, duration: 1h}\n",
			want: []string{`policy.schedule.time_zone: "Mars/Olympus": unknown time zone; want an IANA name like "Europe/Amsterdam", or "" for UTC (line 5)`},
		},
		{
			name: "queue water marks",
			file: head + "max: 2\npolicy: {queue: {high_water: 1, low_water: 2}}\n",
			want: []string{`policy.queue.low_water: must be between 0 and high_water 1, not 2 (line 4)`},
		},
		{
			name: "capability named pool",
			file: head + "max: 2\npolicy: {queue: {high_water: 1}}\ncapabilities: {pool: other}\n",
			want: []string{`capabilities.pool: is set by drover to the pool's name (line 5)`},
		},
		{
			name: "node spec JSON cannot hold",
			file: head + "max: 2\npolicy: {queue: {high_water: 1}}\nnode:\n  hosts: [{1: a}]\n",
			want: []string{`node: cannot be stored as JSON: unsupported type: map[interface {}]interface {} (line 6)`},
		},
		{
			name: "node spec not a mapping",
			file: head + "max: 2\npolicy: {queue: {high_water: 1}}\nnode: [a]\n",
			want: []string{`node: must be a mapping of names to values, not a list (line 5)`},
		},
		{
			name: "key given twice",
			file: head + "max: 2\nmax: 3\npolicy: {queue: {high_water: 1}}\n",
			want: []string{`max: given twice, first on line 3 (line 4)`},
		},
		{
			name: "JSON",
			file: `{"pool": "web", "provider": "local", "max": "3", "policy": {"queue": {"high_water": 1}}}`,
			want: []string{`max: must be a whole number, not "3" (line 1)`},
		},
		{
			name: "empty",
			file: "# nothing\n",
			want: []string{"pool file is empty"},
		},
		{
			name: "a list",
			file: "- pool: web\n",
			want: []string{"pool file must be a mapping of fields, not a list (line 1)"},
		},
		{
			name: "two documents",
			file: head + "---\npool: other\n",
			want: []string{"pool file holds a second YAML document (line 4): write one per file"},
		},
		{
			name: "a top-level key that is not a string",
			file: head + "max: 2\npolicy: {queue: {high_water: 1}}\n[a]: 1\n",
			want: []string{"pool file: field names must be strings, not a list (line 5)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := poolspec.Parse([]byte(tt.file))
			require.Error(t, err)
			require.Equal(t, pool.Pool{}, p, "a bad file gives no pool")
			require.Equal(t, tt.want, strings.Split(err.Error(), "\n"))
		})
	}
}

// TestParseErrorsAreFieldErrors checks that callers can tell each bad field
// apart, as the server does to answer with a list of fields.
func TestParseErrorsAreFieldErrors(t *testing.T) {
	t.Parallel()
	_, err := poolspec.Parse([]byte("pool: web\nprovider: local\nmax: x\npolicy: {}\n"))
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "%T", err)
	var fields []string
	for _, e := range joined.Unwrap() {
		var fe *job.FieldError
		require.True(t, errors.As(e, &fe), "%v", e)
		fields = append(fields, fe.Field)
	}
	require.Equal(t, []string{"max", "policy"}, fields)
}

func TestFormat(t *testing.T) {
	t.Parallel()
	p, err := poolspec.Parse(readExample(t, "burst.yaml"))
	require.NoError(t, err)
	out, err := yaml.Marshal(poolspec.Format(p))
	require.NoError(t, err)
	// Every default is written out, so the pool stays the same if the
	// defaults change.
	want := `pool: burst
provider: local
capabilities:
    burst: "true"
min: 0
max: 4
policy:
    queue:
        high_water: 2
        low_water: 0
start_timeout: 30s
idle_timeout: 10s
cooldown:
    up: 0s
    down: 0s
max_failures: 3
`
	require.Equal(t, want, string(out))
}

func TestFormatRoundTrip(t *testing.T) {
	t.Parallel()
	pools := []pool.Pool{
		{
			Name: "big", Provider: pool.ProviderEC2, Min: 1, Max: 1000, Desired: 7,
			Policy:       pool.Policy{Fixed: &pool.FixedPolicy{Size: 7}},
			Spec:         json.RawMessage(`{"n":12345678901234567890,"f":0.5,"s":"true","l":[1,"2",null],"u":"\u2028"}`),
			Capabilities: map[string]string{"a": "", "b": "yes"},
			StartTimeout: 90 * time.Second, IdleTimeout: 0, ScaleUpCooldown: time.Millisecond, ScaleDownCooldown: 0,
			MaxFailures: 100,
		},
		{
			Name: "s", Provider: pool.ProviderSSH, Min: 0, Max: 2,
			Policy:       pool.Policy{Schedule: &pool.SchedulePolicy{Cron: "@daily", Size: 2, Duration: 90 * time.Minute}},
			StartTimeout: time.Second, IdleTimeout: time.Hour, MaxFailures: 1,
		},
	}
	for _, p := range pools {
		require.NoError(t, p.Validate())
		requireRoundTrip(t, p)
	}
}

// requireRoundTrip checks that p, formatted and written as YAML or as JSON,
// parses back to p.
func requireRoundTrip(t *testing.T, p pool.Pool) {
	t.Helper()
	spec := poolspec.Format(p)
	y, err := yaml.Marshal(spec)
	require.NoError(t, err)
	j, err := json.Marshal(spec)
	require.NoError(t, err)
	for _, doc := range [][]byte{y, j} {
		got, err := poolspec.Parse(doc)
		require.NoError(t, err, "%s", doc)
		if p.Spec != nil {
			// Parse writes the node spec as encoding/json does; compare
			// what it means.
			require.JSONEq(t, string(p.Spec), string(got.Spec), "%s", doc)
			got.Spec = p.Spec
		}
		require.Empty(t, cmp.Diff(p, got), "%s", doc)
	}
}
