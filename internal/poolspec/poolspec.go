// Package poolspec reads pool files: the YAML (or JSON) documents that
// `drover pool create` reads and that POST /v1/pools and PUT
// /v1/pools/{name} take as their bodies. It decodes a file strictly into the
// wire type [api.PoolSpec], fills in defaults, converts it to the domain
// type [pool.Pool] and validates it, reporting every bad field at once by
// its path in the file ("policy.queue.high_water") and its line, as job
// files do. [Format] converts back, for display.
//
// The rules a pool must obey belong to package pool ([pool.Pool.Validate]);
// the node spec under `node` belongs to the pool's provider, which decodes
// and checks it. This package owns only the file format: field names,
// units, defaults and where in the file a problem is.
package poolspec

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
	"github.com/drover-dev/drover/internal/pool"
)

// Parse reads one pool file into a pool with every default filled in and
// valid by [pool.Pool.Validate]: min 0, start_timeout
// [pool.DefaultStartTimeout], idle_timeout [pool.DefaultIdleTimeout],
// cooldown.up and cooldown.down [pool.DefaultScaleUpCooldown] and
// [pool.DefaultScaleDownCooldown], max_failures [pool.DefaultMaxFailures],
// and policy.queue.low_water 0. max is required. Desired is policy.fixed.size
// for a fixed pool, else min. The node spec is kept as JSON in Spec, for the
// provider to decode.
//
// When the file is well-formed YAML (or JSON) but some of its fields are
// not, the error is an [errors.Join] of [*job.FieldError] values, one per
// bad field, in the order of the file, each named by its path
// ("cooldown.down") and, where the field is written, ending with its line.
func Parse(data []byte) (pool.Pool, error) {
	var (
		in  api.PoolSpec
		out pool.Pool
	)
	err := jobspec.DecodeStrict(data, "pool file", &in, func() []*job.FieldError {
		var errs []*job.FieldError
		out, errs = toPool(in)
		return errs
	})
	if err != nil {
		return pool.Pool{}, err
	}
	return out, nil
}

