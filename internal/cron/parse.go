package cron

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"
)

// parser reads five fields or a descriptor. It would also take a CRON_TZ=
// prefix and "@every", which parseCron handles before it gets there.
var parser = robfig.NewParser(robfig.Minute | robfig.Hour | robfig.Dom | robfig.Month | robfig.Dow | robfig.Descriptor)

// field describes one of the five fields, for error messages.
type field struct {
	name  string
	valid string // the values it takes, in words
}

var fields = [5]field{
	{"minute", "0-59"},
	{"hour", "0-23"},
	{"day-of-month", "1-31"},
	{"month", "1-12 or JAN-DEC"},
	{"day-of-week", "0-6 or SUN-SAT (0 is Sunday)"},
}

const fieldList = "minute hour day-of-month month day-of-week"

const descriptors = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>"

// loadZone loads the IANA zone tz, "" meaning UTC.
func loadZone(tz string) (*time.Location, error) {
	bad := func(msg string) error { return &FieldError{Field: FieldTimeZone, Value: tz, Msg: msg} }
	switch tz {
	case "":
		return time.UTC, nil
	case "Local":
		// The server's own zone would move with the server.
		return nil, bad(`"Local" is not allowed; name the zone, like "Europe/Amsterdam"`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, bad(`unknown time zone; want an IANA name like "Europe/Amsterdam", or "" for UTC`)
	}
	return loc, nil
}

// parseCron parses expr into a constant interval or a robfig spec whose
// Location is UTC.
func parseCron(expr string) (time.Duration, *robfig.SpecSchedule, error) {
	bad := func(format string, args ...any) error {
		return &FieldError{Field: FieldCron, Value: expr, Msg: fmt.Sprintf(format, args...)}
	}
	parts := strings.Fields(expr)
	switch {
	case len(parts) == 0:
		return 0, nil, bad(`is empty; want five fields (%s) like "0 2 * * *", or %s`, fieldList, descriptors)
	case strings.HasPrefix(parts[0], "TZ=") || strings.HasPrefix(parts[0], "CRON_TZ="):
		return 0, nil, bad("must not name a time zone; put it in %s", FieldTimeZone)
	case parts[0] == "@every":
		d, err := parseEvery(parts[1:])
		if err != nil {
			return 0, nil, bad("%s", err)
		}
		return d, nil, nil
	case strings.HasPrefix(parts[0], "@"):
		if len(parts) > 1 {
			return 0, nil, bad("%s takes nothing after it", parts[0])
		}
	case len(parts) == 6:
		return 0, nil, bad("has 6 fields; drover takes 5 (%s), without seconds", fieldList)
	case len(parts) != 5:
		return 0, nil, bad("has %d fields; want 5 (%s)", len(parts), fieldList)
	default:
		for i, p := range parts {
			if strings.Trim(p, ",") == "" {
				return 0, nil, bad("%s %q has no values", fields[i].name, p)
			}
		}
	}

	sched, err := parser.Parse(strings.Join(parts, " "))
	if err != nil {
		if strings.HasPrefix(parts[0], "@") {
			return 0, nil, bad("unknown descriptor %s; want %s", parts[0], descriptors)
		}
		return 0, nil, bad("%s", explain(parts, err))
	}
	spec, ok := sched.(*robfig.SpecSchedule)
	if !ok {
		return 0, nil, bad("unexpected schedule type %T", sched) // robfig gives specs for all but @every
	}
	spec.Location = time.UTC
	// Never firing takes a bad day: only day-of-month and month can rule
	// out every date, and only when day-of-week is unrestricted.
	if nextWall(spec, time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return 0, nil, bad("never fires: no month matching %q has a day matching %q", parts[3], parts[2])
	}
	return 0, spec, nil
}

// parseEvery reads the duration after "@every".
func parseEvery(args []string) (time.Duration, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf(`@every takes one duration, like "@every 15m"`)
	}
	d, err := time.ParseDuration(args[0])
	switch {
	case err != nil:
		return 0, fmt.Errorf(`@every duration %q is not a duration like "90s", "15m" or "2h30m"`, args[0])
	case d < time.Second:
		return 0, fmt.Errorf("@every duration %s is less than 1s", d)
	case d%time.Second != 0:
		return 0, fmt.Errorf("@every duration %s is not a whole number of seconds", d)
	}
	return d, nil
}

// robfig's errors name the bad piece of a field, not the field, and speak
// of "ranges". explain finds the field by parsing each alone and says
// what is wrong in the terms of the package documentation.
var (
	outOfRange = regexp.MustCompile(`^(?:end of range \((\d+)\) above maximum|beginning of range \((\d+)\) below minimum) \(\d+\): (.*)$`)
	backwards  = regexp.MustCompile(`^beginning of range \((\d+)\) beyond end of range \((\d+)\): (.*)$`)
	notNumber  = regexp.MustCompile(`^failed to parse int from (.*?): `)
	badStep    = regexp.MustCompile(`^step of range should be a positive number: (.*)$`)
	negative   = regexp.MustCompile(`^negative number \(-?\d+\) not allowed: (.*)$`)
	tooMany    = regexp.MustCompile(`^too many (hyphens|slashes): (.*)$`)
)

func explain(parts []string, whole error) string {
	for i, p := range parts {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = p
		_, err := parser.Parse(strings.Join(probe, " "))
		if err == nil {
			continue
		}
		f, msg := fields[i], err.Error()
		if m := outOfRange.FindStringSubmatch(msg); m != nil {
			n := m[1] + m[2]
			if v, _ := strconv.Atoi(n); f.name == "day-of-week" && v == 7 {
				return fmt.Sprintf("%s 7 is out of range %s; write 0 or SUN for Sunday", f.name, f.valid)
			}
			return fmt.Sprintf("%s %s is out of range %s", f.name, n, f.valid)
		}
		if m := backwards.FindStringSubmatch(msg); m != nil {
			return fmt.Sprintf("%s range %q starts after it ends (%s > %s)", f.name, m[3], m[1], m[2])
		}
		if m := notNumber.FindStringSubmatch(msg); m != nil {
			return fmt.Sprintf("%s %q is not a number in %s", f.name, m[1], f.valid)
		}
		if m := badStep.FindStringSubmatch(msg); m != nil {
			return fmt.Sprintf("%s %q has a step of 0; the number after / must be at least 1", f.name, p)
		}
		if m := negative.FindStringSubmatch(msg); m != nil {
			return fmt.Sprintf("%s %q has a negative step; the number after / must be at least 1", f.name, p)
		}
		if m := tooMany.FindStringSubmatch(msg); m != nil {
			sep := map[string]string{"hyphens": "-", "slashes": "/"}[m[1]]
			return fmt.Sprintf("%s %q has more than one %q", f.name, m[2], sep)
		}
		return fmt.Sprintf("%s %q: %s", f.name, p, msg)
	}
	return whole.Error()
}
