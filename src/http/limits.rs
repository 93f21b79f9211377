//! Bounds what any client can hold or start: connections (in all, kept below the process's
//! file-descriptor limit, and per source address) and MCP exchanges in flight (in all, taken
//! before any work is spawned, and per caller). A slot is a guard: dropping it gives it back,
//! so a slot held by a spawned exchange is returned when that exchange ends, not when its
//! client goes away.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::HttpConfig;

/// File descriptors kept back from connections: the audit log, policy files, the API server's
/// connections, the namespace watch.
const RESERVED_DESCRIPTORS: usize = 64;

/// Counts holders per key, up to a bound per key.
pub struct PerKey<K: Hash + Eq + Clone> {
    bound: usize,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

/// One slot of a [`PerKey`] count; given back on drop.
pub struct KeySlot<K: Hash + Eq + Clone> {
    key: K,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    pub fn new(bound: usize) -> PerKey<K> {
        PerKey {
            bound,
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for `key`, if it holds fewer than the bound.
    pub fn try_take(&self, key: &K) -> Option<KeySlot<K>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= self.bound {
            return None;
        }
        *count += 1;
        Some(KeySlot {
            key: key.clone(),
            held: Arc::clone(&self.held),
        })
    }

    /// How many slots `key` holds now.
    pub fn held(&self, key: &K) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq + Clone> Drop for KeySlot<K> {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// Every limit the listener applies.
pub struct Limits {
    /// Connections in all (acquired, waiting, before accepting).
    pub connections: Arc<Semaphore>,
    pub per_ip: PerKey<IpAddr>,
    /// Exchanges in flight in all (tried, never waited for).
    exchanges: Arc<Semaphore>,
    per_caller: PerKey<String>,
    /// What `max_connections` became under the file-descriptor limit.
    pub max_connections: usize,
}

impl Limits {
    pub fn new(config: &HttpConfig) -> Limits {
        let max_connections = match open_files_limit() {
            Some(limit) if limit <= RESERVED_DESCRIPTORS + 16 => {
                tracing::warn!(
                    limit,
                    "the file-descriptor limit leaves room for few connections"
                );
                16
            }
            Some(limit) => config.max_connections.min(limit - RESERVED_DESCRIPTORS),
            None => config.max_connections,
        };
        if max_connections < config.max_connections {
            tracing::info!(
                max_connections,
                configured = config.max_connections,
                "connections capped below the process's file-descriptor limit"
            );
        }
        Limits {
            connections: Arc::new(Semaphore::new(max_connections)),
            per_ip: PerKey::new(config.max_connections_per_ip),
            exchanges: Arc::new(Semaphore::new(config.max_exchanges)),
            per_caller: PerKey::new(config.max_exchanges_per_caller),
            max_connections,
        }
    }

    /// A slot for one more exchange, if fewer than the bound are in flight.
    pub fn exchange(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.exchanges).try_acquire_owned().ok()
    }

    /// A slot for one more exchange of `caller`, if they have fewer than their bound in flight.
    pub fn caller_exchange(&self, caller: &str) -> Option<KeySlot<String>> {
        self.per_caller.try_take(&caller.to_owned())
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` if unknown or
/// unlimited.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_bound_and_gets_slots_back_on_drop() {
        let limit = PerKey::new(2);
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        let first = limit.try_take(&ip);
        let second = limit.try_take(&ip);
        assert!(first.is_some() && second.is_some());
        assert!(limit.try_take(&ip).is_none(), "the third is refused");
        assert!(
            limit.try_take(&other).is_some(),
            "other keys are not affected"
        );
        drop(first);
        assert_eq!(limit.held(&ip), 1);
        assert!(limit.try_take(&ip).is_some());
    }

    #[test]
    fn exchanges_are_bounded_in_all_and_per_caller() {
        let config = HttpConfig {
            max_exchanges: 3,
            max_exchanges_per_caller: 2,
            ..HttpConfig::default()
        };
        let limits = Limits::new(&config);
        let a1 = (limits.exchange(), limits.caller_exchange("alice"));
        let a2 = (limits.exchange(), limits.caller_exchange("alice"));
        assert!(a1.0.is_some() && a1.1.is_some() && a2.0.is_some() && a2.1.is_some());
        assert!(
            limits.caller_exchange("alice").is_none(),
            "alice has two in flight"
        );
        let b = (limits.exchange(), limits.caller_exchange("bob"));
        assert!(b.0.is_some() && b.1.is_some());
        assert!(limits.exchange().is_none(), "three in flight in all");
        drop(a1);
        assert!(limits.exchange().is_some() && limits.caller_exchange("alice").is_some());
    }

    #[test]
    fn connections_stay_below_the_descriptor_limit() {
        let limits = Limits::new(&HttpConfig {
            max_connections: usize::MAX / 2,
            ..HttpConfig::default()
        });
        if let Some(limit) = open_files_limit() {
            assert!(
                limits.max_connections < limit,
                "{} vs {limit}",
                limits.max_connections
            );
        }
    }
}
