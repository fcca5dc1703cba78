//! Cron schedules: a workflow started at the times of a cron expression.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a schedule does about firing times that passed while no worker was
/// there to fire them (all workers down, or the schedule paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MissedRuns {
    /// Start one run, for the most recent missed time, then go on from now
    /// (the default: a report that is late is still worth one run).
    #[default]
    RunOnce,
    /// Start one run per missed time, oldest first, at most 100 at once.
    RunAll,
    /// Start nothing for missed times; go on from now.
    Skip,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScheduleSpec {
    /// The schedule's id; its runs get ids `<id>@<fire time, RFC 3339, UTC>`.
    pub id: String,
    /// The workflow type it starts.
    pub workflow: String,
    /// The task queue of its runs.
    pub queue: String,
    /// The cron expression (five fields, or six with seconds first).
    pub cron: String,
    /// The IANA time zone the expression is read in (`Europe/Berlin`).
    pub timezone: String,
    /// The arguments of every run.
    pub input: Value,
    /// What to do about missed firing times.
    pub missed: MissedRuns,
    /// Whether firing is paused.
    pub paused: bool,
    /// The next firing time, milliseconds since the Unix epoch.
    pub next_ms: Option<u64>,
    /// The last firing time that started a run.
    pub last_fired_ms: Option<u64>,
    /// How many runs the schedule started.
    pub runs_started: u64,
}

/// Why a schedule could not be read or computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("invalid cron expression `{cron}`: {reason}")]
    Cron {
        /// The expression.
        cron: String,
        /// What is wrong.
        reason: String,
    },
    /// The time zone is not an IANA zone name.
    #[error("unknown time zone `{0}`; use an IANA name such as `Europe/Berlin` or `UTC`")]
    TimeZone(String),
}

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl CronSchedule {
    /// Parses `cron` (five fields, or six with seconds first) read in the
    /// IANA zone `timezone`.
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz = chrono_tz::Tz::from_str(timezone)
            .map_err(|_| ScheduleError::TimeZone(timezone.to_owned()))?;
        // The default parser takes five fields, or six with seconds first.
        let parsed = croner::Cron::from_str(cron).map_err(|e| ScheduleError::Cron {
            cron: cron.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(CronSchedule { cron: parsed, tz })
    }

    /// The first firing time strictly after `after_ms`.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let after = self
            .tz
            .timestamp_millis_opt(i64::try_from(after_ms).ok()?)
            .single()?;
        let next = self.cron.find_next_occurrence(&after, false).ok()?;
        u64::try_from(next.timestamp_millis()).ok()
    }

    /// The firing times in `(after_ms, up_to_ms]`, at most `max`.
    pub fn between(&self, after_ms: u64, up_to_ms: u64, max: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut t = after_ms;
        while out.len() < max {
            match self.next_after(t) {
                Some(n) if n <= up_to_ms => {
                    out.push(n);
                    t = n;
                }
                _ => break,
            }
        }
        out
    }
}

/// The run id a schedule uses for a firing time: deterministic, so that
/// several workers firing the same time start one run.
pub fn run_id(schedule_id: &str, fire_ms: u64) -> String {
    let when = i64::try_from(fire_ms)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .map(|t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| fire_ms.to_string());
    format!("{schedule_id}@{when}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, tz: chrono_tz::Tz) -> u64 {
        u64::try_from(
            tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
                .single()
                .expect("a valid time")
                .timestamp_millis(),
        )
        .expect("after 1970")
    }

    #[test]
    fn mondays_at_nine_in_a_time_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        let s = CronSchedule::parse("0 9 * * 1", "Europe/Berlin").expect("parses");
        // Wednesday 2026-11-25 12:00 Berlin -> Monday 2026-11-30 09:00 Berlin.
        let now = ms(2026, 11, 25, 12, 0, berlin);
        assert_eq!(s.next_after(now), Some(ms(2026, 11, 30, 9, 0, berlin)));
        // 08:00 UTC is 09:00 in Berlin in winter.
        assert_eq!(
            s.next_after(now),
            Some(ms(2026, 11, 30, 8, 0, chrono_tz::UTC))
        );
        let three = s.between(now, ms(2026, 12, 15, 0, 0, berlin), 10);
        assert_eq!(three.len(), 3);
    }

    #[test]
    fn daylight_saving_changes_follow_the_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        let utc = chrono_tz::UTC;
        let mondays = CronSchedule::parse("0 9 * * 1", "Europe/Berlin").expect("parses");
        // 09:00 in Berlin is 07:00 UTC in summer (2027-03-28 moves to CEST).
        assert_eq!(
            mondays.next_after(ms(2027, 3, 26, 12, 0, utc)),
            Some(ms(2027, 3, 29, 7, 0, utc))
        );
        // A daily 02:30 around both changes: once a day, every day. The day
        // with no 02:30 fires at 03:00, when the clocks have jumped; the day
        // whose 02:30 happens twice fires at the first one.
        let nightly = CronSchedule::parse("30 2 * * *", "Europe/Berlin").expect("parses");
        for (from, to) in [
            ((2027, 3, 26), (2027, 3, 31)),
            ((2027, 10, 29), (2027, 11, 3)),
        ] {
            let fired = nightly.between(
                ms(from.0, from.1, from.2, 0, 0, utc),
                ms(to.0, to.1, to.2, 0, 0, utc),
                20,
            );
            let days: Vec<String> = fired
                .iter()
                .map(|&t| {
                    let t = berlin
                        .timestamp_millis_opt(i64::try_from(t).expect("fits"))
                        .single()
                        .expect("a time");
                    t.format("%Y-%m-%d").to_string()
                })
                .collect();
            let mut unique = days.clone();
            unique.dedup();
            assert_eq!(days, unique, "fired twice on a day: {days:?}");
            assert_eq!(days.len(), 5, "{days:?}");
        }
        assert!(
            nightly
                .between(ms(2027, 3, 27, 12, 0, utc), ms(2027, 3, 28, 12, 0, utc), 5)
                .contains(&ms(2027, 3, 28, 1, 0, utc)),
            "03:00 CEST is 01:00 UTC"
        );
        assert_eq!(
            nightly.next_after(ms(2027, 10, 30, 12, 0, utc)),
            Some(ms(2027, 10, 31, 0, 30, utc)),
            "the first 02:30 (CEST) is 00:30 UTC"
        );
    }

    #[test]
    fn seconds_are_optional_and_errors_are_named() {
        let s = CronSchedule::parse("*/2 * * * * *", "UTC").expect("parses six fields");
        assert_eq!(s.next_after(1_000), Some(2_000));
        assert!(matches!(
            CronSchedule::parse("61 * * * *", "UTC"),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            CronSchedule::parse("0 9 * * 1", "Mars/Olympus"),
            Err(ScheduleError::TimeZone(_))
        ));
    }

    #[test]
    fn run_ids_name_the_firing_time() {
        assert_eq!(
            run_id("weekly-report", 0),
            "weekly-report@1970-01-01T00:00:00Z"
        );
    }
}
