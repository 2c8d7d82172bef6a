//! The looks callbacks ask for, bounded: at most one pending look per order, at most
//! [`PENDING_MAX`] orders waiting overall (beyond that an order is left to the poller, which
//! looks at every open order anyway), and a few workers that wait on the shared rate, so a
//! storm of callbacks never turns into a task, a timer and a limiter waiter per callback.
//! Pure bookkeeping: the intake's workers call it under a mutex.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Orders that may wait for a callback-caused look at once (each entry is a few dozen bytes).
pub const PENDING_MAX: usize = 10_000;
/// Workers making callback-caused looks at once (each waits for the shared rate first).
pub const WORKERS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In `due`, waiting for a worker.
    Due,
    /// A worker is looking at it now.
    Looking,
    /// Looked at; kept for the spacing so callbacks right after wait for it.
    Resting,
}

#[derive(Debug)]
struct Pending {
    phase: Phase,
    /// Another callback came during the look: one more look after it.
    again: bool,
    /// Failure callbacks (status 0) not yet handed to a look: each is a payment attempt.
    failures: u32,
    last_look: Option<Instant>,
}

/// What a callback's ask did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// Queued; start a worker when `start_worker`.
    Queued { start_worker: bool },
    /// A look is already pending or under way; this one joins it.
    Joined,
    /// Too many orders waiting: the poller will look.
    Full,
}

/// What a worker does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Look at this order; `failures` failure callbacks came for it since its last look.
    Look { order: uuid::Uuid, failures: u32 },
    /// Every waiting order was looked at less than the spacing ago: wait this long.
    Wait(Duration),
    /// Nothing waits: the worker ends (and is no longer counted).
    Done,
}

#[derive(Debug)]
pub(crate) struct FollowQueue {
    due: VecDeque<uuid::Uuid>,
    pending: HashMap<uuid::Uuid, Pending>,
    /// Resting orders in the order they were looked at, to forget them after the spacing.
    rested: VecDeque<(uuid::Uuid, Instant)>,
    workers: usize,
    spacing: Duration,
    limit: usize,
}

impl FollowQueue {
    pub(crate) fn new(spacing: Duration, limit: usize) -> FollowQueue {
        FollowQueue {
            due: VecDeque::new(),
            pending: HashMap::new(),
            rested: VecDeque::new(),
            workers: 0,
            spacing,
            limit,
        }
    }

    /// A callback about `order` asks for a look (`failure`: it reported a failed attempt).
    pub(crate) fn ask(&mut self, order: uuid::Uuid, failure: bool, now: Instant) -> Asked {
        self.forget_rested(now);
        let failures = u32::from(failure);
        if let Some(p) = self.pending.get_mut(&order) {
            p.failures = p.failures.saturating_add(failures);
            match p.phase {
                Phase::Due => {}
                Phase::Looking => p.again = true,
                Phase::Resting => {
                    p.phase = Phase::Due;
                    self.due.push_back(order);
                    return Asked::Queued {
                        start_worker: self.claim_worker(),
                    };
                }
            }
            return Asked::Joined;
        }
        if self.pending.len() >= self.limit {
            return Asked::Full;
        }
        self.pending.insert(
            order,
            Pending {
                phase: Phase::Due,
                again: false,
                failures,
                last_look: None,
            },
        );
        self.due.push_back(order);
        Asked::Queued {
            start_worker: self.claim_worker(),
        }
    }

    fn claim_worker(&mut self) -> bool {
        if self.workers < WORKERS {
            self.workers += 1;
            true
        } else {
            false
        }
    }

    /// The next order for a worker: the first due one whose spacing has passed.
    pub(crate) fn next(&mut self, now: Instant) -> Next {
        self.forget_rested(now);
        let mut soonest: Option<Duration> = None;
        for _ in 0..self.due.len() {
            let Some(order) = self.due.pop_front() else {
                break;
            };
            let Some(p) = self.pending.get_mut(&order) else {
                continue;
            };
            let ready_in = p
                .last_look
                .map(|at| {
                    self.spacing
                        .saturating_sub(now.saturating_duration_since(at))
                })
                .unwrap_or(Duration::ZERO);
            if ready_in.is_zero() {
                p.phase = Phase::Looking;
                p.again = false;
                let failures = std::mem::take(&mut p.failures);
                return Next::Look { order, failures };
            }
            soonest = Some(soonest.map_or(ready_in, |s| s.min(ready_in)));
            self.due.push_back(order);
        }
        match soonest {
            Some(wait) => Next::Wait(wait),
            None => {
                self.workers = self.workers.saturating_sub(1);
                Next::Done
            }
        }
    }

