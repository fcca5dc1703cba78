//! The Lua scripts, each prefixed with the shared helpers. `redis::Script`
//! sends `EVALSHA` and loads a script only when Redis does not know it
//! (after a restart, say).

use redis::Script;

const COMMON: &str = include_str!("lua/common.lua");

pub(crate) struct Scripts {
    pub(crate) start: Script,
    pub(crate) acquire: Script,
    pub(crate) commit: Script,
    pub(crate) park: Script,
    pub(crate) renew: Script,
    pub(crate) ack: Script,
    pub(crate) reclaim: Script,
}

fn with_common(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            start: with_common(include_str!("lua/start.lua")),
            acquire: with_common(include_str!("lua/acquire.lua")),
            commit: with_common(include_str!("lua/commit.lua")),
            park: with_common(include_str!("lua/park.lua")),
            renew: with_common(include_str!("lua/renew.lua")),
            ack: with_common(include_str!("lua/ack.lua")),
            reclaim: with_common(include_str!("lua/reclaim.lua")),
        }
    }
}
