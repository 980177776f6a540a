package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/drover-dev/drover/internal/provider"
)

const (
	testAccessKey = "AKIDDROVERTEST000001"
	testRegion    = "us-test-1"
	testToken     = "join-token-s3cret-4f7c"
)

// TestMain puts static credentials in the environment, so the provider
// finds them through the standard AWS chain as in production, and keeps
// the chain from reading this machine's AWS files or instance metadata.
// It is done here, not with t.Setenv, so that the tests can run in
// parallel.
func TestMain(m *testing.M) {
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
		"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", "drover-test-secret-key")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	goleak.VerifyTestMain(m)
}

type testBundle struct {
	fake *fakeEC2
	prov *Provider
}

// setup starts a fake EC2 and a provider on it; change tweaks the config.
func setup(t *testing.T, change func(*Config)) testBundle {
	t.Helper()
	fake := newFakeEC2(t)
	cfg := Config{
		Region:           testRegion,
		InstanceType:     "m7i.large",
		ImageID:          "ami-0123456789abcdef0",
		KeyName:          "ops",
		SecurityGroupIDs: []string{"sg-0aaa", "sg-0bbb"},
		SubnetID:         "subnet-0ccc",
		Tags:             map[string]string{"team": "data", "cost-center": "42"},
		UserData:         "apt-get install -y jq\n",
		Endpoint:         fake.srv.URL,
		MaxBackoff:       time.Millisecond,
	}
	if change != nil {
		change(&cfg)
	}
	prov, err := New(context.Background(), cfg)
	require.NoError(t, err)
	return testBundle{fake: fake, prov: prov}
}

func launchRequest(intent, node string) provider.LaunchRequest {
	return provider.LaunchRequest{
		Pool:    "etl",
		Cluster: "prod",
		Intent:  intent,
		Node:    node,
		Agent: provider.Agent{
			DownloadURL:  "https://releases.example.com/drover/v1.2.3/drover-linux-amd64",
			ServerURL:    "https://drover.example.com:8443",
			Token:        testToken,
			CACert:       []byte("-----BEGIN CERTIFICATE-----\nMIIBdrover\n-----END CERTIFICATE-----\n"),
			Capabilities: map[string]string{"zone": "a", "gpu": "none"},
		},
	}
}

