//! Priority storage: a binary max-heap ordered by a comparator, with an arrival
//! sequence number as tie-breaker so equal priorities leave in FIFO order
//! (`std::collections::BinaryHeap` is not stable, and cannot hold a closure).
//!
//! # A comparator that panics
//!
//! The comparator is user code (`Ord`, a key fn, `partial_cmp().unwrap()` on
//! a NaN...). `push` and `pop` are transactional: a sift only ever swaps
//! along one root-to-leaf path, and a panic can only strike between two
//! swaps (during a comparison), so the sift's path is known from where it
//! started and where the moving entry is now. On a panic the swaps are undone
//! in reverse, the heap is exactly as it was before the call, and the panic
//! continues to the caller: a failed `pop` leaves its item queued, a failed
//! `push` drops the new item with the unwinding call (it was never queued).
//! The undo costs nothing until a panic happens (one `catch_unwind` frame).

use std::cmp::Ordering;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

/// Orders two items; `Greater` means "serve first".
pub(crate) type Compare<T> = Arc<dyn Fn(&T, &T) -> Ordering + Send + Sync>;

/// A stable binary heap. `push`/`pop` are O(log n); `pop_least_urgent` is O(n).
pub(crate) struct PriorityHeap<T> {
    entries: Vec<(T, u64)>,
    compare: Compare<T>,
    next_seq: u64,
}

impl<T> std::fmt::Debug for PriorityHeap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriorityHeap")
            .field("len", &self.entries.len())
            .finish()
    }
}

