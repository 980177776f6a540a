package job

import "time"

// Trigger says what made a run.
type Trigger string

const (
	// BySubmit: a job file was submitted (job run, POST /v1/jobs).
	BySubmit Trigger = "submit"
	// ByLaunch: a template was launched.
	ByLaunch Trigger = "launch"
	// BySchedule: the job's schedule fired at its scheduled time.
	BySchedule Trigger = "schedule"
	// ByManualFire: someone fired the schedule now (cron run).
	ByManualFire Trigger = "cron-run"
	// ByRerun: someone ran an ended run again (job rerun).
	ByRerun Trigger = "rerun"
)

// Run is one instantiation of a job: one version run once, with its own
// tasks, retries and outcome. A job's runs are numbered from 1. A
// scheduled job gets a run at each fire; submitting, launching and
// rerunning make runs too.
type Run struct {
	Job     Key
	Number  int
	Version int
	// State is RUNNING or WAITING while active, then SUCCEEDED, FAILED
	// or KILLED.
	State   State
	Trigger Trigger
	// ScheduledAt is the fire time a schedule made the run for (zero
	// when no schedule made it).
	ScheduledAt time.Time
	// Of is the run a rerun repeats (0 otherwise).
	Of int
	// Instances are the instances the run runs: all of the version's
	// when empty; a rerun may pick some.
	Instances  []int
	CreatedAt  time.Time
	FinishedAt time.Time
	// Message says how the run ended ("2 SUCCEEDED, 1 FAILED").
	Message string
	// IdempotencyKey is the client's key of the submission that made
	// the run; a repeat of the same key answers this run.
	IdempotencyKey string
}

// Active reports whether the run still has (or waits to have) tasks.
func (r Run) Active() bool { return !r.State.IsTerminal() }

// InstanceList returns the instances the run runs, given its version's
// instance count.
func (r Run) InstanceList(instances int) []int {
	if len(r.Instances) > 0 {
		return r.Instances
	}
	out := make([]int, instances)
	for i := range out {
		out[i] = i
	}
	return out
}

// CronEntry is a job's registered schedule: what it fires, when, and how
// far it has got. It is stored apart from the job's versions because a
// fire resolves the job's parameters again (a changed parameter takes
// effect at the next fire, as a new version).
type CronEntry struct {
	Job      Key
	Schedule Schedule
	Paused   bool
	// Template is the template the schedule came from ("" when a job
	// file was submitted with it); Inputs are the template's inputs.
	Template string
	Inputs   map[string]string
	// Raw is the spec as submitted, before parameters were resolved.
	Raw Spec
	// LastAt is the newest scheduled time handled (fired, skipped or
	// missed); the next fire time is the first one after it.
	LastAt    time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// FireOutcome says what became of one scheduled time.
type FireOutcome string

const (
	// Fired: a run was made for it.
	Fired FireOutcome = "fired"
	// SkippedOverlap: an earlier run was active and overlap is forbid.
	SkippedOverlap FireOutcome = "skipped_overlap"
	// Missed: it passed while the server could not fire it, and the
	// catch-up policy did not run it.
	Missed FireOutcome = "missed"
	// FireFailed: the run could not be made (a parameter is missing).
	FireFailed FireOutcome = "failed"
)

// Fire is the decision taken for one scheduled time of a job. The store
// keeps at most one per (job, time): that is what makes firing at most
// once per scheduled time, whatever crashes or clock jumps happen.
type Fire struct {
	Job       Key
	At        time.Time // the scheduled time
	Outcome   FireOutcome
	Run       int // the run made, when Fired
	DecidedAt time.Time
	Message   string
}
