//! One task at a time per order: a callback and the poller racing each other must never deposit
//! twice. The map holds an entry only while someone holds or waits for an order's lock, so it
//! does not grow with the store's history; a wait is bounded, so a request never hangs behind
//! a slow gateway call on the same order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

type Slot = Arc<AsyncMutex<()>>;

#[derive(Default)]
pub(crate) struct OrderLocks {
    map: Arc<Mutex<HashMap<Uuid, Slot>>>,
}

/// Holds one order's lock; dropping it releases the lock and prunes the map entry when nobody
/// else wants it.
pub(crate) struct OrderGuard {
    id: Uuid,
    guard: Option<OwnedMutexGuard<()>>,
    map: Arc<Mutex<HashMap<Uuid, Slot>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OrderLocks {
    fn slot(&self, id: Uuid) -> Slot {
        lock(&self.map).entry(id).or_default().clone()
    }

    fn guard(&self, id: Uuid, guard: OwnedMutexGuard<()>) -> OrderGuard {
        OrderGuard {
            id,
            guard: Some(guard),
            map: self.map.clone(),
        }
    }

    /// Waits up to `limit` for the order's lock; `None` when someone else kept it that long.
    pub(crate) async fn lock(&self, id: Uuid, limit: Duration) -> Option<OrderGuard> {
        let slot = self.slot(id);
        match tokio::time::timeout(limit, slot.lock_owned()).await {
            Ok(guard) => Some(self.guard(id, guard)),
            Err(_) => {
                prune(&self.map, id);
                None
            }
        }
    }

    /// The lock if it is free now (the poller skips busy orders rather than queue behind them).
    pub(crate) fn try_lock(&self, id: Uuid) -> Option<OrderGuard> {
        let slot = self.slot(id);
        match slot.try_lock_owned() {
            Ok(guard) => Some(self.guard(id, guard)),
            Err(_) => {
                prune(&self.map, id);
                None
            }
        }
    }

    /// Entries in the map (for tests: it must not grow with history).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

/// Removes the entry when only the map itself still refers to it.
fn prune(map: &Mutex<HashMap<Uuid, Slot>>, id: Uuid) {
    let mut map = lock(map);
    if map
        .get(&id)
        .is_some_and(|slot| Arc::strong_count(slot) == 1)
    {
        map.remove(&id);
    }
}

impl Drop for OrderGuard {
    fn drop(&mut self) {
        // Release first: the guard holds a reference to the slot.
        drop(self.guard.take());
        prune(&self.map, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_map_empties_and_a_wait_is_bounded() {
        let locks = OrderLocks::default();
        let id = Uuid::now_v7();
        let held = locks.lock(id, Duration::from_secs(1)).await.unwrap();
        assert!(locks.try_lock(id).is_none());
        assert!(locks.lock(id, Duration::from_millis(20)).await.is_none());
        assert_eq!(locks.len(), 1, "only the holder's entry");
        drop(held);
        assert_eq!(locks.len(), 0, "pruned once released");
        for _ in 0..1000 {
            drop(locks.try_lock(Uuid::now_v7()));
        }
        assert_eq!(locks.len(), 0);
    }
}
