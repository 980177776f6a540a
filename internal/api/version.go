package api

import "time"

// JobVersion is one version of a job: what one submission under its key
// stored. GET /v1/jobs/{role}/{env}/{name}/versions lists them without
// Spec; GET .../versions/{version} answers one with it.
type JobVersion struct {
	Job       string    `json:"job"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	// Spec is the version's resolved spec, every default written out:
	// exactly what runs. Submitting it as a job document makes the same
	// spec.
	Spec *JobSpec `json:"spec,omitempty"`
}
