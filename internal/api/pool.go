package api

import "time"

// PoolSpec is a pool file: the YAML `drover pool create FILE` reads and the
// body of POST /v1/pools and PUT /v1/pools/{name}. Durations are strings
// ("30s"). node is the provider's node spec (ec2: instance type, image,
// ...; ssh: hosts; local: nothing), kept as written and decoded by the
// provider.
type PoolSpec struct {
	Pool         string            `yaml:"pool" json:"pool"`
	Provider     string            `yaml:"provider" json:"provider"`
	Node         map[string]any    `yaml:"node,omitempty" json:"node,omitempty"`
	Capabilities map[string]string `yaml:"capabilities,omitempty" json:"capabilities,omitempty"`
	Min          *int              `yaml:"min,omitempty" json:"min,omitempty"`
	Max          *int              `yaml:"max,omitempty" json:"max,omitempty"`
	Policy       PoolPolicySpec    `yaml:"policy" json:"policy"`
	StartTimeout string            `yaml:"start_timeout,omitempty" json:"start_timeout,omitempty"`
	IdleTimeout  string            `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
	Cooldown     *CooldownSpec     `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
	MaxFailures  *int              `yaml:"max_failures,omitempty" json:"max_failures,omitempty"`
}

// PoolPolicySpec is a pool's size policy: exactly one of its fields.
type PoolPolicySpec struct {
	Fixed    *FixedPolicySpec    `yaml:"fixed,omitempty" json:"fixed,omitempty"`
	Queue    *QueuePolicySpec    `yaml:"queue,omitempty" json:"queue,omitempty"`
	Schedule *SchedulePolicySpec `yaml:"schedule,omitempty" json:"schedule,omitempty"`
}

// FixedPolicySpec keeps size nodes.
type FixedPolicySpec struct {
	Size *int `yaml:"size" json:"size"`
}

// QueuePolicySpec scales by pending tasks.
type QueuePolicySpec struct {
	HighWater *int `yaml:"high_water" json:"high_water"`
	LowWater  *int `yaml:"low_water,omitempty" json:"low_water,omitempty"`
}

// SchedulePolicySpec keeps size nodes from each cron time for duration.
type SchedulePolicySpec struct {
	Cron     string `yaml:"cron" json:"cron"`
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
	Size     *int   `yaml:"size" json:"size"`
	Duration string `yaml:"duration" json:"duration"`
}

// CooldownSpec is the least time between two scale-ups, and two
// scale-downs.
type CooldownSpec struct {
	Up   string `yaml:"up,omitempty" json:"up,omitempty"`
	Down string `yaml:"down,omitempty" json:"down,omitempty"`
}

// Pool is a pool as the API shows it: its definition (spec, as stored,
// every default filled in) and its state.
type Pool struct {
	Name     string   `json:"name"`
	Provider string   `json:"provider"`
	Policy   string   `json:"policy"` // fixed, queue or schedule
	Spec     PoolSpec `json:"spec"`
	// Desired is the size the policy asks for now; Actual counts the
	// machines launching or running (not draining or ended).
	Desired int `json:"desired"`
	Actual  int `json:"actual"`
	// Failures counts launches in a row that failed or never
	// registered; BackoffUntil is set once they reach max_failures.
	Failures     int        `json:"failures"`
	BackoffUntil *time.Time `json:"backoff_until,omitempty"`
	// LastDecision says why the pool last changed size, or did not.
	LastDecision string    `json:"last_decision,omitempty"`
	Machines     []Machine `json:"machines,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Machine is one machine a pool launched.
type Machine struct {
	ID         string `json:"id"` // the launch intent
	Node       string `json:"node"`
	ProviderID string `json:"provider_id,omitempty"`
	// State is launching, starting, ready, draining, terminating,
	// terminated or failed.
	State        string     `json:"state"`
	Reason       string     `json:"reason,omitempty"`
	Address      string     `json:"address,omitempty"`
	LaunchedAt   time.Time  `json:"launched_at"`
	RegisteredAt *time.Time `json:"registered_at,omitempty"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
}

// ScaleRequest is the body of POST /v1/pools/{name}/scale.
type ScaleRequest struct {
	Size int `json:"size"`
}