func TestLaunch(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	m, err := b.prov.Launch(ctx, launchRequest("intent-0001", "etl-1"))
	require.NoError(t, err)

	runs := b.fake.requestsOf("RunInstances")
	require.Len(t, runs, 1)
	form := runs[0].form
	for param, want := range map[string]string{
		"ImageId":                           "ami-0123456789abcdef0",
		"InstanceType":                      "m7i.large",
		"MinCount":                          "1",
		"MaxCount":                          "1",
		"ClientToken":                       "intent-0001",
		"KeyName":                           "ops",
		"SubnetId":                          "subnet-0ccc",
		"SecurityGroupId.1":                 "sg-0aaa",
		"SecurityGroupId.2":                 "sg-0bbb",
		"InstanceInitiatedShutdownBehavior": "terminate",
		"InstanceMarketOptions.MarketType":  "",
	} {
		require.Equal(t, want, form.Get(param), "RunInstances parameter %s", param)
	}
	require.Regexp(t, regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=`+testAccessKey+`/\d{8}/`+testRegion+
		`/ec2/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*x-amz-date[a-z0-9;-]*, Signature=[0-9a-f]{64}$`),
		runs[0].authorization, "the request is signed with SigV4 by the credentials of the environment")

	inst, ok := b.fake.instance(m.ID)
	require.True(t, ok, "Launch returned the ID of the instance EC2 made")
	wantTags := map[string]string{
		provider.TagPool:    "etl",
		provider.TagCluster: "prod",
		provider.TagIntent:  "intent-0001",
		provider.TagNode:    "etl-1",
		"Name":              "etl-1",
		"team":              "data",
		"cost-center":       "42",
	}
	require.Empty(t, cmp.Diff(map[string]map[string]string{"instance": wantTags, "volume": wantTags}, inst.tags),
		"tags by resource type")

	want := provider.Machine{
		ID: inst.id, Node: "etl-1", Pool: "etl", Cluster: "prod", Intent: "intent-0001",
		State: provider.Pending, Address: inst.ip, LaunchedAt: inst.launched, Tags: wantTags,
	}
	require.Empty(t, cmp.Diff(want, m))
}

func TestLaunchUserData(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)

	_, err := b.prov.Launch(context.Background(), launchRequest("intent-ud", "etl-7"))
	require.NoError(t, err)
	runs := b.fake.requestsOf("RunInstances")
	require.Len(t, runs, 1)
	raw, err := base64.StdEncoding.DecodeString(runs[0].form.Get("UserData"))
	require.NoError(t, err)
	script := string(raw)
	lines := strings.Split(script, "\n")

	require.Equal(t, "#!/bin/sh", lines[0])
	require.Equal(t, 1, strings.Count(script, testToken), "the token appears once, in the file it is written to")
	tokenAt := indexOf(t, lines, "cat >'/etc/drover/agent.token' <<'DROVER_EOF'")
	require.Equal(t, testToken, lines[tokenAt+1])
	require.Less(t, indexOf(t, lines, "umask 077"), tokenAt, "the token file is made under umask 077, so it is 0600")
	caAt := indexOf(t, lines, "cat >'/etc/drover/ca.pem' <<'DROVER_EOF'")
	require.Equal(t, "-----BEGIN CERTIFICATE-----", lines[caAt+1])

	downloadAt := indexOf(t, lines, "\tcurl -fsSL --retry 5 -o \"$tmp\" 'https://releases.example.com/drover/v1.2.3/drover-linux-amd64'")
	checkAt := indexOf(t, lines, "if ! \"$tmp\" --help 2>/dev/null | grep -q drover; then")
	installAt := indexOf(t, lines, "mv -f \"$tmp\" '/usr/local/bin/drover'")
	require.Less(t, downloadAt, checkAt)
	require.Less(t, checkAt, installAt, "the download is checked before it is put in place")

	setupAt := indexOf(t, lines, "apt-get install -y jq")
	agentArgs := "'/usr/local/bin/drover' 'agent' '--server' 'https://drover.example.com:8443' '--name' 'etl-7' " +
		"'--data' '/var/lib/drover' '--token-file' '/etc/drover/agent.token' '--ca' '/etc/drover/ca.pem' " +
		"'--capability' 'gpu=none' '--capability' 'zone=a'"
	systemdAt := indexOf(t, lines, "\tsystemd-run --unit=drover-agent --description='drover agent' "+
		"--property=Restart=on-failure --property=RestartSec=5 "+agentArgs)
	nohupAt := indexOf(t, lines, "\tnohup "+agentArgs+" >>'/var/log/drover-agent.log' 2>&1 </dev/null &")
	require.Less(t, installAt, setupAt)
	require.Less(t, setupAt, systemdAt, "the user's setup runs before the agent starts")
	require.Less(t, setupAt, nohupAt)
}

func indexOf(t *testing.T, lines []string, line string) int {
	t.Helper()
	for i, l := range lines {
		if l == line {
			return i
		}
	}
	require.Failf(t, "line not in the script", "%q", line)
	return -1
}

func TestLaunchSpot(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Spot = true
		c.SpotMaxPrice = "0.05"
	})

	m, err := b.prov.Launch(context.Background(), launchRequest("intent-spot", "etl-2"))
	require.NoError(t, err)

	runs := b.fake.requestsOf("RunInstances")
	require.Len(t, runs, 1)
	form := runs[0].form
	for param, want := range map[string]string{
		"InstanceMarketOptions.MarketType":                               "spot",
		"InstanceMarketOptions.SpotOptions.MaxPrice":                     "0.05",
		"InstanceMarketOptions.SpotOptions.SpotInstanceType":             "one-time",
		"InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior": "terminate",
		"ClientToken": "intent-spot",
	} {
		require.Equal(t, want, form.Get(param), "RunInstances parameter %s", param)
	}
	inst, ok := b.fake.instance(m.ID)
	require.True(t, ok)
	require.Equal(t, "etl", inst.tags["spot-instances-request"][provider.TagPool], "the spot request is tagged too")
	require.Equal(t, "intent-spot", inst.tags["instance"][provider.TagIntent])
}

func TestLaunchIsIdempotentPerIntent(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	first, err := b.prov.Launch(ctx, launchRequest("intent-same", "etl-3"))
	require.NoError(t, err)
	again, err := b.prov.Launch(ctx, launchRequest("intent-same", "etl-3"))
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID, "a repeated Launch returns the first instance")
	require.Equal(t, 1, b.fake.instanceCount(), "a repeated Launch starts no second instance")

	// EC2 refuses to reuse a token for a different request, such as one
	// with another join token in its user data.
	changed := launchRequest("intent-same", "etl-3")
	changed.Agent.Token = "another-token"
	_, err = b.prov.Launch(ctx, changed)
	require.ErrorContains(t, err, "IdempotentParameterMismatch")
	require.Equal(t, 1, b.fake.instanceCount())

	other, err := b.prov.Launch(ctx, launchRequest("intent-other", "etl-4"))
	require.NoError(t, err)
	require.NotEqual(t, first.ID, other.ID)

	listed, err := b.prov.List(ctx, "etl", "prod")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{first.ID, other.ID}, machineIDs(listed))
}

func TestListFollowsPages(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.fake.pageSize = 2
	ctx := context.Background()

	launch := func(pool, cluster, intent string) provider.Machine {
		req := launchRequest(intent, "node-"+intent)
		req.Pool, req.Cluster = pool, cluster
		m, err := b.prov.Launch(ctx, req)
		require.NoError(t, err)
		return m
	}
	var want []string
	for i := range 5 {
		want = append(want, launch("etl", "prod", fmt.Sprintf("etl-%d", i)).ID)
	}
	launch("web", "prod", "web-0")     // another pool
	launch("etl", "staging", "stg-0")  // another cluster
	gone := launch("etl", "prod", "x") // terminated, no longer listed
	b.fake.setState(gone.ID, "terminated")
	running := launch("etl", "prod", "run-0")
	b.fake.setState(running.ID, "running")
	want = append(want, running.ID)
	stopped := launch("etl", "prod", "stop-0")
	b.fake.setState(stopped.ID, "stopped")
	want = append(want, stopped.ID)

	got, err := b.prov.List(ctx, "etl", "prod")
	require.NoError(t, err)
	require.ElementsMatch(t, want, machineIDs(got))
	pages := b.fake.requestsOf("DescribeInstances")
	require.Len(t, pages, 4, "7 instances at 2 a page")
	require.Empty(t, pages[0].form.Get("NextToken"))
	for _, p := range pages[1:] {
		require.NotEmpty(t, p.form.Get("NextToken"), "later pages carry the token of the one before")
	}

	states := make(map[string]provider.State)
	for _, m := range got {
		states[m.ID] = m.State
		require.Equal(t, "etl", m.Pool)
		require.Equal(t, "prod", m.Cluster)
		require.Equal(t, "node-"+m.Intent, m.Node, "node and intent come back from the tags")
	}
	require.Equal(t, provider.Running, states[running.ID])
	require.Equal(t, provider.Terminating, states[stopped.ID])
	require.Equal(t, provider.Pending, states[want[0]])
}

func TestThrottledCallsAreRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	b.fake.throttle(3)
	m, err := b.prov.Launch(ctx, launchRequest("intent-thr", "etl-5"))
	require.NoError(t, err, "3 throttled attempts, then success, within 5 attempts")
	runs := b.fake.requestsOf("RunInstances")
	require.Len(t, runs, 4)
	for _, r := range runs {
		require.Equal(t, "intent-thr", r.form.Get("ClientToken"), "every retry keeps the idempotency token")
	}
	require.Equal(t, 1, b.fake.instanceCount())

	b.fake.throttle(DefaultMaxAttempts)
	_, err = b.prov.List(ctx, "etl", "prod")
	require.ErrorContains(t, err, "RequestLimitExceeded", "throttled on every attempt, the call gives up")
	require.NotErrorIs(t, err, provider.ErrCapacity)
	listed, err := b.prov.List(ctx, "etl", "prod")
	require.NoError(t, err)
	require.Equal(t, []string{m.ID}, machineIDs(listed))
}

func TestLaunchCapacityErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code       string
		status     int
		isCapacity bool
	}{
		{"InsufficientInstanceCapacity", http.StatusInternalServerError, true},
		{"InstanceLimitExceeded", http.StatusBadRequest, true},
		{"VcpuLimitExceeded", http.StatusBadRequest, true},
		{"MaxSpotInstanceCountExceeded", http.StatusBadRequest, true},
		{"SpotMaxPriceTooLow", http.StatusBadRequest, true},
		{"InvalidAMIID.NotFound", http.StatusBadRequest, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			msg := "We currently do not have sufficient m7i.large capacity (" + tc.code + ")."
			b.fake.failNextRun(tc.status, tc.code, msg)

			_, err := b.prov.Launch(context.Background(), launchRequest("intent-cap", "etl-6"))
			require.Error(t, err)
			require.Equal(t, tc.isCapacity, errors.Is(err, provider.ErrCapacity), "errors.Is(err, ErrCapacity) for %v", err)
			require.ErrorContains(t, err, msg, "AWS's message is kept")
			require.ErrorContains(t, err, tc.code)
			require.Len(t, b.fake.requestsOf("RunInstances"), 1, "an error that is not throttling is not retried")
			require.Equal(t, 0, b.fake.instanceCount())
		})
	}
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	m, err := b.prov.Launch(ctx, launchRequest("intent-term", "etl-8"))
	require.NoError(t, err)
	require.NoError(t, b.prov.Terminate(ctx, m.ID))
	inst, _ := b.fake.instance(m.ID)
	require.Equal(t, "shutting-down", inst.state)
	listed, err := b.prov.List(ctx, "etl", "prod")
	require.NoError(t, err)
	require.Len(t, listed, 1)
	require.Equal(t, provider.Terminating, listed[0].State, "a shutting-down instance is still listed, as terminating")

	b.fake.setState(m.ID, "terminated")
	listed, err = b.prov.List(ctx, "etl", "prod")
	require.NoError(t, err)
	require.Empty(t, listed)

	require.NoError(t, b.prov.Terminate(ctx, "i-0000000000000dead"), "an instance EC2 does not know is already gone")
	require.ErrorContains(t, b.prov.Terminate(ctx, " "), "id: required")
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"no type or image", func(c *Config) { c.InstanceType, c.ImageID = "", "" },
			[]string{"instance_type: required", "image_id: required"}},
		{"max price without spot", func(c *Config) { c.SpotMaxPrice = "0.1" },
			[]string{"spot_max_price: set without spot"}},
		{"bad max price", func(c *Config) { c.Spot, c.SpotMaxPrice = true, "cheap" },
			[]string{`spot_max_price: "cheap" is not a positive decimal price`}},
		{"bad shutdown", func(c *Config) { c.ShutdownBehavior = "hibernate" },
			[]string{`shutdown_behavior: "hibernate" is neither`}},
		{"stop with spot", func(c *Config) { c.Spot, c.ShutdownBehavior = true, "stop" },
			[]string{"shutdown_behavior: \"stop\" is not possible with spot"}},
		{"reserved tags", func(c *Config) { c.Tags = map[string]string{"aws:x": "1", provider.TagPool: "p"} },
			[]string{"tags.aws:x: the aws: prefix is reserved", "tags.drover:pool: the drover: prefix is reserved"}},
		{"empty group", func(c *Config) { c.SecurityGroupIDs = []string{"sg-1", ""} },
			[]string{"security_group_ids[1]: must not be empty"}},
		{"bad endpoint", func(c *Config) { c.Endpoint = "localhost:4566" },
			[]string{`endpoint: "localhost:4566" is not an http or https URL`}},
		{"no region", func(c *Config) { c.Region = "" },
			[]string{"region: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Region: testRegion, InstanceType: "t3.micro", ImageID: "ami-1"}
			tc.change(&cfg)
			_, err := New(context.Background(), cfg)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestLaunchValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)

	req := launchRequest("", "")
	req.Agent.Token = "two\nlines"
	req.Agent.DownloadURL = "ftp://example.com/drover"
	_, err := b.prov.Launch(context.Background(), req)
	for _, w := range []string{"intent: required", "node: required", "agent.token: must be one line",
		`agent.download_url: "ftp://example.com/drover" is not an http or https URL`} {
		require.ErrorContains(t, err, w)
	}

	req = launchRequest(strings.Repeat("i", 65), "etl-9")
	_, err = b.prov.Launch(context.Background(), req)
	require.ErrorContains(t, err, "intent: longer than the 64 characters of an EC2 client token")

	require.Empty(t, b.fake.requestsOf("RunInstances"), "nothing is sent for a bad request")

	big := setup(t, func(c *Config) { c.UserData = strings.Repeat("#", maxUserData-100) })
	_, err = big.prov.Launch(context.Background(), launchRequest("intent-big", "etl-9"))
	require.ErrorContains(t, err, "more than EC2's 16384")
	require.Empty(t, big.fake.requestsOf("RunInstances"))
}

func machineIDs(ms []provider.Machine) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	sort.Strings(ids)
	return ids
}
