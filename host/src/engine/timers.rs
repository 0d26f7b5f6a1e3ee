//! Durable timers' in-memory side: the next due times, so the engine can wake a run when
//! its retry, wait or timeout is due. The timers themselves live in the store; this
//! heap is rebuilt from it at start.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Due times by run. A run may appear several times; waking it early or twice is
/// harmless, as it checks its own steps' due times.
#[derive(Default)]
pub struct Timers {
    heap: Mutex<BinaryHeap<Reverse<(u64, String)>>>,
    changed: Notify,
}

impl Timers {
    /// Wakes `run` at `due_ms`.
    pub fn add(&self, due_ms: u64, run: &str) {
        let mut heap = self.heap.lock().expect("timers lock");
        let earlier = heap.peek().is_none_or(|Reverse((d, _))| due_ms < *d);
        heap.push(Reverse((due_ms, run.to_owned())));
        drop(heap);
        if earlier {
            self.changed.notify_one();
        }
    }

    /// How many wake-ups are pending.
    pub fn len(&self) -> usize {
        self.heap.lock().expect("timers lock").len()
    }

    /// Removes and returns the runs due at `now_ms`, or the next due time.
    pub fn take_due(&self, now_ms: u64) -> (Vec<String>, Option<u64>) {
        let mut heap = self.heap.lock().expect("timers lock");
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = heap.peek() {
            if *at > now_ms {
                return (due, Some(*at));
            }
            let Reverse((_, run)) = heap.pop().expect("peeked");
            due.push(run);
        }
        (due, None)
    }

    /// Resolves when a timer earlier than all others was added.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}
