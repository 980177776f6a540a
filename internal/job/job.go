// Package job holds what a user asks drover to run: the job key, the resolved
// specification a job runs with, and the rules a specification must obey.
// Parsing job files lives in jobspec; persistence lives in store.
package job

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/cron"
)

// Key names a job as ROLE/ENV/NAME. Role is the tenant that owns the job.
type Key struct {
	Role string
	Env  string
	Name string
}

// namePattern is what each part of a key, and every other user-given name,
// must match: it keeps names safe in paths, URLs, shell output and logs.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// portName is what a named port must match: it becomes part of an
// environment variable's name.
var portName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// ValidName reports whether s is a legal key part or node name.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// NameRule says in words what [ValidName] accepts, for error messages.
const NameRule = "must be 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"

// ParseKey parses "ROLE/ENV/NAME".
func ParseKey(s string) (Key, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return Key{}, fmt.Errorf("job key %q: must be ROLE/ENV/NAME", s)
	}
	k := Key{Role: parts[0], Env: parts[1], Name: parts[2]}
	for i, p := range parts {
		if !ValidName(p) {
			return Key{}, fmt.Errorf("job key %q: %s %q %s", s, [...]string{"role", "env", "name"}[i], p, NameRule)
		}
	}
	return k, nil
}

// String returns "ROLE/ENV/NAME".
func (k Key) String() string { return k.Role + "/" + k.Env + "/" + k.Name }

// Type says how drover treats a job's instances when their tasks end.
type Type string

const (
	// Batch jobs run each instance to an end state once (with retries).
	Batch Type = "batch"
	// Service jobs keep their instances running until killed.
	Service Type = "service"
)

// Defaults for fields a job file may leave out.
const (
	DefaultInstances     = 1
	DefaultCPU           = 100      // millicores
	DefaultMemory        = 64 << 20 // bytes
	DefaultRetryAttempts = 3        // see RELIABILITY.md defaults
	DefaultRetryBackoff  = 10 * time.Second
	DefaultKillGrace     = 5 * time.Second
	// DefaultRescheduleAttempts and DefaultRescheduleDelay are the budget
	// for the fleet's failures (LOST) when a job names none.
	DefaultRescheduleAttempts = 3
	DefaultRescheduleDelay    = 5 * time.Second
	// Defaults of a service's restart policy and health check.
	DefaultRestartDelay    = time.Second
	DefaultRestartAttempts = 3
	DefaultRestartInterval = 5 * time.Minute
	DefaultHealthInterval  = 10 * time.Second
	DefaultHealthTimeout   = 2 * time.Second
	DefaultHealthFailures  = 3
	MaxInstances           = 10000
	MaxRetryAttempts       = 100
	MaxBackoff             = 10 * time.Minute
)

// Spec is the fully resolved specification of one job version. It is
// immutable once stored: a changed spec is a new version.
type Spec struct {
	Key         Key          `json:"-"`
	Type        Type         `json:"type"`
	Instances   int          `json:"instances"`
	Priority    int          `json:"priority"`
	Task        TaskSpec     `json:"task"`
	Constraints []Constraint `json:"constraints,omitempty"`
	// Node pins every task to the node of that name ("" places freely).
	Node string `json:"node,omitempty"`
	// Pool places every task on nodes of that pool (those whose "pool"
	// attribute is the name); a queue pool scales by such tasks.
	Pool       string     `json:"pool,omitempty"`
	Retry      Retry      `json:"retry"`
	Reschedule Reschedule `json:"reschedule"`
	// Restart is how a service's instance is started again when its
	// task exits; batch jobs ignore it.
	Restart Restart `json:"restart"`
	// Schedule makes a batch job run at cron times instead of once now.
	Schedule *Schedule `json:"schedule,omitempty"`
}

// Overlap says what a schedule does at a fire time while an earlier run of
// the job is still active.
type Overlap string