impl<T> PriorityHeap<T> {
    pub(crate) fn new(compare: Compare<T>, cap: usize) -> Self {
        Self {
            entries: Vec::with_capacity(cap.min(4096)),
            compare,
            next_seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` if entry `a` must be served before entry `b`.
    fn before(&self, a: usize, b: usize) -> bool {
        let (item_a, seq_a) = &self.entries[a];
        let (item_b, seq_b) = &self.entries[b];
        match (self.compare)(item_a, item_b) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => seq_a < seq_b,
        }
    }

    /// Adds an item. If the comparator panics, the heap is left as it was and
    /// the panic resumes (the item is dropped with it).
    pub(crate) fn push(&mut self, item: T) {
        let seq = self.next_seq;
        self.entries.push((item, seq));
        let start = self.entries.len() - 1;
        let mut pos = start;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.sift_up(&mut pos))) {
            self.undo_sift_up(start, pos);
            drop(self.entries.pop());
            resume_unwind(panic);
        }
        self.next_seq += 1;
    }

    /// The most urgent item (earliest arrival among equals).
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.remove_at(0)
    }

    /// The item that would be served last (lowest priority, newest among
    /// equals): what `DropOldest` evicts from a priority queue. Only leaves
    /// can be last, so the scan covers the second half of the array. (The
    /// scan only reads: a comparator panic here changes nothing.)
    pub(crate) fn pop_least_urgent(&mut self) -> Option<T> {
        let n = self.entries.len();
        if n == 0 {
            return None;
        }
        let mut last = n / 2;
        for i in (n / 2)..n {
            if self.before(last, i) {
                last = i;
            }
        }
        self.remove_at(last)
    }

    /// Removes the entry at `index`: the last entry takes its place and sifts
    /// down or up. On a comparator panic, every step is undone.
    fn remove_at(&mut self, index: usize) -> Option<T> {
        let last = self.entries.len().checked_sub(1)?;
        if index > last {
            return None;
        }
        self.entries.swap(index, last);
        let removed = self.entries.pop()?;
        if index < self.entries.len() {
            let mut down = index;
            let mut up = index;
            let mut down_done = false;
            let sifted = catch_unwind(AssertUnwindSafe(|| {
                self.sift_down(&mut down);
                down_done = true;
                self.sift_up(&mut up);
            }));
            if let Err(panic) = sifted {
                if down_done {
                    self.undo_sift_up(index, up);
                }
                self.undo_sift_down(index, down);
                self.entries.push(removed);
                self.entries.swap(index, last);
                resume_unwind(panic);
            }
        }
        Some(removed.0)
    }

    /// Moves the entry at `*pos` up while it is more urgent than its parent;
    /// `*pos` follows it, so after a panic it says where the entry is.
    fn sift_up(&mut self, pos: &mut usize) {
        while *pos > 0 {
            let parent = (*pos - 1) / 2;
            if self.before(*pos, parent) {
                self.entries.swap(*pos, parent);
                *pos = parent;
            } else {
                break;
            }
        }
    }

    /// Moves the entry at `*pos` down while a child is more urgent; `*pos`
    /// follows it.
    fn sift_down(&mut self, pos: &mut usize) {
        let n = self.entries.len();
        loop {
            let left = 2 * *pos + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.before(right, left) {
                right
            } else {
                left
            };
            if self.before(child, *pos) {
                self.entries.swap(*pos, child);
                *pos = child;
            } else {
                break;
            }
        }
    }

    /// Undoes a sift-down that moved an entry from `start` to `now`: the
    /// entries on the path were each moved up one level; move them back.
    fn undo_sift_down(&mut self, start: usize, mut now: usize) {
        while now != start {
            let parent = (now - 1) / 2;
            self.entries.swap(now, parent);
            now = parent;
        }
    }

    /// Undoes a sift-up that moved an entry from `start` up to its ancestor
    /// `now`: replays the swaps along the path in reverse.
    fn undo_sift_up(&mut self, start: usize, now: usize) {
        // The path start → now, bottom up (a heap is at most 64 levels deep).
        let mut path = [0usize; usize::BITS as usize + 1];
        let mut len = 0;
        let mut at = start;
        path[0] = at;
        len += 1;
        while at != now && at > 0 {
            at = (at - 1) / 2;
            path[len] = at;
            len += 1;
        }
        for k in (0..len - 1).rev() {
            self.entries.swap(path[k], path[k + 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_priorities_leave_in_arrival_order() {
        let mut heap = PriorityHeap::new(Arc::new(|a: &(u8, u32), b: &(u8, u32)| a.0.cmp(&b.0)), 8);
        for (i, p) in [1u8, 3, 1, 3, 2, 1].iter().enumerate() {
            heap.push((*p, i as u32));
        }
        let order: Vec<_> = std::iter::from_fn(|| heap.pop()).collect();
        assert_eq!(order, vec![(3, 1), (3, 3), (2, 4), (1, 0), (1, 2), (1, 5)]);
    }

    #[test]
    fn least_urgent_is_lowest_priority_newest() {
        let mut heap = PriorityHeap::new(Arc::new(|a: &(u8, u32), b: &(u8, u32)| a.0.cmp(&b.0)), 8);
        for (i, p) in [5u8, 1, 4, 1, 3].iter().enumerate() {
            heap.push((*p, i as u32));
        }
        assert_eq!(heap.pop_least_urgent(), Some((1, 3)));
        assert_eq!(heap.pop_least_urgent(), Some((1, 1)));
        let order: Vec<_> = std::iter::from_fn(|| heap.pop()).collect();
        assert_eq!(order, vec![(5, 0), (4, 2), (3, 4)]);
    }
}

#[cfg(test)]
mod panic_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

    /// A heap whose comparator panics on its n-th call (0 = never).
    fn flaky_heap(countdown: Arc<AtomicUsize>) -> PriorityHeap<u32> {
        PriorityHeap::new(
            Arc::new(move |a: &u32, b: &u32| {
                if countdown.fetch_sub(1, AtomicOrdering::SeqCst) == 1 {
                    panic!("comparator failed");
                }
                a.cmp(b)
            }),
            64,
        )
    }

    /// Every panic point of push, pop and eviction on heaps of many shapes
    /// leaves exactly the entries (and their order) from before the call.
    #[test]
    fn every_panic_point_rolls_back_exactly() {
        // Miri runs this ~1000x slower: a smaller sweep still hits every
        // kind of panic point (up and down sifts, eviction) on a few shapes.
        let (sizes, nths) = if cfg!(miri) { (9, 8) } else { (40u32, 30usize) };
        for size in 1..sizes {
            for nth in 1..nths {
                for op in 0..3 {
                    let countdown = Arc::new(AtomicUsize::new(0));
                    let mut heap = flaky_heap(countdown.clone());
                    for i in 0..size {
                        heap.push((i * 7919) % 101);
                    }
                    let before: Vec<(u32, u64)> = heap.entries.clone();
                    countdown.store(nth, AtomicOrdering::SeqCst);
                    let result = catch_unwind(AssertUnwindSafe(|| match op {
                        0 => heap.push(50),
                        1 => drop(heap.pop()),
                        _ => drop(heap.pop_least_urgent()),
                    }));
                    countdown.store(usize::MAX, AtomicOrdering::SeqCst);
                    if result.is_err() {
                        assert_eq!(heap.entries, before, "size {size}, op {op}, panic at {nth}");
                    }
                    let mut out = Vec::new();
                    while let Some(x) = heap.pop() {
                        out.push(x);
                    }
                    assert!(
                        out.windows(2).all(|w| w[0] >= w[1]),
                        "size {size}: order broken"
                    );
                }
            }
        }
    }
}
