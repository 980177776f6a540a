// Package pool holds what drover knows of its pools: named groups of nodes
// of one shape, from one provider, kept at a size a policy decides, and the
// machines launched for them. The manager (manager.go) owns the loop that
// launches, watches, drains and terminates machines; the providers
// (internal/provider) only do what it says.
package pool

import (
	"encoding/json"
	"errors"
	"maps"
	"time"

	"github.com/drover-dev/drover/internal/cron"
	"github.com/drover-dev/drover/internal/job"
)

// Provider names.
const (
	ProviderLocal = "local"
	ProviderSSH   = "ssh"
	ProviderEC2   = "ec2"
)

// Defaults and bounds.
const (
	DefaultStartTimeout                    = 2 * time.Minute
	DefaultIdleTimeout                     = 5 * time.Minute
	DefaultScaleUpCooldown   time.Duration = 0
	DefaultScaleDownCooldown time.Duration = 0
	// DefaultMaxFailures is K: launches in a row that fail (or never
	// register) before the pool backs off.
	DefaultMaxFailures = 3
	// DefaultBackoff is how long a pool waits after K failures before it
	// tries again; it doubles while failures go on, up to MaxBackoff.
	DefaultBackoff = 30 * time.Second
	MaxBackoff     = 30 * time.Minute
	MaxSize        = 1000
	// AttrPool is the node attribute naming the pool a node belongs to;
	// a job's `pool: NAME` is the constraint AttrPool = NAME.
	AttrPool = "pool"
)

// Pool is a pool's definition and its run-time wish (Desired, set by
// `pool scale` for a fixed pool).
type Pool struct {
	Name     string
	Provider string
	// Spec is the provider's node spec (ec2: instance type, image...;
	// ssh: hosts; local: nothing), as the pool file gave it, decoded by
	// the provider.
	Spec json.RawMessage
	// Capabilities become the attributes of the pool's nodes, with
	// AttrPool = Name.
	Capabilities map[string]string
	Min, Max     int
	Policy       Policy
	StartTimeout time.Duration
	IdleTimeout  time.Duration
	// Cooldowns: the least time between two scale-ups, and between two
	// scale-downs.
	ScaleUpCooldown   time.Duration
	ScaleDownCooldown time.Duration
	MaxFailures       int
	// Desired is the size a fixed pool keeps (pool scale changes it).
	Desired   int
	CreatedAt time.Time
	UpdatedAt time.Time
	// Status is what the manager keeps of the pool between rounds.
	Status Status
	// Packages are shipped to every node of the pool: one per directory,
	// the newest.
	Packages []Package
}

// Package is a .tar.gz shipped to a pool's nodes (`drover node sync`) and
// unpacked into To on each; nodes that join later get it at start.
type Package struct {
	// SHA256 is the hex SHA-256 of the archive, which the server keeps
	// under that name.
	SHA256  string
	To      string
	Size    int64
	AddedAt time.Time
}

// Status is a pool's run-time record, kept in the store so a restarted
// server goes on where it was (backoff, cooldowns).
type Status struct {
	// Failures counts launches in a row that failed or never
	// registered; a registration resets it.
	Failures int
	// BackoffUntil: no launch before it (after MaxFailures failures).
	BackoffUntil time.Time
	// LastDecision says why the pool last changed size, or did not;
	// Desired is the size it asked for.
	LastDecision string
	Desired      int
	LastScaleUp  time.Time
	LastDown     time.Time
}

// MachineState is where a pool's machine is in its life.
type MachineState string

const (
	// Launching: the launch is on record; the provider may not have it
	// yet (a crash here leaves a record the reconcile resolves).
	Launching MachineState = "launching"
	// Starting: the provider accepted it; its agent has not registered.
	Starting MachineState = "starting"
	// Ready: its agent registered; it runs work.
	Ready MachineState = "ready"
	// Draining: scale-down chose it; it takes no new work and is
	// terminated once its tasks have ended.
	Draining MachineState = "draining"
	// Terminating: the provider was asked to stop it.
	Terminating MachineState = "terminating"
	// Terminated: gone, as the provider confirmed.
	Terminated MachineState = "terminated"
	// Failed: it never registered (start timeout) or could not be
	// launched; it is terminated too.
	Failed MachineState = "failed"
)

// Ended reports whether the machine is gone.
func (s MachineState) Ended() bool { return s == Terminated || s == Failed }

// Machine is one machine launched for a pool: the launch record written
// before the provider is called, and what became of it.
type Machine struct {
	// ID is the launch intent: the record's key, and the tag the
	// provider puts on the machine.
	ID         string
	Pool       string
	Node       string
	ProviderID string
	State      MachineState
	Reason     string
	Address    string
	LaunchedAt time.Time
	// RegisteredAt is when its agent first synced (zero before).
	RegisteredAt time.Time
	EndedAt      time.Time
	UpdatedAt    time.Time
}

// Policy is a pool's size policy as written in its file: exactly one of
// its fields is set.
type Policy struct {
	Fixed    *FixedPolicy    `json:"fixed,omitempty"`
	Queue    *QueuePolicy    `json:"queue,omitempty"`
	Schedule *SchedulePolicy `json:"schedule,omitempty"`
}

