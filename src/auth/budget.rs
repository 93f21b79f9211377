//! Bounds the signature checks spent on tokens kubegate has not verified before, per source
//! address: a client flooding junk or forged tokens gets 429s instead of costing a signature
//! check (hundreds of microseconds) each. Tokens already verified are answered from the cache
//! and never counted, so callers with valid tokens are not slowed by a flood from elsewhere.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Addresses remembered before those not seen lately are forgotten.
const REMEMBERED_ADDRESSES: usize = 65_536;

/// A token bucket per source address.
pub struct SignatureBudget {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl SignatureBudget {
    /// `per_second` checks per address, bursting to twice that; `None` for 0 (no budget).
    pub fn new(per_second: u32) -> Option<SignatureBudget> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        Some(SignatureBudget {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        })
    }

    /// Whether `source` may have one more signature checked now.
    pub fn allow(&self, source: IpAddr) -> bool {
        if self.limiter.len() > REMEMBERED_ADDRESSES {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&source).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_runs_out_and_another_does_not() {
        let budget = SignatureBudget::new(5).unwrap_or_else(|| unreachable!("5 is not 0"));
        let flooder: IpAddr = [198, 51, 100, 7].into();
        let allowed = (0..100).filter(|_| budget.allow(flooder)).count();
        assert!(
            (10..=11).contains(&allowed),
            "a burst of twice the rate: {allowed}"
        );
        assert!(
            budget.allow([198, 51, 100, 8].into()),
            "other addresses keep theirs"
        );
        assert!(SignatureBudget::new(0).is_none());
    }
}
