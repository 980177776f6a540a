package cron_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/cron"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		expr string
		zone string
		want string
	}{
		{"empty", "", "", `schedule.cron "": is empty; want five fields (minute hour day-of-month month day-of-week) like "0 2 * * *", or @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>`},
		{"blank", "  ", "", `schedule.cron "  ": is empty; want five fields (minute hour day-of-month month day-of-week) like "0 2 * * *", or @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>`},
		{"seconds", "0 0 2 * * *", "", `schedule.cron "0 0 2 * * *": has 6 fields; drover takes 5 (minute hour day-of-month month day-of-week), without seconds`},
		{"too few", "0 2 * *", "", `schedule.cron "0 2 * *": has 4 fields; want 5 (minute hour day-of-month month day-of-week)`},
		{"CRON_TZ prefix", "CRON_TZ=Europe/Amsterdam 0 2 * * *", "", `schedule.cron "CRON_TZ=Europe/Amsterdam 0 2 * * *": must not name a time zone; put it in schedule.time_zone`},
		{"TZ prefix alone", "TZ=UTC", "", `schedule.cron "TZ=UTC": must not name a time zone; put it in schedule.time_zone`},
		{"hour out of range", "0 25 * * *", "", `schedule.cron "0 25 * * *": hour 25 is out of range 0-23`},
		{"minute out of range", "60 * * * *", "", `schedule.cron "60 * * * *": minute 60 is out of range 0-59`},
		{"day 0", "0 0 0 * *", "", `schedule.cron "0 0 0 * *": day-of-month 0 is out of range 1-31`},
		{"month 13", "0 0 1 13 *", "", `schedule.cron "0 0 1 13 *": month 13 is out of range 1-12 or JAN-DEC`},
		{"weekday 7", "0 0 * * 7", "", `schedule.cron "0 0 * * 7": day-of-week 7 is out of range 0-6 or SUN-SAT (0 is Sunday); write 0 or SUN for Sunday`},
		{"range in a list", "0 9-17,20-25 * * *", "", `schedule.cron "0 9-17,20-25 * * *": hour 25 is out of range 0-23`},
		{"backwards range", "0 0 * * SAT-SUN", "", `schedule.cron "0 0 * * SAT-SUN": day-of-week range "SAT-SUN" starts after it ends (6 > 0)`},
		{"not a number", "x * * * *", "", `schedule.cron "x * * * *": minute "x" is not a number in 0-59`},
		{"unknown month name", "0 0 1 JANUARY *", "", `schedule.cron "0 0 1 JANUARY *": month "JANUARY" is not a number in 1-12 or JAN-DEC`},
		{"zero step", "*/0 * * * *", "", `schedule.cron "*/0 * * * *": minute "*/0" has a step of 0; the number after / must be at least 1`},
		{"bad step", "*/x * * * *", "", `schedule.cron "*/x * * * *": minute "x" is not a number in 0-59`},
		{"two hyphens", "0 1-2-3 * * *", "", `schedule.cron "0 1-2-3 * * *": hour "1-2-3" has more than one "-"`},
		{"two slashes", "0 */2/3 * * *", "", `schedule.cron "0 */2/3 * * *": hour "*/2/3" has more than one "/"`},
		{"only commas", "0 , * * *", "", `schedule.cron "0 , * * *": hour "," has no values`},
		{"never fires", "0 0 30 2 *", "", `schedule.cron "0 0 30 2 *": never fires: no month matching "2" has a day matching "30"`},
		{"never fires in short months", "0 0 31 4,6,9,11 *", "", `schedule.cron "0 0 31 4,6,9,11 *": never fires: no month matching "4,6,9,11" has a day matching "31"`},
		{"unknown descriptor", "@fortnightly", "", `schedule.cron "@fortnightly": unknown descriptor @fortnightly; want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>`},
		{"descriptor with more", "@daily 5", "", `schedule.cron "@daily 5": @daily takes nothing after it`},
		{"every without duration", "@every", "", `schedule.cron "@every": @every takes one duration, like "@every 15m"`},
		{"every not a duration", "@every 5", "", `schedule.cron "@every 5": @every duration "5" is not a duration like "90s", "15m" or "2h30m"`},
		{"every too short", "@every 500ms", "", `schedule.cron "@every 500ms": @every duration 500ms is less than 1s`},
		{"every negative", "@every -1m", "", `schedule.cron "@every -1m": @every duration -1m0s is less than 1s`},
		{"every fraction", "@every 1.5s", "", `schedule.cron "@every 1.5s": @every duration 1.5s is not a whole number of seconds`},
		{"unknown zone", "0 2 * * *", "Mars/Olympus_Mons", `schedule.time_zone "Mars/Olympus_Mons": unknown time zone; want an IANA name like "Europe/Amsterdam", or "" for UTC`},
		{"zone path", "0 2 * * *", "../../etc/passwd", `schedule.time_zone "../../etc/passwd": unknown time zone; want an IANA name like "Europe/Amsterdam", or "" for UTC`},
		{"Local", "0 2 * * *", "Local", `schedule.time_zone "Local": "Local" is not allowed; name the zone, like "Europe/Amsterdam"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := cron.Parse(tt.expr, tt.zone)
			require.Nil(t, s)
			require.EqualError(t, err, tt.want)
			var fe *cron.FieldError
			require.ErrorAs(t, err, &fe)
			if tt.zone == "" {
				require.Equal(t, cron.FieldCron, fe.Field)
				require.Equal(t, tt.expr, fe.Value)
			} else {
				require.Equal(t, cron.FieldTimeZone, fe.Field)
				require.Equal(t, tt.zone, fe.Value)
			}
		})
	}
}

func TestParseReportsBothFields(t *testing.T) {
	t.Parallel()
	_, err := cron.Parse("0 25 * * *", "Mars/Olympus_Mons")
	require.Error(t, err)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *cron.FieldError
		require.True(t, errors.As(e, &fe))
		fields = append(fields, fe.Field)
	}
	require.ElementsMatch(t, []string{cron.FieldCron, cron.FieldTimeZone}, fields)
	require.ErrorContains(t, err, "hour 25 is out of range 0-23")
	require.ErrorContains(t, err, "unknown time zone")
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ expr, zone string }{
		{"0 2 * * *", "Europe/Amsterdam"},
		{"  0   2 * * *  ", "UTC"},
		{"0 0 * jan-mar Mon-Fri", "America/New_York"},
		{"5/15 1-5/2 ? * ?", "Asia/Kathmandu"},
		{"0 0 29 2 *", ""},
		{"@yearly", "Australia/Sydney"},
		{"@every 2h30m", "Europe/Amsterdam"},
		{"@every 1s", ""},
	} {
		_, err := cron.Parse(tt.expr, tt.zone)
		require.NoError(t, err, "%q in %q", tt.expr, tt.zone)
	}
}
