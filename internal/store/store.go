// Package store owns drover's persistence: the interfaces the scheduler and
// server use, the errors they see, and the contract every engine obeys
// (storetest). SQL lives only in the engine folders (sqlite/, later
// postgres/). A state change and its event commit in one transaction.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/task"
	"github.com/drover-dev/drover/internal/template"
)

var (
	// ErrNotFound means the object asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a write lost a race: the row changed since it was
	// read (compare-and-set failed) or a unique key already exists.
	ErrConflict = errors.New("conflict")
	// ErrNoSpace means the disk under the store is full; nothing was written.
	ErrNoSpace = errors.New("no space left on the store's disk")
)

// Store is a database. Reads outside a transaction go through View; every
// change goes through Update, which commits all of fn's writes or none.
type Store interface {
	View(ctx context.Context, fn func(Reader) error) error
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Reader reads every aggregate.
type Reader interface {
	JobReader
	TaskReader
	NodeReader
	EventReader
	AuthReader
	ParamReader
	TemplateReader
	RunReader
	CronReader
	PoolReader
}

// Tx reads and writes inside one transaction.
type Tx interface {
	Reader
	JobWriter
	TaskWriter
	NodeWriter
	EventWriter
	AuthWriter
	ParamWriter
	TemplateWriter
	RunWriter
	CronWriter
	PoolWriter
}

// AuthReader reads users, roles, tokens and web sessions.
type AuthReader interface {
	GetUser(ctx context.Context, name string) (auth.User, error)
	ListUsers(ctx context.Context) ([]auth.User, error)
	GetRole(ctx context.Context, name string) (auth.Role, error)
	ListRoles(ctx context.Context) ([]auth.Role, error)
	GetToken(ctx context.Context, id string) (auth.Token, error)
	// ListTokens lists the tokens of an owner, or every token for "".
	ListTokens(ctx context.Context, owner string) ([]auth.Token, error)
	// GetSession returns a web session's data if it has not expired.
	GetSession(ctx context.Context, token string, now time.Time) ([]byte, error)
}

// AuthWriter writes users, roles, tokens and web sessions.
type AuthWriter interface {
	PutUser(ctx context.Context, u auth.User) error
	DeleteUser(ctx context.Context, name string) error
	PutRole(ctx context.Context, r auth.Role) error
	DeleteRole(ctx context.Context, name string) error
	PutToken(ctx context.Context, t auth.Token) error
	PutSession(ctx context.Context, token string, data []byte, expiry time.Time) error
	DeleteSession(ctx context.Context, token string) error
	// DeleteExpiredSessions removes sessions expired at now, returning
	// how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// ParamReader reads roles' parameters.
type ParamReader interface {
	GetParam(ctx context.Context, role, name string) (param.Param, error)
	// ListParams lists a role's parameters by name; none (and no error)
	// for a role without any.
	ListParams(ctx context.Context, role string) ([]param.Param, error)
}

// ParamWriter writes roles' parameters.
type ParamWriter interface {
	// PutParam inserts or replaces a parameter.
	PutParam(ctx context.Context, p param.Param) error
	// DeleteParam removes a parameter; ErrNotFound if there is none.
	DeleteParam(ctx context.Context, role, name string) error
}

// TemplateReader reads job templates.
type TemplateReader interface {
	GetTemplate(ctx context.Context, key job.Key) (template.Template, error)
	// ListTemplates lists every template by key.
	ListTemplates(ctx context.Context) ([]template.Template, error)
}

// TemplateWriter writes job templates.
type TemplateWriter interface {
	// PutTemplate inserts or replaces a template.
	PutTemplate(ctx context.Context, t template.Template) error
	// DeleteTemplate removes a template; ErrNotFound if there is none.
	DeleteTemplate(ctx context.Context, key job.Key) error
}

// JobReader reads jobs and their versions.
type JobReader interface {
	GetJob(ctx context.Context, key job.Key) (job.Job, error)
	ListJobs(ctx context.Context) ([]job.Job, error)
	GetJobVersion(ctx context.Context, key job.Key, version int) (job.Version, error)
	// ListJobVersions returns every version of a job, newest first; none
	// (and no error) for a key that was never submitted.
	ListJobVersions(ctx context.Context, key job.Key) ([]job.Version, error)
	// FindIdempotencyKey returns the version a submission with this key created.
	FindIdempotencyKey(ctx context.Context, idempotencyKey string) (job.Version, error)
}

// JobWriter writes jobs.
type JobWriter interface {
	// PutJob inserts or replaces the job record.
	PutJob(ctx context.Context, j job.Job) error
	// InsertJobVersion adds a version; ErrConflict if it or its
	// idempotency key exists.
	InsertJobVersion(ctx context.Context, v job.Version) error
}

// PoolReader reads pools, their machines and the cluster's settings.
type PoolReader interface {
	GetPool(ctx context.Context, name string) (pool.Pool, error)
	// ListPools lists every pool by name.
	ListPools(ctx context.Context) ([]pool.Pool, error)
	GetMachine(ctx context.Context, id string) (pool.Machine, error)
	// ListMachines lists a pool's machines (every pool's for ""), oldest
	// launch first; with live, only those not ended.
	ListMachines(ctx context.Context, pool string, live bool) ([]pool.Machine, error)
	// GetSetting returns a cluster setting; ErrNotFound if unset.
	GetSetting(ctx context.Context, key string) (string, error)
}

// PoolWriter writes pools, machines and settings.
type PoolWriter interface {
	// PutPool inserts or replaces a pool.
	PutPool(ctx context.Context, p pool.Pool) error
	// DeletePool removes a pool and its machine records; ErrNotFound
	// if there is none.
	DeletePool(ctx context.Context, name string) error
	// PutMachine inserts or replaces a machine record.
	PutMachine(ctx context.Context, m pool.Machine) error
	PutSetting(ctx context.Context, key, value string) error
	// DeleteNode removes a node's record (its machine is gone).
	DeleteNode(ctx context.Context, name string) error
}

// RunFilter selects runs of a job, newest first.
type RunFilter struct {
	Job job.Key
	// Active selects only RUNNING and WAITING runs.
	Active bool
	Limit  int
}

// RunReader reads runs.
type RunReader interface {
	GetRun(ctx context.Context, key job.Key, number int) (job.Run, error)
	ListRuns(ctx context.Context, f RunFilter) ([]job.Run, error)
	// FindRun returns the run a submission with this idempotency key made.
	FindRun(ctx context.Context, idempotencyKey string) (job.Run, error)
}

// RunWriter writes runs.
type RunWriter interface {
	// PutRun inserts or replaces a run.
	PutRun(ctx context.Context, r job.Run) error
	// DeleteRun removes an ended run with its tasks and their events and
	// the run's own events (retention), returning the IDs of the tasks
	// removed, whose logs the caller removes.
	DeleteRun(ctx context.Context, key job.Key, number int) ([]string, error)
}

// CronReader reads schedules and their fire decisions.
type CronReader interface {
	GetCron(ctx context.Context, key job.Key) (job.CronEntry, error)
	// ListCrons lists every schedule by job key.
	ListCrons(ctx context.Context) ([]job.CronEntry, error)
	// ListFires lists a job's fire decisions, newest first.
	ListFires(ctx context.Context, key job.Key, limit int) ([]job.Fire, error)
}

// CronWriter writes schedules and their fire decisions.
type CronWriter interface {
	// PutCron inserts or replaces a schedule.
	PutCron(ctx context.Context, e job.CronEntry) error
	// DeleteCron removes a schedule; ErrNotFound if there is none.
	DeleteCron(ctx context.Context, key job.Key) error
	// InsertFire records the decision for one scheduled time;
	// ErrConflict if that time already has one.
	InsertFire(ctx context.Context, f job.Fire) error
}

// TaskFilter selects tasks. Zero fields select everything.
type TaskFilter struct {
	Job        *job.Key
	JobVersion int // with Job
	Run        int // with Job
	Instance   *int
	Node       string
	States     []task.State
	// ReadyBy selects tasks whose NotBefore is at or before this time.
	ReadyBy time.Time
	Limit   int
}

// TaskReader reads tasks. ListTasks orders by priority (highest first),
// then creation time, then instance: the placement order.
type TaskReader interface {
	GetTask(ctx context.Context, id string) (task.Task, error)
	ListTasks(ctx context.Context, f TaskFilter) ([]task.Task, error)
	CountTasks(ctx context.Context, f TaskFilter) (int, error)
	// NextNotBefore returns the earliest NotBefore of a PENDING task after
	// now, or the zero time.
	NextNotBefore(ctx context.Context, now time.Time) (time.Time, error)
}

// TaskWriter writes tasks.
type TaskWriter interface {
	InsertTasks(ctx context.Context, ts ...task.Task) error
	// UpdateTask stores t if the stored task is still in state expect;
	// otherwise ErrConflict (ErrNotFound if there is no such task).
	UpdateTask(ctx context.Context, t task.Task, expect task.State) error
}

// NodeReader reads nodes.
type NodeReader interface {
	GetNode(ctx context.Context, name string) (node.Node, error)
	ListNodes(ctx context.Context) ([]node.Node, error)
}

// NodeWriter writes nodes.
type NodeWriter interface {
	PutNode(ctx context.Context, n node.Node) error
}

// EventFilter selects events, oldest first.
type EventFilter struct {
	Job    string
	TaskID string
	Node   string
	// Reason selects one reason ("audit").
	Reason  string
	AfterID int64
	Limit   int
}

// EventReader reads events.
type EventReader interface {
	ListEvents(ctx context.Context, f EventFilter) ([]event.Event, error)
	// LastEventID returns the id of the newest event of a job ("" for any job).
	LastEventID(ctx context.Context, jobKey string) (int64, error)
}

// EventWriter appends events; their IDs are assigned by the store.
type EventWriter interface {
	InsertEvents(ctx context.Context, es ...event.Event) error
}
