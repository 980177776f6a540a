package task

import (
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
)

// Task is one attempt to run one instance of a job on one node. Its ID is
// the fencing token: a status report for an ID the server no longer expects
// on a node is stale and ignored.
type Task struct {
	ID         string
	Job        job.Key
	JobVersion int
	// Run is the job's run the task belongs to.
	Run      int
	Instance int
	// Attempt counts tasks of this instance in this run, from 1.
	Attempt int
	// Retries counts earlier tasks of this instance that ended FAILED.
	Retries int
	// Reschedules counts earlier tasks of this instance that ended LOST.
	Reschedules int
	State       State
	Node        string // empty while PENDING
	// KillRequested is desired state: a user asked to stop the task. The
	// agent ends it and reports KILLED.
	KillRequested bool
	Priority      int
	Resources     job.Resources
	ExitCode      *int
	Reason        event.Reason
	Message       string
	CreatedAt     time.Time
	NotBefore     time.Time // earliest placement time (retry backoff)
	UpdatedAt     time.Time
	StartedAt     *time.Time
	FinishedAt    *time.Time
}
