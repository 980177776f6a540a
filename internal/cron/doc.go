// Package cron turns a job's cron expression and time zone into fire
// times. It is pure: no clock, no store, no goroutines. Deciding which fire
// times to act on (catch-up, at-most-once firing across restarts) is the
// scheduler's business; this package only answers "when".
//
// # Expressions
//
// An expression is five fields, minute hour day-of-month month day-of-week,
// read by github.com/robfig/cron/v3. Each field takes *, ?, numbers, ranges
// (1-5), steps (*/15, 10-50/10, 5/10 meaning 5-max/10) and lists (1,15).
// Months may be named JAN-DEC and weekdays SUN-SAT, in any case. Weekdays
// run 0-6 from Sunday; 7 is not accepted as Sunday. The descriptors
// @yearly (@annually), @monthly, @weekly, @daily (@midnight) and @hourly
// stand for their usual five fields.
//
// Day-of-month and day-of-week combine as in robfig/cron: when both are
// restricted, a day matches if either matches ("0 0 1 * MON" fires on the
// 1st and on every Monday); when either is unrestricted, both must match. A
// field counts as unrestricted only if it is *, ?, or contains one of them
// without a step (*/1 counts, */2 does not). Vixie cron differs in one
// corner: it treats any field starting with * (so */2 too) as unrestricted,
// which makes "0 0 */2 * MON" mean "odd days that are Mondays" there, and
// "odd days, and Mondays" here.
//
// "@every D" is drover's own: D is a Go duration (90s, 15m, 2h30m) of at
// least one second, in whole seconds. It fires at every whole multiple of D
// since the Unix epoch, in absolute time, so "@every 15m" fires at :00, :15,
// :30 and :45 UTC, daylight saving time has no effect, and the fire times do
// not depend on when anyone asks.
//
// Parse rejects expressions with seconds (six fields), a CRON_TZ= or TZ=
// prefix (the zone is its own field), and expressions that can never fire,
// such as "0 0 30 2 *". Every error is a [*FieldError] naming the field.
//
// # Time zones and daylight saving time
//
// Five-field expressions and the descriptors other than @every are read in
// the schedule's time zone, by its wall clock. Where that wall clock skips
// or repeats, drover promises two rules:
//
//  1. A local time that happens twice fires once, at its first occurrence.
//     On 2026-10-25 Europe/Amsterdam shows 02:30 at 00:30Z and again at
//     01:30Z; "30 2 * * *" fires at 00:30Z only. This holds for every
//     expression: "30 * * * *" fires at 00:30Z and next at 02:30Z (03:30
//     local), and "*/15 * * * *" is silent for the repeated hour.
//  2. A local time that does not exist fires at the instant the gap ends,
//     once, however many fire times fall in the gap. On 2026-03-29
//     Europe/Amsterdam jumps from 02:00 to 03:00 local; "30 2 * * *" and
//     "*/15 2 * * *" both fire once, at 03:00 local (01:00Z). A fire time at
//     the end of the gap itself (03:00) is the same instant and fires once.
//
// So a daily job fires exactly once a day in every zone, including those
// that switch at midnight (America/Havana, America/Santiago, Asia/Beirut).
//
// robfig/cron alone gets both cases wrong: it fires a repeated time twice
// and skips a missing one (and with it the whole day). This package so asks
// robfig only for wall-clock times, computed in UTC where no clock jumps,
// and maps each to an instant itself. robfig also gives up after five
// years, which misses "0 0 29 2 *" from 2096 (2100 is no leap year); this
// package keeps searching for up to 400 years, a whole Gregorian cycle.
package cron
