package api

import "time"

// SyncRequest is the body of POST /v1/agent/sync, the agent's one call. It
// is the heartbeat, the registration and the status report at once: the
// agent sends every task it holds, every time, until the server acks the
// task's end state.
type SyncRequest struct {
	Node  NodeInfo     `json:"node"`
	Tasks []TaskStatus `json:"tasks"`
	// Seq increases with every sync of an agent, across its restarts (it
	// starts from the clock). The server applies a report only if its Seq
	// is newer than the last one it applied for the node, so a late,
	// overtaken report never undoes a newer one.
	Seq uint64 `json:"seq"`
	// Wait is how long the server may hold the call open when it has
	// nothing to say. Zero answers at once.
	Wait Duration `json:"wait"`
	// Packages maps each directory the agent installed a package into to
	// the package's SHA256 (see [Package]).
	Packages map[string]string `json:"packages,omitempty"`
}

// NodeInfo describes the agent's node.
type NodeInfo struct {
	Name       string            `json:"name"`
	Attributes map[string]string `json:"attributes"`
	Capacity   Resources         `json:"capacity"`
	Version    string            `json:"version"`
}

// TaskStatus is what the agent knows of one of its tasks.
type TaskStatus struct {
	TaskID     string     `json:"task_id"`
	State      string     `json:"state"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Message    string     `json:"message,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// SyncResponse tells the agent what to do.
type SyncResponse struct {
	Assign []Assignment `json:"assign,omitempty"`
	Kill   []KillOrder  `json:"kill,omitempty"`
	// Ack lists tasks whose end state the server has recorded; the agent
	// stops reporting them and may clean them up.
	Ack []string `json:"ack,omitempty"`
	// Interval is how soon the agent should sync again when idle.
	Interval Duration `json:"interval"`
	// Packages are the packages of the node's pool, newest per directory;
	// the agent installs those it does not have yet.
	Packages []Package `json:"packages,omitempty"`
}

// Assignment tells an agent to run a task.
type Assignment struct {
	TaskID     string `json:"task_id"`
	Job        string `json:"job"`
	JobVersion int    `json:"job_version"`
	Run        int    `json:"run,omitempty"`
	// ScheduledAt is the fire time the task's run was made for, if a
	// schedule made it.
	ScheduledAt *time.Time        `json:"scheduled_at,omitempty"`
	Instance    int               `json:"instance"`
	Attempt     int               `json:"attempt"`
	Command     []string          `json:"command"`
	Env         map[string]string `json:"env,omitempty"`
	Timeout     Duration          `json:"timeout,omitempty"`
	KillGrace   Duration          `json:"kill_grace"`
	Resources   Resources         `json:"resources"`
	// Ports to allocate, by name; the agent passes DROVER_PORT_<NAME>.
	Ports  []string     `json:"ports,omitempty"`
	Health *HealthCheck `json:"health,omitempty"`
}

// HealthCheck is a check the agent runs against a running task.
type HealthCheck struct {
	Command  []string `json:"command,omitempty"`
	HTTP     string   `json:"http,omitempty"` // {{port}} / {{port.NAME}} replaced by the allocated port
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout"`
	Failures int      `json:"failures"`
}

// KillOrder tells an agent to stop a task.
type KillOrder struct {
	TaskID string `json:"task_id"`
	Reason string `json:"reason"`
}

// LogChunk is the body of POST /v1/agent/logs: bytes of a task's stdout or
// stderr starting at Offset (bytes since the task began writing). Uploads
// are idempotent: bytes the server already has are skipped.
type LogChunk struct {
	TaskID string `json:"task_id"`
	Stream string `json:"stream"` // "stdout" or "stderr"
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}
