package api

// JobSpec is a job document: the YAML job file and the JSON body of
// POST /v1/jobs have the same fields. Durations are strings ("30s"),
// memory is a size string ("64MiB") or a number of bytes.
type JobSpec struct {
	Job         string           `yaml:"job" json:"job"`
	Type        string           `yaml:"type,omitempty" json:"type,omitempty"`
	Instances   *int             `yaml:"instances,omitempty" json:"instances,omitempty"`
	Priority    int              `yaml:"priority,omitempty" json:"priority,omitempty"`
	Task        TaskSpec         `yaml:"task" json:"task"`
	Constraints []ConstraintSpec `yaml:"constraints,omitempty" json:"constraints,omitempty"`
	Node        string           `yaml:"node,omitempty" json:"node,omitempty"`
	Pool        string           `yaml:"pool,omitempty" json:"pool,omitempty"`
	Retry       *RetrySpec       `yaml:"retry,omitempty" json:"retry,omitempty"`
	Reschedule  *RescheduleSpec  `yaml:"reschedule,omitempty" json:"reschedule,omitempty"`
	Restart     *RestartSpec     `yaml:"restart,omitempty" json:"restart,omitempty"`
	Schedule    *ScheduleSpec    `yaml:"schedule,omitempty" json:"schedule,omitempty"`
}

// ScheduleSpec makes a batch job run at cron times: cron is 5 fields or
// @hourly, @daily, @weekly, @monthly, @yearly, or "@every DURATION";
// time_zone is an IANA zone (default UTC); overlap is allow, forbid
// (default) or replace; catch_up is skip (default), latest or all, with
// catch_up_limit (default 10) bounding all.
type ScheduleSpec struct {
	Cron         string `yaml:"cron" json:"cron"`
	TimeZone     string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
	Overlap      string `yaml:"overlap,omitempty" json:"overlap,omitempty"`
	CatchUp      string `yaml:"catch_up,omitempty" json:"catch_up,omitempty"`
	CatchUpLimit *int   `yaml:"catch_up_limit,omitempty" json:"catch_up_limit,omitempty"`
}

// RestartSpec is a service's policy for a task that exits.
type RestartSpec struct {
	Delay    string `yaml:"delay,omitempty" json:"delay,omitempty"`
	Attempts *int   `yaml:"attempts,omitempty" json:"attempts,omitempty"`
	Interval string `yaml:"interval,omitempty" json:"interval,omitempty"`
}

// HealthSpec is a check of a running task: command or http.
type HealthSpec struct {
	Command  []string `yaml:"command,omitempty" json:"command,omitempty"`
	HTTP     string   `yaml:"http,omitempty" json:"http,omitempty"`
	Interval string   `yaml:"interval,omitempty" json:"interval,omitempty"`
	Timeout  string   `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Failures *int     `yaml:"failures,omitempty" json:"failures,omitempty"`
}

// TaskSpec is the task part of a job document.
type TaskSpec struct {
	Command   []string          `yaml:"command" json:"command"`
	Env       map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Timeout   string            `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	KillGrace string            `yaml:"kill_grace,omitempty" json:"kill_grace,omitempty"`
	Resources *ResourcesSpec    `yaml:"resources,omitempty" json:"resources,omitempty"`
	Ports     []string          `yaml:"ports,omitempty" json:"ports,omitempty"`
	Health    *HealthSpec       `yaml:"health,omitempty" json:"health,omitempty"`
}

// ResourcesSpec is cpu in millicores and memory as a size ("64MiB", "1G") or bytes.
type ResourcesSpec struct {
	CPU    *int64 `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	Memory string `yaml:"memory,omitempty" json:"memory,omitempty"`
}

// ConstraintSpec limits the nodes a job runs on. Operator is "=" (default) or "!=".
type ConstraintSpec struct {
	Attribute string `yaml:"attribute" json:"attribute"`
	Operator  string `yaml:"operator,omitempty" json:"operator,omitempty"`
	Value     string `yaml:"value" json:"value"`
}

// RetrySpec is the budget for the job's own failures.
type RetrySpec struct {
	Attempts *int   `yaml:"attempts,omitempty" json:"attempts,omitempty"`
	Backoff  string `yaml:"backoff,omitempty" json:"backoff,omitempty"`
}

// RescheduleSpec is the budget for the fleet's failures (LOST tasks).
type RescheduleSpec struct {
	Attempts *int   `yaml:"attempts,omitempty" json:"attempts,omitempty"`
	Delay    string `yaml:"delay,omitempty" json:"delay,omitempty"`
}