const (
	// OverlapAllow starts the new run beside the active ones.
	OverlapAllow Overlap = "allow"
	// OverlapForbid skips the fire time (recorded as an event).
	OverlapForbid Overlap = "forbid"
	// OverlapReplace kills the active runs and starts the new one once
	// they have ended.
	OverlapReplace Overlap = "replace"
)

// CatchUp says what a schedule does with fire times it missed (the server
// was down, the clock jumped).
type CatchUp string

const (
	// CatchUpSkip runs none of them; each is recorded as an event.
	CatchUpSkip CatchUp = "skip"
	// CatchUpLatest runs the newest of them once.
	CatchUpLatest CatchUp = "latest"
	// CatchUpAll runs each of them, the newest CatchUpLimit at most.
	CatchUpAll CatchUp = "all"
)

// Schedule defaults and bounds.
const (
	DefaultOverlap      = OverlapForbid
	DefaultCatchUp      = CatchUpSkip
	DefaultCatchUpLimit = 10
	MaxCatchUpLimit     = 1000
)

// Schedule is when a scheduled job runs: a cron expression in a time zone
// (see package schedule for the rules), with its overlap and catch-up
// policies.
type Schedule struct {
	Cron         string  `json:"cron"`
	TimeZone     string  `json:"time_zone,omitempty"`
	Overlap      Overlap `json:"overlap"`
	CatchUp      CatchUp `json:"catch_up"`
	CatchUpLimit int     `json:"catch_up_limit"`
}

// Restart is a service's policy for a task that exits (or fails its health
// check): a new task for the instance after Delay, on the same node while
// fewer than Attempts restarts happened there within Interval, on another
// node after that.
type Restart struct {
	Delay    time.Duration `json:"delay"`
	Attempts int           `json:"attempts"`
	Interval time.Duration `json:"interval"`
}

