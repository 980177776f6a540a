package jobspec

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
)

// toSpec converts a decoded job document into a spec, filling in defaults
// for what the document leaves out. It returns every problem at once: values
// that do not parse (a duration, a size, the key) and the rules
// [job.Spec.Validate] enforces.
func toSpec(in api.JobSpec) (job.Spec, []*job.FieldError) {
	var errs []*job.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &job.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	duration := func(field, v string, def time.Duration) time.Duration {
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			bad(field, "%q is not a duration: write it like 30s, 5m or 1h30m", v)
		}
		return d
	}

	s := job.Spec{
		Type:      job.Batch,
		Instances: job.DefaultInstances,
		Priority:  in.Priority,
		Task: job.TaskSpec{
			Command:   slices.Clone(in.Task.Command),
			Timeout:   duration("task.timeout", in.Task.Timeout, 0),
			KillGrace: duration("task.kill_grace", in.Task.KillGrace, job.DefaultKillGrace),
			Resources: job.Resources{CPU: job.DefaultCPU, Memory: job.DefaultMemory},
		},
		Retry:      job.Retry{Attempts: job.DefaultRetryAttempts, Backoff: job.DefaultRetryBackoff},
		Reschedule: job.Reschedule{Attempts: job.DefaultRescheduleAttempts, Delay: job.DefaultRescheduleDelay},
		Restart:    job.Restart{Delay: job.DefaultRestartDelay, Attempts: job.DefaultRestartAttempts, Interval: job.DefaultRestartInterval},
	}
	switch k, err := job.ParseKey(in.Job); {
	case in.Job == "":
		bad("job", "must be set, as ROLE/ENV/NAME")
	case err != nil:
		// "job: job key ..." would stutter.
		bad("job", "%s", strings.TrimPrefix(err.Error(), "job key "))
	default:
		s.Key = k
	}
	if in.Type != "" {
		s.Type = job.Type(in.Type)
	}
	s.Node = in.Node
	s.Pool = in.Pool
	if in.Instances != nil {
		s.Instances = *in.Instances
	}
	if len(in.Task.Env) > 0 {
		s.Task.Env = maps.Clone(in.Task.Env)
	}
	if r := in.Task.Resources; r != nil {
		if r.CPU != nil {
			s.Task.Resources.CPU = *r.CPU
		}
		if r.Memory != "" {
			m, err := ParseSize(r.Memory)
			if err != nil {
				bad("task.resources.memory", "%s", err)
			}
			s.Task.Resources.Memory = m
		}
	}
	for _, c := range in.Constraints {
		op := job.Operator(c.Operator)
		if op == "" {
			op = job.OpEqual
		}
		s.Constraints = append(s.Constraints, job.Constraint{Attribute: c.Attribute, Operator: op, Value: c.Value})
	}
	if r := in.Retry; r != nil {
		if r.Attempts != nil {
			s.Retry.Attempts = *r.Attempts
		}
		s.Retry.Backoff = duration("retry.backoff", r.Backoff, job.DefaultRetryBackoff)
	}
	if r := in.Restart; r != nil {
		s.Restart.Delay = duration("restart.delay", r.Delay, job.DefaultRestartDelay)
		if r.Attempts != nil {
			s.Restart.Attempts = *r.Attempts
		}
		s.Restart.Interval = duration("restart.interval", r.Interval, job.DefaultRestartInterval)
	}
	if len(in.Task.Ports) > 0 {
		s.Task.Ports = slices.Clone(in.Task.Ports)
	}
	if h := in.Task.Health; h != nil {
		s.Task.Health = &job.Health{
			Command:  slices.Clone(h.Command),
			HTTP:     h.HTTP,
			Interval: duration("task.health.interval", h.Interval, job.DefaultHealthInterval),
			Timeout:  duration("task.health.timeout", h.Timeout, job.DefaultHealthTimeout),
			Failures: job.DefaultHealthFailures,
		}
		if h.Failures != nil {
			s.Task.Health.Failures = *h.Failures
		}
	}
	if c := in.Schedule; c != nil {
		s.Schedule = &job.Schedule{Cron: c.Cron, TimeZone: c.TimeZone, Overlap: job.Overlap(c.Overlap),
			CatchUp: job.CatchUp(c.CatchUp), CatchUpLimit: job.DefaultCatchUpLimit}
		if c.Overlap == "" {
			s.Schedule.Overlap = job.DefaultOverlap
		}
		if c.CatchUp == "" {
			s.Schedule.CatchUp = job.DefaultCatchUp
		}
		if c.CatchUpLimit != nil {
			s.Schedule.CatchUpLimit = *c.CatchUpLimit
		}
	}
	if r := in.Reschedule; r != nil {
		if r.Attempts != nil {
			s.Reschedule.Attempts = *r.Attempts
		}
		s.Reschedule.Delay = duration("reschedule.delay", r.Delay, job.DefaultRescheduleDelay)
	}

	// Specs travel as JSON, which cannot carry bytes that are not UTF-8, and
	// YAML's !!binary strings can hold any bytes.
	for i, a := range s.Task.Command {
		if !utf8.ValidString(a) {
			bad(fmt.Sprintf("task.command[%d]", i), "must be valid UTF-8")
		}
	}
	for k, v := range s.Task.Env {
		if !utf8.ValidString(k) {
			bad("task.env", "variable name %q must be valid UTF-8", k)
		} else if !utf8.ValidString(v) {
			bad("task.env."+k, "must be valid UTF-8")
		}
	}
	for i, c := range s.Constraints {
		if !utf8.ValidString(c.Attribute) || !utf8.ValidString(c.Value) {
			bad(fmt.Sprintf("constraints[%d]", i), "must be valid UTF-8")
		}
	}

	// Validate knows nothing of the text a value came from: a size that did
	// not parse is 0 to it.
	return s, WithRules(errs, s.Validate())
}

