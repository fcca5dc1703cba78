//! The Lua scripts, each prefixed with the shared helpers. Each is sent as
//! `EVALSHA` and loaded only when Redis does not know it (after a restart,
//! say): commits through [`super::connection::ScriptCall`], the rest
//! through `redis::Script`.

use redis::Script;

use crate::core::Status;

const COMMON: &str = include_str!("lua/common.lua");

pub(crate) struct Scripts {
    pub(crate) apply: Script,
    /// The plain step (`super::step`), its arguments bound to named locals.
    pub(crate) step: Script,
    pub(crate) acquire: Script,
    pub(crate) renew: Script,
    pub(crate) ack: Script,
    pub(crate) reclaim: Script,
    pub(crate) fire_timers: Script,
    pub(crate) delete_run: Script,
    pub(crate) put_schedule: Script,
    pub(crate) advance_schedule: Script,
    pub(crate) replace_schedule: Script,
}

fn with_common(body: &str) -> Script {
    Script::new(&format!("{}\n{COMMON}\n{body}", settled_statuses()))
}

/// `local settled_statuses = {completed = true, ..}`: the statuses a worker
/// no longer acquires a run in, as the scripts test them.
fn settled_statuses() -> String {
    let entries: Vec<String> = Status::ALL
        .into_iter()
        .filter(|s| s.is_settled())
        .map(|s| format!("{} = true", s.as_str()))
        .collect();
    format!("local settled_statuses = {{{}}}", entries.join(", "))
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            apply: with_common(include_str!("lua/apply.lua")),
            step: with_common(&format!(
                "{}\n{}",
                super::step::lua_locals(),
                include_str!("lua/step.lua")
            )),
            acquire: with_common(include_str!("lua/acquire.lua")),
            renew: with_common(include_str!("lua/renew.lua")),
            ack: with_common(include_str!("lua/ack.lua")),
            reclaim: with_common(include_str!("lua/reclaim.lua")),
            fire_timers: with_common(include_str!("lua/fire_timers.lua")),
            delete_run: with_common(include_str!("lua/delete_run.lua")),
            put_schedule: with_common(include_str!("lua/put_schedule.lua")),
            advance_schedule: with_common(include_str!("lua/advance_schedule.lua")),
            replace_schedule: with_common(include_str!("lua/replace_schedule.lua")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_status_is_settled_in_the_scripts() {
        let table = settled_statuses();
        for status in Status::ALL {
            let listed = table.contains(&format!(" {} = true", status.as_str()))
                || table.contains(&format!("{{{} = true", status.as_str()));
            assert_eq!(listed, status.is_settled(), "{status} in {table}");
        }
    }
}