// FixedPolicy keeps Size nodes, replacing those that die.
type FixedPolicy struct {
	Size int `json:"size"`
}

// QueuePolicy scales by the pool's pending tasks: up while more than
// HighWater wait, down (idle nodes only) while at most LowWater wait.
type QueuePolicy struct {
	HighWater int `json:"high_water"`
	LowWater  int `json:"low_water"`
}

// SchedulePolicy keeps Size nodes from each cron time for Duration (the
// "N servers before the nightly jobs"), and Min otherwise.
type SchedulePolicy struct {
	Cron     string        `json:"cron"`
	TimeZone string        `json:"time_zone,omitempty"`
	Size     int           `json:"size"`
	Duration time.Duration `json:"duration"`
}

// Kind names the policy that is set.
func (p Policy) Kind() string {
	switch {
	case p.Fixed != nil:
		return "fixed"
	case p.Queue != nil:
		return "queue"
	case p.Schedule != nil:
		return "schedule"
	}
	return ""
}

// Attributes returns the attributes a node of the pool gets.
func (p Pool) Attributes() map[string]string {
	out := maps.Clone(p.Capabilities)
	if out == nil {
		out = map[string]string{}
	}
	out[AttrPool] = p.Name
	return out
}

// Validate reports every problem with p at once, each a *job.FieldError
// named as in the pool file.
func (p *Pool) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, job.Fieldf(field, format, args...)) }
	if !job.ValidName(p.Name) {
		bad("pool", "%q %s", p.Name, job.NameRule)
	}
	switch p.Provider {
	case ProviderLocal, ProviderSSH, ProviderEC2:
	default:
		bad("provider", "must be %q, %q or %q, not %q", ProviderLocal, ProviderSSH, ProviderEC2, p.Provider)
	}
	if p.Min < 0 || p.Min > MaxSize {
		bad("min", "must be between 0 and %d, not %d", MaxSize, p.Min)
	}
	if p.Max < 1 || p.Max > MaxSize {
		bad("max", "must be between 1 and %d, not %d", MaxSize, p.Max)
	} else if p.Max < p.Min {
		bad("max", "%d is less than min %d", p.Max, p.Min)
	}
	for k := range p.Capabilities {
		if k == AttrPool {
			bad("capabilities."+k, "is set by drover to the pool's name")
		}
	}
	n := 0
	if f := p.Policy.Fixed; f != nil {
		n++
		if f.Size < p.Min || f.Size > p.Max {
			bad("policy.fixed.size", "must be between min %d and max %d, not %d", p.Min, p.Max, f.Size)
		}
	}
	if q := p.Policy.Queue; q != nil {
		n++
		if q.HighWater < 0 {
			bad("policy.queue.high_water", "must not be negative")
		}
		if q.LowWater < 0 || q.LowWater > q.HighWater {
			bad("policy.queue.low_water", "must be between 0 and high_water %d, not %d", q.HighWater, q.LowWater)
		}
	}
	if s := p.Policy.Schedule; s != nil {
		n++
		if s.Size < p.Min || s.Size > p.Max {
			bad("policy.schedule.size", "must be between min %d and max %d, not %d", p.Min, p.Max, s.Size)
		}
		if s.Duration <= 0 {
			bad("policy.schedule.duration", "must be more than 0s")
		}
		if _, err := parseCron(s.Cron, s.TimeZone); err != nil {
			errs = append(errs, fieldPrefix("policy.", err))
		}
	}
	if n != 1 {
		bad("policy", "needs exactly one of fixed, queue or schedule")
	}
	if p.StartTimeout < time.Second {
		bad("start_timeout", "must be at least 1s")
	}
	if p.IdleTimeout < 0 {
		bad("idle_timeout", "must not be negative")
	}
	if p.ScaleUpCooldown < 0 {
		bad("cooldown.up", "must not be negative")
	}
	if p.ScaleDownCooldown < 0 {
		bad("cooldown.down", "must not be negative")
	}
	if p.MaxFailures < 1 || p.MaxFailures > 100 {
		bad("max_failures", "must be between 1 and 100, not %d", p.MaxFailures)
	}
	if p.Desired < p.Min || p.Desired > p.Max {
		bad("desired", "must be between min %d and max %d, not %d", p.Min, p.Max, p.Desired)
	}
	return errors.Join(errs...)
}

// fieldPrefix puts prefix before the field names of the cron errors in
// err ("schedule.cron" → "policy.schedule.cron").
func fieldPrefix(prefix string, err error) error {
	var out []error
	for _, e := range job.Unjoin(err) {
		var fe *cron.FieldError
		if errors.As(e, &fe) {
			out = append(out, job.Fieldf(prefix+fe.Field, "%q: %s", fe.Value, fe.Msg))
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// parseCron parses a schedule policy's cron expression.
func parseCron(expr, tz string) (*cron.Schedule, error) { return cron.Parse(expr, tz) }
