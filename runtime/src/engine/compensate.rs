//! Unwinding a failed, cancelled or timed-out run's compensations, one
//! checkpointed transition each.

use tracing::{info, warn};

use super::attempts::{CallEnd, CallSpec};
use super::{DriveError, Engine, Held, Opts};
use crate::envelope::{Envelope, Interrupt, Status};

impl Engine {
    /// Runs the most recent pending compensation. Returns whether the
    /// worker keeps the run.
    pub(super) async fn compensate_one(
        &self,
        held: &mut Held<'_>,
        env: &mut Envelope,
    ) -> Result<bool, DriveError> {
        // A cancel that arrives while compensating changes nothing: the
        // compensations run anyway. Clear it with the next commit.
        let clear_interrupt = env
            .interrupt
            .clone()
            .filter(|i| matches!(i, Interrupt::Cancel { .. }));
        let Some(top) = env.compensations.last().cloned() else {
            self.begin_transition(env);
            env.status = env.ending.take().unwrap_or(Status::Failed);
            let opts = Opts {
                release: true,
                clear_interrupt: clear_interrupt.clone(),
                ..Opts::default()
            };
            self.commit(held, env, "compensations done".into(), opts)
                .await?;
            return Ok(false);
        };
        let handler = self.activity(&top.activity)?;
        let label = format!("compensation {} for {}", top.activity, top.step);
        let spec = CallSpec {
            step: &top.step,
            label: &label,
            input: &top.input,
            key: &top.key,
        };
        let end = self.call(held, env, &handler, spec, false).await?;
        if matches!(end, CallEnd::Interrupted) {
            return Ok(true);
        }
        self.begin_transition(env);
        match end {
            CallEnd::GaveUp { attempts, failure } => {
                let reason = format!(
                    "compensation `{}` for step `{}` failed after {attempts} attempt(s): {}",
                    top.activity, top.step, failure.message
                );
                warn!(workflow_id = %env.id, %reason, "compensation failed; run kept for an operator");
                env.status = Status::CompensationFailed;
                env.reason = Some(reason.clone());
                let opts = Opts {
                    release: true,
                    clear_interrupt,
                    ..Opts::default()
                };
                self.commit(held, env, reason, opts).await?;
                Ok(false)
            }
            _ => {
                env.compensations.pop();
                let keep = !env.compensations.is_empty();
                if !keep {
                    env.status = env.ending.take().unwrap_or(Status::Failed);
                }
                let event = format!("{label} completed");
                info!(workflow_id = %env.id, activity = %top.activity, step = %top.step, "compensation completed");
                let opts = Opts {
                    release: !keep,
                    clear_interrupt,
                    ..Opts::default()
                };
                self.commit(held, env, event, opts).await?;
                Ok(keep)
            }
        }
    }
}
