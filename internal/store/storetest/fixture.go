package storetest

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/task"
)

// T0 is the instant fixtures are stamped with. It carries nanoseconds, so an
// engine that rounds times to micro- or milliseconds fails the round trips.
var T0 = time.Date(2030, time.March, 4, 5, 6, 7, 123456789, time.UTC)

// DefaultKey is the job every fixture belongs to unless overridden.
var DefaultKey = job.Key{Role: "web", Env: "prod", Name: "etl"}

// seq makes fixture IDs and names unique within the test binary, so cases
// that build several fixtures never collide by accident.
var seq atomic.Int64

func nextName(prefix string) string { return fmt.Sprintf("%s-%06d", prefix, seq.Add(1)) }

// NewJob returns a RUNNING batch job record for [DefaultKey] at version 1,
// changed by each of opts in turn.
func NewJob(opts ...func(*job.Job)) job.Job {
	j := job.Job{
		Key:       DefaultKey,
		Version:   1,
		Type:      job.Batch,
		State:     job.Running,
		CreatedAt: T0,
		UpdatedAt: T0,
	}
	for _, o := range opts {
		o(&j)
	}
	return j
}

// NewSpec returns a valid spec for [DefaultKey] that sets every field, so a
// round trip through a store exercises all of them. opts change it in turn.
func NewSpec(opts ...func(*job.Spec)) job.Spec {
	s := job.Spec{
		Key:       DefaultKey,
		Type:      job.Batch,
		Instances: 3,
		Priority:  50,
		Task: job.TaskSpec{
			Command:   []string{"/bin/sh", "-c", "echo 'héllo wörld' && exit 0"},
			Env:       map[string]string{"DB_HOST": "db.internal", "EMPTY": "", "QUOTE": `a "b" c`},
			Timeout:   90*time.Minute + time.Nanosecond,
			KillGrace: job.DefaultKillGrace,
			Resources: job.Resources{CPU: 250, Memory: 128 << 20},
		},
		Constraints: []job.Constraint{
			{Attribute: "os", Operator: job.OpEqual, Value: "linux"},
			{Attribute: "drover.io/zone", Operator: job.OpNotEqual, Value: "eu-1a"},
		},
		Retry:      job.Retry{Attempts: 5, Backoff: 30 * time.Second},
		Reschedule: job.Reschedule{Attempts: 2, Delay: 7 * time.Second},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// NewJobVersion returns version 1 of [DefaultKey] with [NewSpec] and no
// idempotency key, changed by each of opts in turn. Spec.Key is then set to
// Key, since a store fills it back from Key and never stores it apart.
func NewJobVersion(opts ...func(*job.Version)) job.Version {
	v := job.Version{
		Key:       DefaultKey,
		Version:   1,
		Spec:      NewSpec(),
		CreatedAt: T0,
	}
	for _, o := range opts {
		o(&v)
	}
	v.Spec.Key = v.Key
	return v
}

// NewTask returns a fresh PENDING task of instance 0 of [DefaultKey] version
// 1, with a unique ID and every optional field unset, changed by each of opts
// in turn.
func NewTask(opts ...func(*task.Task)) task.Task {
	t := task.Task{
		ID:         nextName("task"),
		Job:        DefaultKey,
		JobVersion: 1,
		Instance:   0,
		Attempt:    1,
		State:      task.Pending,
		Priority:   50,
		Resources:  job.Resources{CPU: job.DefaultCPU, Memory: job.DefaultMemory},
		Reason:     event.Submitted,
		CreatedAt:  T0,
		NotBefore:  T0,
		UpdatedAt:  T0,
	}
	for _, o := range opts {
		o(&t)
	}
	return t
}

// NewNode returns a READY node with a unique name, a few attributes and
// capacity for many default tasks, changed by each of opts in turn.
func NewNode(opts ...func(*node.Node)) node.Node {
	n := node.Node{
		Name:         nextName("node"),
		State:        node.Ready,
		Address:      "10.0.0.7:7070",
		Attributes:   map[string]string{"os": "linux", "arch": "amd64", "drover.io/zone": "eu-1b"},
		Capacity:     job.Resources{CPU: 4000, Memory: 8 << 30},
		Version:      "v0.1.0",
		RegisteredAt: T0,
		LastSeen:     T0,
	}
	for _, o := range opts {
		o(&n)
	}
	return n
}

// NewEvent returns a placement event of [DefaultKey] with no task or node,
// changed by each of opts in turn. Its ID is zero: the store assigns IDs.
func NewEvent(opts ...func(*event.Event)) event.Event {
	e := event.Event{
		At:     T0,
		Job:    DefaultKey.String(),
		From:   string(task.Pending),
		To:     string(task.Assigned),
		Reason: event.Placed,
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}
