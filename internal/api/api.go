// Package api holds the wire types of drover's HTTP API under /v1, shared by
// the server, the agents, the Go client and the CLI. They are not domain
// types: the server converts at its edge. docs/api.md describes the routes.
package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// Error is the body of every non-2xx answer.
type Error struct {
	// Error says what is wrong, in words a user can act on.
	Error string `json:"error"`
	// Field names the field at fault, when one is ("task.timeout").
	Field string `json:"field,omitempty"`
	// Errors lists every problem when there are several (validation).
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one problem with one field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Duration is a time.Duration that is a string ("1m30s") on the wire.
type Duration time.Duration

// MarshalJSON renders d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// SubmitResponse answers POST /v1/jobs.
type SubmitResponse struct {
	Job     string `json:"job"`
	Version int    `json:"version"`
	// Run is the run the submission made (0 for a scheduled job, which
	// runs at its fire times; see Schedule).
	Run      int       `json:"run"`
	Created  bool      `json:"created"` // false when an identical submission was already accepted
	Tasks    []string  `json:"tasks"`
	Schedule *Schedule `json:"schedule,omitempty"`
}

// Run is one run of a job as the API shows it: a submission, a schedule's
// fire or a rerun, with its tasks' retries and reschedules.
type Run struct {
	Job         string     `json:"job"`
	Run         int        `json:"run"`
	Version     int        `json:"version"`
	State       string     `json:"state"`
	Trigger     string     `json:"trigger"`
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	// Of is the run a rerun repeats.
	Of        int        `json:"of,omitempty"`
	Instances []int      `json:"instances"`
	CreatedAt time.Time  `json:"created_at"`
	StartedAt *time.Time `json:"started_at,omitempty"` // first task running
	// FinishedAt is when the run ended.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Message    string     `json:"message,omitempty"`
	// Attempts counts the run's tasks: one per instance plus one per
	// retry, reschedule and restart.
	Attempts int        `json:"attempts"`
	Retries  []RunRetry `json:"retries,omitempty"`
	Tasks    []Task     `json:"tasks,omitempty"`
}

// RunRetry is one new attempt of an instance in a run, and why.
type RunRetry struct {
	Instance int `json:"instance"`
	Attempt  int `json:"attempt"`
	// Kind is retry (the task FAILED), reschedule (it was LOST) or
	// restart (a service's task ended).
	Kind string `json:"kind"`
	// After is the task whose end made the attempt, and Reason how it
	// ended.
	After  string `json:"after"`
	Reason string `json:"reason"`
}

// RerunRequest is the body of POST /v1/jobs/{key}/rerun.
type RerunRequest struct {
	// Run is the run to repeat (0: the newest).
	Run       int   `json:"run,omitempty"`
	Instances []int `json:"instances,omitempty"`
	// Failed reruns only the instances that did not succeed.
	Failed bool `json:"failed,omitempty"`
}

// Schedule is a job's schedule as the API shows it.
type Schedule struct {
	Job          string     `json:"job"`
	Cron         string     `json:"cron"`
	TimeZone     string     `json:"time_zone"`
	Overlap      string     `json:"overlap"`
	CatchUp      string     `json:"catch_up"`
	CatchUpLimit int        `json:"catch_up_limit"`
	Paused       bool       `json:"paused"`
	Template     string     `json:"template,omitempty"`
	Next         *time.Time `json:"next,omitempty"` // in the schedule's zone
	LastFire     *Fire      `json:"last_fire,omitempty"`
}

// Fire is the decision taken for one scheduled time.
type Fire struct {
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"`
	Run     int       `json:"run,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Job is a job as the API shows it.
type Job struct {
	Key     string `json:"key"`
	Version int    `json:"version"`
	// Run is the run whose tasks are shown (the newest, or ?run=N), and
	// RunState its state; State is the job's: RUNNING while any run is.
	Run       int            `json:"run"`
	RunState  string         `json:"run_state,omitempty"`
	Type      string         `json:"type"`
	State     string         `json:"state"`
	Instances int            `json:"instances"`
	Counts    map[string]int `json:"counts"` // latest task of each instance, by state
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	// EventIndex is the id of the newest event of this job; pass it as
	// ?index= to wait for the next change.
	EventIndex int64    `json:"event_index"`
	Spec       *JobSpec `json:"spec,omitempty"`
	Tasks      []Task   `json:"tasks,omitempty"`
}

// Task is a task as the API shows it.
type Task struct {
	ID            string     `json:"id"`
	Job           string     `json:"job"`
	JobVersion    int        `json:"job_version"`
	Run           int        `json:"run"`
	Instance      int        `json:"instance"`
	Attempt       int        `json:"attempt"`
	State         string     `json:"state"`
	Node          string     `json:"node,omitempty"`
	KillRequested bool       `json:"kill_requested,omitempty"`
	ExitCode      *int       `json:"exit_code,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	Message       string     `json:"message,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
}

// Resources are cpu in millicores and memory in bytes.
type Resources struct {
	CPU    int64 `json:"cpu"`
	Memory int64 `json:"memory"`
}

// Node is a node as the API shows it.
type Node struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Pool is the pool that launched the node ("" for one started by
	// hand): its "pool" attribute.
	Pool       string            `json:"pool"`
	Attributes map[string]string `json:"attributes"`
	Capacity   Resources         `json:"capacity"`
	Allocated  Resources         `json:"allocated"`
	Tasks      int               `json:"tasks"`
	Version    string            `json:"version,omitempty"`
	LastSeen   time.Time         `json:"last_seen"`
	// Packages maps each directory a package was installed into on the
	// node to its SHA256, as the node's agent last reported (see
	// [Package]).
	Packages map[string]string `json:"packages,omitempty"`
}

// Event is an entry of the event history.
type Event struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Job     string    `json:"job,omitempty"`
	TaskID  string    `json:"task_id,omitempty"`
	Node    string    `json:"node,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Reason  string    `json:"reason"`
	Message string    `json:"message,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Source  string    `json:"source,omitempty"`
}

// KillRequest is the body of POST /v1/jobs/{role}/{env}/{name}/kill.
type KillRequest struct {
	// Instances to kill; empty kills the whole job.
	Instances []int `json:"instances,omitempty"`
}

// KillResponse answers a kill.
type KillResponse struct {
	Tasks []string `json:"tasks"` // tasks asked to stop
}
