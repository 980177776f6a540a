// Package event holds drover's append-only history: every task transition,
// job change and node change is recorded with a reason, so "why did this run
// three times?" has an answer. Persistence lives in store.
package event

import "time"

// Event is one thing that happened. A task transition has From and To set;
// other events leave them empty.
type Event struct {
	ID      int64 // assigned by the store, increasing
	At      time.Time
	Job     string // job key, if any
	TaskID  string // task, if any
	Node    string // node, if any
	From    string
	To      string
	Reason  Reason
	Message string
	// Actor is who caused it ("user alice", "token 4cq…", "agent local-1"),
	// Source where from (the client's address), for audit events.
	Actor  string
	Source string
	// Run is the job's run a run-level event (submitted, fired,
	// finished) is about; 0 for others.
	Run int
}

// Reason says why something happened.
type Reason string

// Reasons of task transitions.
const (
	Submitted      Reason = "submitted"       // a new job version created the task
	Retry          Reason = "retry"           // a FAILED task's instance got a new task
	Reschedule     Reason = "reschedule"      // a LOST task's instance got a new task
	Restart        Reason = "restart"         // a service's ended task got a new task
	HealthFailed   Reason = "health_failed"   // the task failed its health check too often
	Placed         Reason = "placed"          // the scheduler chose a node
	Unplaceable    Reason = "unplaceable"     // no node can take the task now (message says why)
	AgentStart     Reason = "agent_start"     // the agent began starting the process
	Started        Reason = "started"         // the process is running
	Exited         Reason = "exited"          // the process exited (code in the message)
	StartFailed    Reason = "start_failed"    // the command could not be started
	SandboxFailed  Reason = "sandbox_failed"  // the node could not prepare the task's sandbox
	Timeout        Reason = "timeout"         // the task outlived task.timeout
	KillRequest    Reason = "kill_requested"  // a user asked to kill it
	Killed         Reason = "killed"          // the agent stopped it on request
	AgentLost      Reason = "agent_lost"      // the agent no longer has the task
	NodeDown       Reason = "node_down"       // the task's node missed its heartbeats (also the node's event)
	StartTimeout   Reason = "start_timeout"   // the task stayed ASSIGNED or STARTING too long
	AgentRestarted Reason = "agent_restarted" // the agent restarted and killed what the task left
	AgentStopped   Reason = "agent_stopped"   // the agent lost the server past stop_after and killed it
)

// Reasons of job and node events.
const (
	JobSubmitted   Reason = "job_submitted"
	JobFinished    Reason = "job_finished"
	NodeRegistered Reason = "node_registered"
	NodeReturned   Reason = "node_returned"
	NodeDrain      Reason = "node_drain"
	NodeUndrain    Reason = "node_undrain"
	// Schedule events: a schedule was set, paused, resumed or removed;
	// a scheduled time fired, was skipped (overlap: forbid), missed
	// (catch_up) or failed (a parameter is missing).
	ScheduleSet     Reason = "schedule_set"
	SchedulePaused  Reason = "schedule_paused"
	ScheduleResumed Reason = "schedule_resumed"
	ScheduleDeleted Reason = "schedule_deleted"
	ScheduleFired   Reason = "schedule_fired"
	ScheduleSkipped Reason = "schedule_skipped"
	ScheduleMissed  Reason = "schedule_missed"
	ScheduleFailed  Reason = "schedule_failed"
	// Pool events: a pool was created, changed, scaled or destroyed; the
	// manager decided a size; a machine was launched, registered, failed
	// (never registered, could not launch), terminated, or found running
	// off the record (a leak, terminated); the pool backs off.
	PoolChanged       Reason = "pool_changed"
	PoolDecision      Reason = "pool_decision"
	PoolBackoff       Reason = "pool_backoff"
	MachineLaunched   Reason = "machine_launched"
	MachineRegistered Reason = "machine_registered"
	MachineFailed     Reason = "machine_failed"
	MachineTerminated Reason = "machine_terminated"
	MachineLeaked     Reason = "machine_leaked"
	MachineAdopted    Reason = "machine_adopted"
	// RunsRemoved records runs removed by retention.
	RunsRemoved Reason = "runs_removed"
	// Audit records a mutating API call: who, what, when, from where.
	Audit Reason = "audit"
	// LoginFailed records a refused login.
	LoginFailed Reason = "login_failed"
)