// Health is a check the agent runs against a running task: a command that
// must exit 0, or an HTTP GET that must answer 2xx. Failures in a row end
// the task (FAILED, health_failed).
type Health struct {
	Command  []string      `json:"command,omitempty"`
	HTTP     string        `json:"http,omitempty"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	Failures int           `json:"failures"`
}

// TaskSpec is what each task of the job runs.
type TaskSpec struct {
	Command   []string          `json:"command"`
	Env       map[string]string `json:"env,omitempty"`
	Timeout   time.Duration     `json:"timeout,omitempty"` // zero: no timeout
	KillGrace time.Duration     `json:"kill_grace"`        // SIGTERM to SIGKILL
	Resources Resources         `json:"resources"`
	// Ports names ports the agent allocates for the task, passed in
	// DROVER_PORT_<NAME> (upper case).
	Ports  []string `json:"ports,omitempty"`
	Health *Health  `json:"health,omitempty"`
}

// Resources a task reserves on its node.
type Resources struct {
	CPU    int64 `json:"cpu"`    // millicores
	Memory int64 `json:"memory"` // bytes
}

// Fits reports whether r fits into free.
func (r Resources) Fits(free Resources) bool { return r.CPU <= free.CPU && r.Memory <= free.Memory }

// Add returns r plus o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPU: r.CPU + o.CPU, Memory: r.Memory + o.Memory}
}

// Sub returns r minus o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{CPU: r.CPU - o.CPU, Memory: r.Memory - o.Memory}
}

// Operator compares a node attribute with a constraint's value.
type Operator string

// Constraint operators.
const (
	OpEqual    Operator = "="
	OpNotEqual Operator = "!="
)

// Constraint limits the nodes a job's tasks may run on.
type Constraint struct {
	Attribute string   `json:"attribute"`
	Operator  Operator `json:"operator"`
	Value     string   `json:"value"`
}

// Matches reports whether a node with attrs satisfies c. A missing attribute
// never satisfies "=" and always satisfies "!=".
func (c Constraint) Matches(attrs map[string]string) bool {
	v, ok := attrs[c.Attribute]
	switch c.Operator {
	case OpNotEqual:
		return !ok || v != c.Value
	default:
		return ok && v == c.Value
	}
}

// Retry is the budget for the job's own failures (a FAILED task).
type Retry struct {
	Attempts int           `json:"attempts"`
	Backoff  time.Duration `json:"backoff"`
}

// Delay returns how long to wait before the n-th retry (n from 1): the
// backoff doubled for each earlier retry, capped at [MaxBackoff].
func (r Retry) Delay(n int) time.Duration {
	d := r.Backoff
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// Reschedule is the budget for the fleet's failures (a LOST task: its node
// went down, its agent lost it, it never started in time). It is counted
// apart from [Retry]: a dead machine is no fault of the job.
type Reschedule struct {
	Attempts int           `json:"attempts"`
	Delay    time.Duration `json:"delay"`
}

// FieldError is a problem with one field of a spec, named by its path in the
// job file ("task.timeout").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Fieldf builds a [FieldError].
func Fieldf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Unjoin returns the errors err joins (errors.Join), or err alone, or none
// for nil: the problems Validate and the file parsers report one by one.
func Unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Validate reports every problem with s at once, each a [FieldError].
func (s *Spec) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, Fieldf(field, format, args...)) }
	for i, p := range []string{s.Key.Role, s.Key.Env, s.Key.Name} {
		if !ValidName(p) {
			bad("job", "%s %q %s", [...]string{"role", "env", "name"}[i], p, NameRule)
		}
	}
	switch s.Type {
	case Batch:
	case Service:
	default:
		bad("type", "must be %q or %q, not %q", Batch, Service, s.Type)
	}
	if s.Instances < 1 || s.Instances > MaxInstances {
		bad("instances", "must be between 1 and %d, not %d", MaxInstances, s.Instances)
	}
	if s.Priority < 0 || s.Priority > 1000 {
		bad("priority", "must be between 0 and 1000, not %d", s.Priority)
	}
	if len(s.Task.Command) == 0 || s.Task.Command[0] == "" {
		bad("task.command", "must name a program to run")
	}
	for i, a := range s.Task.Command {
		if strings.ContainsRune(a, 0) {
			bad(fmt.Sprintf("task.command[%d]", i), "must not contain a NUL byte")
		}
	}
	for k, v := range s.Task.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad("task.env", "variable name %q must be non-empty and contain no '=' or NUL", k)
		}
		if strings.HasPrefix(k, "DROVER_") {
			bad("task.env."+k, "names starting with DROVER_ are set by drover")
		}
		if strings.ContainsRune(v, 0) {
			bad("task.env."+k, "must not contain a NUL byte")
		}
	}
	if s.Task.Timeout < 0 {
		bad("task.timeout", "must not be negative")
	}
	if s.Task.KillGrace < 0 || s.Task.KillGrace > 10*time.Minute {
		bad("task.kill_grace", "must be between 0s and 10m")
	}
	if s.Task.Resources.CPU < 1 {
		bad("task.resources.cpu", "must be at least 1 millicore, not %d", s.Task.Resources.CPU)
	}
	if s.Task.Resources.Memory < 1<<20 {
		bad("task.resources.memory", "must be at least 1MiB, not %d bytes", s.Task.Resources.Memory)
	}
	if s.Node != "" && !ValidName(s.Node) {
		bad("node", "%q %s", s.Node, NameRule)
	}
	if s.Pool != "" && !ValidName(s.Pool) {
		bad("pool", "%q %s", s.Pool, NameRule)
	}
	for i, c := range s.Constraints {
		f := fmt.Sprintf("constraints[%d]", i)
		if c.Attribute == "" {
			bad(f+".attribute", "must not be empty")
		}
		if c.Operator != OpEqual && c.Operator != OpNotEqual {
			bad(f+".operator", "must be %q or %q, not %q", OpEqual, OpNotEqual, c.Operator)
		}
	}
	if s.Retry.Attempts < 0 || s.Retry.Attempts > MaxRetryAttempts {
		bad("retry.attempts", "must be between 0 and %d, not %d", MaxRetryAttempts, s.Retry.Attempts)
	}
	if s.Retry.Backoff < 0 || s.Retry.Backoff > MaxBackoff {
		bad("retry.backoff", "must be between 0s and %s", MaxBackoff)
	}
	if s.Reschedule.Attempts < 0 || s.Reschedule.Attempts > MaxRetryAttempts {
		bad("reschedule.attempts", "must be between 0 and %d, not %d", MaxRetryAttempts, s.Reschedule.Attempts)
	}
	if s.Reschedule.Delay < 0 || s.Reschedule.Delay > MaxBackoff {
		bad("reschedule.delay", "must be between 0s and %s", MaxBackoff)
	}
	if s.Restart.Delay < 0 || s.Restart.Delay > MaxBackoff {
		bad("restart.delay", "must be between 0s and %s", MaxBackoff)
	}
	if s.Restart.Attempts < 0 || s.Restart.Attempts > MaxRetryAttempts {
		bad("restart.attempts", "must be between 0 and %d, not %d", MaxRetryAttempts, s.Restart.Attempts)
	}
	if s.Restart.Interval < 0 {
		bad("restart.interval", "must not be negative")
	}
	seen := map[string]bool{}
	for i, p := range s.Task.Ports {
		f := fmt.Sprintf("task.ports[%d]", i)
		switch {
		case !portName.MatchString(p):
			bad(f, "%q must be 1-32 characters of a-z, 0-9 and '_', starting with a letter", p)
		case seen[p]:
			bad(f, "%q is named twice", p)
		}
		seen[p] = true
	}
	if c := s.Schedule; c != nil {
		if s.Type == Service {
			bad("schedule", "a service runs until it is killed; only batch jobs can have a schedule")
		}
		if _, err := cron.Parse(c.Cron, c.TimeZone); err != nil {
			errs = append(errs, err)
		}
		switch c.Overlap {
		case OverlapAllow, OverlapForbid, OverlapReplace:
		default:
			bad("schedule.overlap", "must be %q, %q or %q, not %q", OverlapAllow, OverlapForbid, OverlapReplace, c.Overlap)
		}
		switch c.CatchUp {
		case CatchUpSkip, CatchUpLatest, CatchUpAll:
		default:
			bad("schedule.catch_up", "must be %q, %q or %q, not %q", CatchUpSkip, CatchUpLatest, CatchUpAll, c.CatchUp)
		}
		if c.CatchUpLimit < 1 || c.CatchUpLimit > MaxCatchUpLimit {
			bad("schedule.catch_up_limit", "must be between 1 and %d, not %d", MaxCatchUpLimit, c.CatchUpLimit)
		}
	}
	if h := s.Task.Health; h != nil {
		switch {
		case (len(h.Command) == 0) == (h.HTTP == ""):
			bad("task.health", "needs exactly one of command or http")
		case h.HTTP != "" && !strings.HasPrefix(h.HTTP, "http://") && !strings.HasPrefix(h.HTTP, "https://"):
			bad("task.health.http", "must be an http:// or https:// URL, not %q", h.HTTP)
		case strings.Contains(h.HTTP, "{{port") && len(s.Task.Ports) == 0:
			bad("task.health.http", "uses {{port}} but task.ports names no port")
		}
		if h.Interval < 100*time.Millisecond || h.Interval > time.Hour {
			bad("task.health.interval", "must be between 100ms and 1h")
		}
		if h.Timeout <= 0 || h.Timeout > h.Interval {
			bad("task.health.timeout", "must be more than 0s and at most the interval")
		}
		if h.Failures < 1 || h.Failures > 100 {
			bad("task.health.failures", "must be between 1 and 100, not %d", h.Failures)
		}
	}
	return errors.Join(errs...)
}