// toPool converts a decoded pool file into a pool, filling in defaults. It
// returns every problem at once: values that do not parse (a duration, the
// node spec) and the rules [pool.Pool.Validate] enforces.
func toPool(in api.PoolSpec) (pool.Pool, []*job.FieldError) {
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
	required := func(field string, v *int) int {
		if v == nil {
			bad(field, "must be set")
			return 0
		}
		return *v
	}

	p := pool.Pool{
		Name:              in.Pool,
		Provider:          in.Provider,
		StartTimeout:      duration("start_timeout", in.StartTimeout, pool.DefaultStartTimeout),
		IdleTimeout:       duration("idle_timeout", in.IdleTimeout, pool.DefaultIdleTimeout),
		ScaleUpCooldown:   pool.DefaultScaleUpCooldown,
		ScaleDownCooldown: pool.DefaultScaleDownCooldown,
		MaxFailures:       pool.DefaultMaxFailures,
	}
	if in.Pool == "" {
		bad("pool", "must be set: the pool's name")
	}
	if in.Provider == "" {
		bad("provider", "must be set: %q, %q or %q", pool.ProviderLocal, pool.ProviderSSH, pool.ProviderEC2)
	}
	if len(in.Node) > 0 {
		for _, field := range invalidUTF8("node", in.Node) {
			bad(field, "must be valid UTF-8")
		}
		spec, err := json.Marshal(in.Node)
		if err != nil {
			// YAML allows what JSON cannot hold: keys that are not strings,
			// .inf and .nan.
			bad("node", "cannot be stored as JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		p.Spec = spec
	}
	if len(in.Capabilities) > 0 {
		p.Capabilities = maps.Clone(in.Capabilities)
	}
	if in.Min != nil {
		p.Min = *in.Min
	}
	p.Max = required("max", in.Max)
	if f := in.Policy.Fixed; f != nil {
		p.Policy.Fixed = &pool.FixedPolicy{Size: required("policy.fixed.size", f.Size)}
	}
	if q := in.Policy.Queue; q != nil {
		p.Policy.Queue = &pool.QueuePolicy{HighWater: required("policy.queue.high_water", q.HighWater)}
		if q.LowWater != nil {
			p.Policy.Queue.LowWater = *q.LowWater
		}
	}
	if s := in.Policy.Schedule; s != nil {
		p.Policy.Schedule = &pool.SchedulePolicy{
			Cron:     s.Cron,
			TimeZone: s.TimeZone,
			Size:     required("policy.schedule.size", s.Size),
			Duration: duration("policy.schedule.duration", s.Duration, 0),
		}
		if s.Duration == "" {
			bad("policy.schedule.duration", "must be set: how long the pool keeps size nodes, like 3h")
		}
	}
	if c := in.Cooldown; c != nil {
		p.ScaleUpCooldown = duration("cooldown.up", c.Up, pool.DefaultScaleUpCooldown)
		p.ScaleDownCooldown = duration("cooldown.down", c.Down, pool.DefaultScaleDownCooldown)
	}
	if in.MaxFailures != nil {
		p.MaxFailures = *in.MaxFailures
	}
	p.Desired = p.Min
	if p.Policy.Fixed != nil {
		p.Desired = p.Policy.Fixed.Size
	}

	// Pools travel and are stored as JSON, which cannot carry bytes that are
	// not UTF-8, and YAML's !!binary strings can hold any bytes.
	for k, v := range p.Capabilities {
		if !utf8.ValidString(k) {
			bad("capabilities", "name %q must be valid UTF-8", k)
		} else if !utf8.ValidString(v) {
			bad("capabilities."+k, "must be valid UTF-8")
		}
	}
	if s := p.Policy.Schedule; s != nil && (!utf8.ValidString(s.Cron) || !utf8.ValidString(s.TimeZone)) {
		bad("policy.schedule", "must be valid UTF-8")
	}

	// Validate knows nothing of the text a value came from: a duration that
	// did not parse is 0 to it, and a required field left out is 0 too.
	// Desired is not written in the file; it is policy.fixed.size or min,
	// whose own errors say it.
	return p, jobspec.WithRules(errs, p.Validate(), "desired")
}

// invalidUTF8 returns the paths of the strings in v, a value decoded from
// YAML, that are not valid UTF-8 (YAML's !!binary makes them):
// encoding/json would silently change them.
func invalidUTF8(path string, v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			out = append(out, path)
		}
	case []any:
		for i, e := range v {
			out = append(out, invalidUTF8(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
	case map[string]any:
		for k, e := range v {
			if !utf8.ValidString(k) {
				out = append(out, path)
				continue
			}
			out = append(out, invalidUTF8(path+"."+k, e)...)
		}
	}
	return out
}

// Format converts p back into a pool file, for display and for editing:
// durations are Go duration strings ("1m30s") and every field with a
// default is written out, so the file means the same pool even if the
// defaults change. [Parse] reads the file, written as YAML or JSON, back
// into p, all but the fields a file does not hold (CreatedAt, UpdatedAt,
// and a Desired that `pool scale` changed).
//
// A Spec that is not a JSON object (Parse never makes one) is left out.
func Format(p pool.Pool) api.PoolSpec {
	minSize, maxSize, failures := p.Min, p.Max, p.MaxFailures
	out := api.PoolSpec{
		Pool:         p.Name,
		Provider:     p.Provider,
		Node:         formatNode(p.Spec),
		Capabilities: maps.Clone(p.Capabilities),
		Min:          &minSize,
		Max:          &maxSize,
		StartTimeout: p.StartTimeout.String(),
		IdleTimeout:  p.IdleTimeout.String(),
		Cooldown:     &api.CooldownSpec{Up: p.ScaleUpCooldown.String(), Down: p.ScaleDownCooldown.String()},
		MaxFailures:  &failures,
	}
	if f := p.Policy.Fixed; f != nil {
		size := f.Size
		out.Policy.Fixed = &api.FixedPolicySpec{Size: &size}
	}
	if q := p.Policy.Queue; q != nil {
		high, low := q.HighWater, q.LowWater
		out.Policy.Queue = &api.QueuePolicySpec{HighWater: &high, LowWater: &low}
	}
	if s := p.Policy.Schedule; s != nil {
		size := s.Size
		out.Policy.Schedule = &api.SchedulePolicySpec{Cron: s.Cron, TimeZone: s.TimeZone, Size: &size, Duration: s.Duration.String()}
	}
	return out
}

// formatNode decodes a node spec stored as JSON. It reads the JSON as YAML,
// as Parse reads a file: encoding/json would turn every number into a
// float64, and a large whole number written back from one would no longer
// be the number the file gave.
func formatNode(spec json.RawMessage) map[string]any {
	if len(spec) == 0 {
		return nil
	}
	var in api.PoolSpec
	doc := append([]byte(`{"node":`), spec...)
	doc = append(doc, '}')
	if err := jobspec.DecodeStrict(doc, "node spec", &in, nil); err != nil {
		return nil
	}
	return in.Node
}