    /// A worker finished looking at `order`.
    pub(crate) fn looked(&mut self, order: uuid::Uuid, now: Instant) {
        let Some(p) = self.pending.get_mut(&order) else {
            return;
        };
        p.last_look = Some(now);
        if p.again || p.failures > 0 {
            p.again = false;
            p.phase = Phase::Due;
            self.due.push_back(order);
        } else {
            p.phase = Phase::Resting;
            self.rested.push_back((order, now));
        }
    }

    /// A worker stops early (shutdown).
    pub(crate) fn worker_stopped(&mut self) {
        self.workers = self.workers.saturating_sub(1);
    }

    /// Orders waiting for a look or being looked at (not those resting).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn waiting(&self) -> usize {
        self.pending
            .values()
            .filter(|p| p.phase != Phase::Resting)
            .count()
    }

    /// Entries kept, resting ones included (bounded by the limit).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    fn forget_rested(&mut self, now: Instant) {
        while let Some(&(order, at)) = self.rested.front() {
            if now.saturating_duration_since(at) < self.spacing {
                break;
            }
            self.rested.pop_front();
            let resting_since_then = self
                .pending
                .get(&order)
                .is_some_and(|p| p.phase == Phase::Resting && p.last_look == Some(at));
            if resting_since_then {
                self.pending.remove(&order);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACING: Duration = Duration::from_secs(1);

    fn ids(n: usize) -> Vec<uuid::Uuid> {
        (0..n).map(|_| uuid::Uuid::new_v4()).collect()
    }

    #[test]
    fn one_pending_look_per_order_and_a_bounded_set() {
        let t = Instant::now();
        let mut q = FollowQueue::new(SPACING, 3);
        let o = ids(5);
        assert_eq!(q.ask(o[0], false, t), Asked::Queued { start_worker: true });
        assert_eq!(
            q.ask(o[0], true, t),
            Asked::Joined,
            "one pending look per order"
        );
        assert_eq!(q.ask(o[1], false, t), Asked::Queued { start_worker: true });
        assert_eq!(q.ask(o[2], false, t), Asked::Queued { start_worker: true });
        assert_eq!(
            q.ask(o[3], false, t),
            Asked::Full,
            "the poller takes the rest"
        );
        assert_eq!(q.len(), 3);
        assert_eq!(
            q.next(t),
            Next::Look {
                order: o[0],
                failures: 1
            }
        );
    }

    #[test]
    fn a_callback_during_a_look_asks_for_one_more_after_the_spacing() {
        let t = Instant::now();
        let mut q = FollowQueue::new(SPACING, 10);
        let o = ids(1)[0];
        q.ask(o, false, t);
        assert_eq!(
            q.next(t),
            Next::Look {
                order: o,
                failures: 0
            }
        );
        for _ in 0..100 {
            assert_eq!(q.ask(o, true, t), Asked::Joined);
        }
        q.looked(o, t);
        assert_eq!(q.next(t), Next::Wait(SPACING), "not before the spacing");
        let later = t + SPACING;
        assert_eq!(
            q.next(later),
            Next::Look {
                order: o,
                failures: 100
            },
            "every failure callback counted, one look"
        );
        q.looked(o, later);
        assert_eq!(q.next(later), Next::Done);
        assert_eq!(q.waiting(), 0);
        // A callback right after the look waits for the spacing; later ones are forgotten.
        assert_eq!(q.ask(o, false, later), Asked::Queued { start_worker: true });
        assert_eq!(q.next(later), Next::Wait(SPACING));
        let much_later = later + SPACING * 2;
        assert!(matches!(q.next(much_later), Next::Look { .. }));
        q.looked(o, much_later);
        assert_eq!(q.next(much_later), Next::Done);
        q.forget_rested(much_later + SPACING);
        assert_eq!(q.len(), 0, "nothing kept once the spacing passed");
    }

    #[test]
    fn at_most_a_few_workers() {
        let t = Instant::now();
        let mut q = FollowQueue::new(SPACING, 100);
        let started = ids(20)
            .into_iter()
            .filter(|o| q.ask(*o, false, t) == Asked::Queued { start_worker: true })
            .count();
        assert_eq!(started, WORKERS);
    }
}
