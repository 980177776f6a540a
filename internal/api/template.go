package api

import "time"

// TemplateFile is a template file: the key of the jobs it makes, the
// inputs a launch fills in, and a job document without its `job:` key.
type TemplateFile struct {
	Template string          `yaml:"template" json:"template"`
	Inputs   []TemplateInput `yaml:"inputs,omitempty" json:"inputs,omitempty"`
	Job      JobSpec         `yaml:"job" json:"job"`
}

// TemplateInput declares an input: a launch gives it, or it takes its
// default.
type TemplateInput struct {
	Name     string  `yaml:"name" json:"name"`
	Default  *string `yaml:"default,omitempty" json:"default,omitempty"`
	Required bool    `yaml:"required,omitempty" json:"required,omitempty"`
}

// Template is a stored template, as GET /v1/templates answers it. Source
// is the file as it was written.
type Template struct {
	Key       string          `json:"key"`
	Inputs    []TemplateInput `json:"inputs"`
	Source    string          `json:"source,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// LaunchRequest is the body of POST /v1/templates/{role}/{env}/{name}/launch:
// the value of each input it sets.
type LaunchRequest struct {
	Inputs map[string]string `json:"inputs,omitempty"`
}
