package cron

import "fmt"

// Fields of a job's schedule, as a job file names them.
const (
	FieldCron     = "schedule.cron"
	FieldTimeZone = "schedule.time_zone"
)

// FieldError is a problem with one field of a schedule: Field is
// [FieldCron] or [FieldTimeZone], Value is what the user wrote there, and
// Msg says what is wrong with it.
type FieldError struct {
	Field string
	Value string
	Msg   string
}

// Error reads like `schedule.cron "0 25 * * *": hour 25 is out of range 0-23`.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Msg)
}
