//! The intake's memory of recent callbacks: replays within [`REPLAY_WINDOW`] are recognised
//! (at most [`REPLAY_MEMORY`] remembered, the oldest forgotten first), and unsigned callbacks
//! are counted per order so at most [`UNSIGNED_KEPT_PER_ORDER`] of them are kept. Pure
//! bookkeeping under the intake's mutex.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Identical callbacks within this long of each other are one callback.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Remembered callbacks for the replay check; the oldest go first when a flood fills it.
const REPLAY_MEMORY: usize = 10_000;
/// Unsigned callbacks kept on disk per order (while the daemon runs).
pub const UNSIGNED_KEPT_PER_ORDER: u32 = 10;

#[derive(Default)]
pub(crate) struct CallbackGuard {
    seen: HashMap<[u8; 32], Instant>,
    order: VecDeque<([u8; 32], Instant)>,
    unsigned_kept: HashMap<uuid::Uuid, u32>,
}

impl CallbackGuard {
    /// True when these parameters came within the window about the same order at the same
    /// version (then this one is a replay).
    pub(crate) fn replayed(
        &mut self,
        params: &[(String, String)],
        order: Option<(uuid::Uuid, u64)>,
        now: Instant,
    ) -> bool {
        while let Some((hash, at)) = self.order.front().copied() {
            if now.duration_since(at) < REPLAY_WINDOW && self.order.len() < REPLAY_MEMORY {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&hash) == Some(&at) {
                self.seen.remove(&hash);
            }
        }
        let hash = fingerprint(params, order);
        if self.seen.contains_key(&hash) {
            return true;
        }
        self.seen.insert(hash, now);
        self.order.push_back((hash, now));
        false
    }

    /// Counts one more unsigned callback kept for the order; false once it has had its share.
    pub(crate) fn keep_unsigned(&mut self, order: uuid::Uuid) -> bool {
        if self.unsigned_kept.len() >= REPLAY_MEMORY {
            self.unsigned_kept.clear();
        }
        let kept = self.unsigned_kept.entry(order).or_insert(0);
        *kept += 1;
        *kept <= UNSIGNED_KEPT_PER_ORDER
    }
}

/// The parameters as a set (order does not matter) and the order's id and version, hashed.
fn fingerprint(params: &[(String, String)], order: Option<(uuid::Uuid, u64)>) -> [u8; 32] {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut hash = Sha256::new();
    if let Some((id, version)) = order {
        hash.update(id.as_bytes());
        hash.update(version.to_be_bytes());
    }
    for (k, v) in sorted {
        hash.update((k.len() as u64).to_be_bytes());
        hash.update(k.as_bytes());
        hash.update((v.len() as u64).to_be_bytes());
        hash.update(v.as_bytes());
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_same_parameters_in_any_order_are_a_replay_until_the_order_moves_or_the_window_ends() {
        let mut guard = CallbackGuard::default();
        let id = uuid::Uuid::new_v4();
        let t0 = Instant::now();
        let a = params(&[("mdOrder", "x"), ("status", "1")]);
        let b = params(&[("status", "1"), ("mdOrder", "x")]);
        assert!(!guard.replayed(&a, Some((id, 1)), t0));
        assert!(guard.replayed(&b, Some((id, 1)), t0 + Duration::from_secs(1)));
        assert!(!guard.replayed(&b, Some((id, 2)), t0 + Duration::from_secs(2)));
        assert!(!guard.replayed(
            &a,
            Some((id, 1)),
            t0 + REPLAY_WINDOW + Duration::from_secs(1)
        ));
    }

    #[test]
    fn an_order_keeps_a_bounded_number_of_unsigned_callbacks() {
        let mut guard = CallbackGuard::default();
        let id = uuid::Uuid::new_v4();
        let kept = (0..UNSIGNED_KEPT_PER_ORDER + 5)
            .filter(|_| guard.keep_unsigned(id))
            .count();
        assert_eq!(kept, UNSIGNED_KEPT_PER_ORDER as usize);
    }
}
