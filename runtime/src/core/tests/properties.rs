//! Properties of `decide` over random input sequences: no invalid phase,
//! no compensation run twice or for a step that did not complete, `seq`
//! one higher per decision.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::super::*;
use super::{NOW, activity, apply, fresh, step, succeeded, suspend};

/// An input built from random numbers, shaped by the record it goes to so
/// that many are valid.
fn input_for(record: &RunRecord, kind: u8, pick: u8, n: u16) -> Input {
    let name = format!("s{}", pick % 3);
    let command = match pick % 4 {
        0 => activity(&format!("a{}", n % 3)),
        1 => Command::Sleep {
            duration: Duration::from_millis(u64::from(n)),
        },
        2 => Command::Signal {
            name: "go".into(),
            timeout: n
                .is_multiple_of(2)
                .then(|| Duration::from_millis(u64::from(n))),
        },
        _ => Command::Child {
            workflow: "w".into(),
            id: format!("c{n}"),
            input: json!(null),
            start_state: json!(null),
            start_fp: String::new(),
            queue: "q".into(),
            patches: Vec::new(),
        },
    };
    let outcome = match n % 5 {
        0 => StepOutcome::Completed { output: json!(n) },
        1 => StepOutcome::Failed {
            error: json!("e"),
            message: "e".into(),
        },
        2 => StepOutcome::ContinueAsNew {
            input: json!(n),
            step: "start".into(),
            fingerprint: "fp0".into(),
            json: json!({}),
            patches: Vec::new(),
        },
        _ => suspend(&name, command),
    };
    let cause = match record.phase {
        Phase::Running {
            work: Work::Start, ..
        } => Cause::Started,
        Phase::Running {
            work: Work::Activity {
                outcome: Some(_), ..
            },
            ..
        } => Cause::OutcomeDelivered,
        Phase::Running { .. } => succeeded(pick.is_multiple_of(2)),
        Phase::Waiting {
            wait: Wait::Timer { .. },
            ..
        } => Cause::TimerFired,
        Phase::Waiting {
            wait: Wait::Signal { .. },
            ..
        } => match record.signals.iter().find(|s| s.name == "go") {
            Some(s) => Cause::SignalReceived { nonce: s.nonce },
            None => Cause::SignalTimedOut,
        },
        Phase::Waiting { .. } => Cause::ChildSettled { what: "x".into() },
        _ => Cause::Started,
    };
    match kind % 14 {
        0..=3 => step(cause, outcome),
        4 => Input::OutcomeRecorded { cause },
        5 => Input::AttemptFailed {
            attempt: u32::from(pick % 4) + 1,
            message: "boom".into(),
            retry_in: Duration::from_millis(10),
        },
        6 => Input::Compensated,
        7 => Input::CompensationGaveUp {
            attempts: 3,
            message: "no".into(),
        },
        8 => Input::Stop(match pick % 3 {
            0 => Stop::Cancel { reason: "c".into() },
            1 => Stop::Terminate { reason: "t".into() },
            _ => Stop::DeadlinePassed,
        }),
        9 => Input::Park { reason: "p".into() },
        10 => Input::Resume { note: "r".into() },
        11 => Input::CompensationsDone,
        12 => Input::SendSignal {
            signal: SignalEntry {
                name: "go".into(),
                payload: json!(n),
                sent_at_ms: NOW,
                nonce: u64::from(n),
            },
            bound: 100,
        },
        _ => Input::RemoveSignal {
            nonce: u64::from(n),
            note: String::new(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_inputs_keep_the_rules(script in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u16>()), 1..60)) {
        let mut record = fresh();
        let mut undone: HashSet<String> = HashSet::new();
        let mut was_settled = false;
        for (kind, pick, n) in script {
            let input = input_for(&record, kind, pick, n);
            let sent_signal = match &input {
                Input::SendSignal { signal, .. } => Some(signal.clone()),
                _ => None,
            };
            let top = record.compensations.last().map(|c| c.key.clone());
            let Ok(decision) = decide(&record, input.clone(), NOW) else {
                continue;
            };
            // Settled is for good: only no-op messages are taken.
            if was_settled {
                prop_assert!(matches!(decision.write, Write::Nothing), "{input:?} changed a settled run");
                prop_assert!(decision.effects.is_empty(), "{input:?} acted on a settled run");
            }
            match (&decision.write, &decision.history) {
                (Write::Record(next), Some(h)) => {
                    prop_assert_eq!(next.seq, record.seq + 1, "seq grows by one");
                    prop_assert_eq!(h.seq, next.seq);
                    prop_assert_eq!(h.status, next.status());
                    prop_assert_eq!(&h.step, &next.step().to_owned());
                }
                (Write::Nothing, None) => {}
                other => prop_assert!(false, "a write without its history entry: {other:?}"),
            }
            prop_assert!(
                !(decision.keeps_lease() && decision.effects.contains(&Effect::Release)),
                "keeps and releases at once"
            );
            let next = apply(&record, &decision);
            if matches!(input, Input::Compensated) {
                let key = top.expect("a compensation ran, so one was owed");
                prop_assert!(undone.insert(key), "a compensation ran twice");
                prop_assert_eq!(next.compensations.len() + 1, record.compensations.len());
            } else {
                prop_assert!(next.compensations.len() >= record.compensations.len() || matches!(next.phase, Phase::Settled { .. }),
                    "only a finished compensation pops the stack");
            }
            let keys: HashSet<&str> = next.compensations.iter().map(|c| c.key.as_str()).collect();
            prop_assert_eq!(keys.len(), next.compensations.len(), "compensation keys are unique");
            match &next.phase {
                Phase::Parked { kind: ParkKind::CompensationFailed, resume_to, .. } => {
                    let ok = matches!(resume_to.as_deref(), Some(Phase::Compensating { .. }));
                    prop_assert!(ok, "a failed compensation resumes to compensating");
                }
                Phase::Parked { resume_to, .. } => {
                    let bad = matches!(resume_to.as_deref(), Some(Phase::Parked { .. } | Phase::Settled { .. }));
                    prop_assert!(!bad, "a parked run resumes to a live phase");
                }
                Phase::Settled { .. } => {
                    prop_assert!(decision.history.is_none() || decision.effects.contains(&Effect::Release));
                    prop_assert!(next.signals.is_empty());
                }
                _ => {}
            }
            if next.status().needs_attention() && next.status() != record.status() {
                let listed = decision.effects.iter().any(|e| matches!(e, Effect::Index { index: RunIndex::Attention, .. }));
                prop_assert!(listed, "a run that stops for an operator is listed for one");
            }
            was_settled = matches!(next.phase, Phase::Settled { .. });
            record = next;
            if let (Some(signal), Write::Nothing) = (sent_signal, &decision.write)
                && !record.signals.iter().any(|s| s.nonce == signal.nonce) {
                    record.signals.push(signal);
                }
        }
    }
}
