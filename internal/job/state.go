package job

import "time"

// State is where a job is as a whole. It is derived from its tasks and
// stored with the task transition that changes it.
type State string

const (
	// Running: some instance has a task that is not yet in an end state.
	Running State = "RUNNING"
	// Succeeded: every instance's last task SUCCEEDED.
	Succeeded State = "SUCCEEDED"
	// Failed: every instance ended, and some instance's last task FAILED or
	// was LOST with no budget left.
	Failed State = "FAILED"
	// Killed: every instance ended, and some were KILLED on request.
	Killed State = "KILLED"
	// Waiting is a run's state while it waits for the runs it replaces
	// to end (overlap: replace); it has no tasks yet.
	Waiting State = "WAITING"
	// Scheduled is a job's state while it has a schedule and no run yet.
	Scheduled State = "SCHEDULED"
)

// IsTerminal reports whether s is an end state: nothing of the job (or
// run) is running or waiting to run.
func (s State) IsTerminal() bool { return s != Running && s != Waiting }

// Job is the current record of a job: its key, its newest version, its
// newest run and its state: RUNNING while any run is active, else the
// state of its newest run (SCHEDULED before the first).
type Job struct {
	Key     Key
	Version int
	// Run is the number of the job's newest run (0: none yet).
	Run       int
	Type      Type
	State     State
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Version is one immutable, fully resolved version of a job.
type Version struct {
	Key     Key
	Version int
	Spec    Spec
	// IdempotencyKey is the client's key of the submission that created
	// this version; a repeat of the same key returns this version.
	IdempotencyKey string
	CreatedAt      time.Time
}
