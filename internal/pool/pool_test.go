package pool_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/pool"
)

// burst returns the pool of examples/pools/burst.yaml as the pool file
// loader fills it (defaults included), changed by opts.
func burst(opts ...func(*pool.Pool)) pool.Pool {
	p := pool.Pool{
		Name:              "burst",
		Provider:          pool.ProviderLocal,
		Capabilities:      map[string]string{"burst": "true"},
		Min:               0,
		Max:               4,
		Policy:            pool.Policy{Queue: &pool.QueuePolicy{HighWater: 2, LowWater: 0}},
		StartTimeout:      30 * time.Second,
		IdleTimeout:       10 * time.Second,
		ScaleDownCooldown: pool.DefaultScaleDownCooldown,
		MaxFailures:       pool.DefaultMaxFailures,
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// fieldsOf returns the field names of every *job.FieldError in err, in
// order, looking through joined errors at any depth.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *job.FieldError
		require.True(t, errors.As(e, &fe), "error %q does not name a field", e)
		out = append(out, fe.Field)
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestValidate(t *testing.T) {
	t.Parallel()
	schedule := func(p *pool.Pool) {
		p.Min, p.Max = 1, 5
		p.Policy = pool.Policy{Schedule: &pool.SchedulePolicy{Cron: "0 2 * * *", TimeZone: "Europe/Amsterdam", Size: 4, Duration: 3 * time.Hour}}
		p.Desired = 1
	}
	cases := []struct {
		name   string
		change func(*pool.Pool)
		fields []string // nil: valid
	}{
		{"burst as written", func(*pool.Pool) {}, nil},
		{"fixed", func(p *pool.Pool) {
			p.Policy = pool.Policy{Fixed: &pool.FixedPolicy{Size: 3}}
			p.Desired = 3
		}, nil},
		{"schedule", schedule, nil},
		{"every provider: ssh", func(p *pool.Pool) { p.Provider = pool.ProviderSSH }, nil},
		{"every provider: ec2", func(p *pool.Pool) { p.Provider = pool.ProviderEC2 }, nil},
		{"min equals max", func(p *pool.Pool) { p.Min, p.Max, p.Desired = 4, 4, 4 }, nil},
		{"no idle timeout", func(p *pool.Pool) { p.IdleTimeout = 0 }, nil},

		{"bad name", func(p *pool.Pool) { p.Name = "Burst Pool!" }, []string{"pool"}},
		{"empty name", func(p *pool.Pool) { p.Name = "" }, []string{"pool"}},
		{"unknown provider", func(p *pool.Pool) { p.Provider = "gce" }, []string{"provider"}},
		{"no provider", func(p *pool.Pool) { p.Provider = "" }, []string{"provider"}},
		{"negative min", func(p *pool.Pool) { p.Min = -1 }, []string{"min"}},
		{"min above the limit", func(p *pool.Pool) { p.Min, p.Max, p.Desired = pool.MaxSize+1, pool.MaxSize, pool.MaxSize }, []string{"min", "max", "desired"}},
		{"max zero", func(p *pool.Pool) { p.Max = 0 }, []string{"max"}},
		{"max above the limit", func(p *pool.Pool) { p.Max = pool.MaxSize + 1 }, []string{"max"}},
		{"max below min", func(p *pool.Pool) { p.Min, p.Max, p.Desired = 3, 2, 2 }, []string{"max", "desired"}},
		{"capability named pool", func(p *pool.Pool) { p.Capabilities = map[string]string{"pool": "other"} }, []string{"capabilities.pool"}},
		{"fixed size above max", func(p *pool.Pool) {
			p.Policy = pool.Policy{Fixed: &pool.FixedPolicy{Size: 5}}
		}, []string{"policy.fixed.size"}},
		{"fixed size below min", func(p *pool.Pool) {
			p.Min, p.Desired = 2, 2
			p.Policy = pool.Policy{Fixed: &pool.FixedPolicy{Size: 1}}
		}, []string{"policy.fixed.size"}},
		{"negative high water", func(p *pool.Pool) { p.Policy.Queue.HighWater = -1 }, []string{"policy.queue.high_water", "policy.queue.low_water"}},
		{"low water above high water", func(p *pool.Pool) { p.Policy.Queue.LowWater = 3 }, []string{"policy.queue.low_water"}},
		{"negative low water", func(p *pool.Pool) { p.Policy.Queue.LowWater = -1 }, []string{"policy.queue.low_water"}},
		{"schedule size above max", func(p *pool.Pool) { schedule(p); p.Policy.Schedule.Size = 6 }, []string{"policy.schedule.size"}},
		{"schedule without duration", func(p *pool.Pool) { schedule(p); p.Policy.Schedule.Duration = 0 }, []string{"policy.schedule.duration"}},
		{"schedule bad cron", func(p *pool.Pool) { schedule(p); p.Policy.Schedule.Cron = "0 25 * * *" }, []string{"policy.schedule.cron"}},
		{"schedule bad zone", func(p *pool.Pool) { schedule(p); p.Policy.Schedule.TimeZone = "Mars/Olympus" }, []string{"policy.schedule.time_zone"}},
		{"schedule bad cron and zone", func(p *pool.Pool) {
			schedule(p)
			p.Policy.Schedule.Cron, p.Policy.Schedule.TimeZone = "often", "Mars/Olympus"
		}, []string{"policy.schedule.time_zone", "policy.schedule.cron"}},
		{"no policy", func(p *pool.Pool) { p.Policy = pool.Policy{} }, []string{"policy"}},
		{"two policies", func(p *pool.Pool) { p.Policy.Fixed = &pool.FixedPolicy{Size: 0} }, []string{"policy"}},
		{"start timeout under a second", func(p *pool.Pool) { p.StartTimeout = 500 * time.Millisecond }, []string{"start_timeout"}},
		{"negative idle timeout", func(p *pool.Pool) { p.IdleTimeout = -time.Second }, []string{"idle_timeout"}},
		{"negative up cooldown", func(p *pool.Pool) { p.ScaleUpCooldown = -time.Second }, []string{"cooldown.up"}},
		{"negative down cooldown", func(p *pool.Pool) { p.ScaleDownCooldown = -time.Second }, []string{"cooldown.down"}},
		{"no max failures", func(p *pool.Pool) { p.MaxFailures = 0 }, []string{"max_failures"}},
		{"too many max failures", func(p *pool.Pool) { p.MaxFailures = 101 }, []string{"max_failures"}},
		{"desired above max", func(p *pool.Pool) { p.Desired = 5 }, []string{"desired"}},
		{"several at once", func(p *pool.Pool) {
			p.Name, p.Provider, p.Max, p.StartTimeout, p.MaxFailures = "", "aws", 0, 0, 0
		}, []string{"pool", "provider", "max", "start_timeout", "max_failures"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := burst(c.change)
			err := p.Validate()
			if c.fields == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, c.fields, fieldsOf(t, err), "fields named by %q", err)
		})
	}
}

// TestValidateMessages: the messages say what is wrong with the value the
// user wrote, not only where.
func TestValidateMessages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*pool.Pool)
		want   []string
	}{
		{"provider", func(p *pool.Pool) { p.Provider = "gce" }, []string{`provider: must be "local", "ssh" or "ec2", not "gce"`}},
		{"max below min", func(p *pool.Pool) { p.Min, p.Max, p.Desired = 3, 2, 2 }, []string{"max: 2 is less than min 3"}},
		{"cron", func(p *pool.Pool) {
			p.Policy = pool.Policy{Schedule: &pool.SchedulePolicy{Cron: "0 25 * * *", Size: 1, Duration: time.Hour}}
		}, []string{`policy.schedule.cron: "0 25 * * *"`}},
		{"capability pool", func(p *pool.Pool) { p.Capabilities = map[string]string{"pool": "x"} }, []string{"capabilities.pool: is set by drover to the pool's name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := burst(c.change)
			err := p.Validate()
			require.Error(t, err)
			for _, w := range c.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		caps map[string]string
		want map[string]string
	}{
		{"no capabilities", nil, map[string]string{"pool": "burst"}},
		{"capabilities kept", map[string]string{"burst": "true", "gpu": "a100"}, map[string]string{"burst": "true", "gpu": "a100", "pool": "burst"}},
		{"pool always the name", map[string]string{"pool": "other"}, map[string]string{"pool": "burst"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := burst(func(p *pool.Pool) { p.Capabilities = c.caps })
			got := p.Attributes()
			require.Equal(t, c.want, got)
			got["extra"] = "x"
			require.NotContains(t, p.Capabilities, "extra", "Attributes must not hand out the pool's own map")
		})
	}
}

func TestPolicyKind(t *testing.T) {
	t.Parallel()
	cases := []struct {
		policy pool.Policy
		want   string
	}{
		{pool.Policy{Fixed: &pool.FixedPolicy{}}, "fixed"},
		{pool.Policy{Queue: &pool.QueuePolicy{}}, "queue"},
		{pool.Policy{Schedule: &pool.SchedulePolicy{}}, "schedule"},
		{pool.Policy{}, ""},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.policy.Kind())
	}
}

func TestMachineStateEnded(t *testing.T) {
	t.Parallel()
	all := []pool.MachineState{pool.Launching, pool.Starting, pool.Ready, pool.Draining, pool.Terminating, pool.Terminated, pool.Failed}
	var ended []pool.MachineState
	for _, s := range all {
		if s.Ended() {
			ended = append(ended, s)
		}
	}
	require.Equal(t, []pool.MachineState{pool.Terminated, pool.Failed}, ended)
}
