//! A bound on the memory that Kubernetes answers take while kubegate works on them.
//!
//! Every byte of an API server answer is counted as it arrives, [`COPIES`] times over (the
//! answer itself, the filtered objects made from it, and the MCP response they are encoded
//! into), against one budget for the whole process (`[kubernetes] answer_memory_mib`). The
//! bytes stay counted until the tool call that asked for them has built its answer. A call that
//! would go over the budget never waits for room (two calls each holding half could wait for
//! each other forever): it fails at once, with a message that says to retry or to ask for a
//! smaller page. The budget bounds what many large lists at once can hold; counting costs a
//! lock and an atomic operation per chunk of an answer.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// How many times an answer's bytes are counted: the body, the filtered copy, the response.
pub const COPIES: usize = 3;
/// The budget unless configured, in MiB.
pub const DEFAULT_MIB: u64 = 512;
/// The budget is counted in KiB.
const UNIT: usize = 1024;

/// The shared budget.
#[derive(Clone)]
pub struct AnswerMemory {
    free: Arc<Semaphore>,
    mib: u64,
}

/// What one call holds of the budget (shared by the requests it sends side by side); given back
/// when dropped.
#[derive(Default)]
pub struct Held(Option<OwnedSemaphorePermit>);

/// The answer would take kubegate over its budget.
#[derive(Debug, Clone, Copy)]
pub struct Full {
    pub mib: u64,
    /// The answer alone is larger than the whole budget: retrying cannot help.
    pub alone: bool,
}

impl AnswerMemory {
    pub fn new(mib: u64) -> AnswerMemory {
        AnswerMemory {
            free: Arc::new(Semaphore::new(units_of(mib))),
            mib,
        }
    }

    /// Counts `bytes` more of an answer into `held`, or refuses if the budget has no room.
    pub fn take(&self, bytes: usize, held: &mut Held) -> Result<(), Full> {
        let units = bytes.saturating_mul(COPIES).div_ceil(UNIT);
        let full = |held: &Held| Full {
            mib: self.mib,
            alone: held.units().saturating_add(units) > units_of(self.mib),
        };
        let Ok(units) = u32::try_from(units) else {
            return Err(full(held));
        };
        if units == 0 {
            return Ok(());
        }
        match Arc::clone(&self.free).try_acquire_many_owned(units) {
            Ok(permit) => {
                match &mut held.0 {
                    Some(existing) => existing.merge(permit),
                    None => held.0 = Some(permit),
                }
                Ok(())
            }
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => Err(full(held)),
        }
    }

    /// KiB of the budget in use now.
    #[cfg(test)]
    fn used_kib(&self) -> usize {
        units_of(self.mib).saturating_sub(self.free.available_permits())
    }
}

impl Held {
    /// KiB this call holds.
    fn units(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits())
    }
}

/// The budget in KiB, within what one permit can count (`u32`).
fn units_of(mib: u64) -> usize {
    usize::try_from(mib.saturating_mul(1024).min(u64::from(u32::MAX)))
        .unwrap_or(Semaphore::MAX_PERMITS)
        .clamp(1, Semaphore::MAX_PERMITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_until_their_call_is_done_and_refused_beyond_the_budget() {
        let memory = AnswerMemory::new(1);
        let mut first = Held::default();
        // 200 KiB counted three times: 600 of the 1,024 KiB.
        assert!(memory.take(200 * 1024, &mut first).is_ok());
        assert_eq!(memory.used_kib(), 600);
        let mut second = Held::default();
        assert!(memory.take(100 * 1024, &mut second).is_ok());
        assert_eq!(memory.used_kib(), 900);
        assert!(
            memory.take(50 * 1024, &mut second).is_err(),
            "150 KiB more would pass the budget"
        );
        assert_eq!(memory.used_kib(), 900, "a refusal takes nothing");
        drop(first);
        assert_eq!(
            memory.used_kib(),
            300,
            "the first call's bytes are given back"
        );
        assert!(memory.take(50 * 1024, &mut second).is_ok());
        assert_eq!(memory.used_kib(), 450);
        drop(second);
        assert_eq!(memory.used_kib(), 0);
    }

    #[test]
    fn an_answer_larger_than_any_budget_is_refused_without_panic() {
        let memory = AnswerMemory::new(1);
        let mut held = Held::default();
        assert!(
            memory
                .take(usize::MAX, &mut held)
                .is_err_and(|full| full.alone)
        );
        assert!(
            memory
                .take(400 * 1024, &mut held)
                .is_err_and(|full| full.alone)
        );
        let mut other = Held::default();
        assert!(memory.take(300 * 1024, &mut other).is_ok());
        assert!(
            memory
                .take(300 * 1024, &mut held)
                .is_err_and(|full| !full.alone),
            "refused for the other call's share: retrying can help"
        );
        drop(other);
        assert!(memory.take(0, &mut held).is_ok());
        assert_eq!(memory.used_kib(), 0);
    }
}