// WithRules adds to errs, the problems found converting a file, what a
// domain type's Validate said (rules) about the fields errs does not name
// already, nor the fields in skip: a value that did not parse reaches
// Validate as 0, and its own error says enough. The result is in one order
// every time (Validate may range over maps).
func WithRules(errs []*job.FieldError, rules error, skip ...string) []*job.FieldError {
	reported := map[string]bool{}
	for _, f := range skip {
		reported[f] = true
	}
	for _, e := range errs {
		reported[e.Field] = true
	}
	for _, err := range job.Unjoin(rules) {
		var fe *job.FieldError
		if !errors.As(err, &fe) {
			fe = &job.FieldError{Msg: err.Error()}
		}
		if !reported[fe.Field] {
			errs = append(errs, fe)
		}
	}
	slices.SortStableFunc(errs, func(a, b *job.FieldError) int {
		return cmp.Or(strings.Compare(a.Field, b.Field), strings.Compare(a.Msg, b.Msg))
	})
	return errs
}

// Format converts s back into a job document, for display and for editing:
// durations are Go duration strings ("1m30s"), memory is a size in the
// largest unit that holds it exactly ("64MiB"), and every field with a
// default is written out, so the document means the same spec even if the
// defaults change. [Parse] reads the document back into s.
func Format(s job.Spec) api.JobSpec {
	instances, cpu, attempts, reschedules, restarts := s.Instances, s.Task.Resources.CPU, s.Retry.Attempts, s.Reschedule.Attempts, s.Restart.Attempts
	out := api.JobSpec{
		Job:       s.Key.String(),
		Type:      string(s.Type),
		Instances: &instances,
		Priority:  s.Priority,
		Task: api.TaskSpec{
			Command:   slices.Clone(s.Task.Command),
			Env:       maps.Clone(s.Task.Env),
			KillGrace: s.Task.KillGrace.String(),
			Resources: &api.ResourcesSpec{CPU: &cpu, Memory: formatSize(s.Task.Resources.Memory)},
		},
		Retry:      &api.RetrySpec{Attempts: &attempts, Backoff: s.Retry.Backoff.String()},
		Reschedule: &api.RescheduleSpec{Attempts: &reschedules, Delay: s.Reschedule.Delay.String()},
	}
	// Written for batch jobs too, so that parsing the output gives back
	// exactly this spec.
	out.Restart = &api.RestartSpec{Delay: s.Restart.Delay.String(), Attempts: &restarts, Interval: s.Restart.Interval.String()}
	if len(s.Task.Ports) > 0 {
		out.Task.Ports = slices.Clone(s.Task.Ports)
	}
	if h := s.Task.Health; h != nil {
		failures := h.Failures
		out.Task.Health = &api.HealthSpec{Command: slices.Clone(h.Command), HTTP: h.HTTP,
			Interval: h.Interval.String(), Timeout: h.Timeout.String(), Failures: &failures}
	}
	out.Node = s.Node
	out.Pool = s.Pool
	if c := s.Schedule; c != nil {
		limit := c.CatchUpLimit
		out.Schedule = &api.ScheduleSpec{Cron: c.Cron, TimeZone: c.TimeZone, Overlap: string(c.Overlap),
			CatchUp: string(c.CatchUp), CatchUpLimit: &limit}
	}
	if s.Task.Timeout != 0 { // no timeout is written as none
		out.Task.Timeout = s.Task.Timeout.String()
	}
	for _, c := range s.Constraints {
		out.Constraints = append(out.Constraints, api.ConstraintSpec{Attribute: c.Attribute, Operator: string(c.Operator), Value: c.Value})
	}
	return out
}
