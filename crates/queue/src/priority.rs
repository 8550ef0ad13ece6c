//! Priority storage: a binary max-heap ordered by a comparator, with an arrival
//! sequence number as tie-breaker so equal priorities leave in FIFO order
//! (`std::collections::BinaryHeap` is not stable, and cannot hold a closure).

use std::cmp::Ordering;
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

    pub(crate) fn push(&mut self, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push((item, seq));
        self.sift_up(self.entries.len() - 1);
    }

    /// The most urgent item (earliest arrival among equals).
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.remove_at(0)
    }

    /// The item that would be served last (lowest priority, newest among
    /// equals): what `DropOldest` evicts from a priority queue. Only leaves
    /// can be last, so the scan covers the second half of the array.
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

    fn remove_at(&mut self, index: usize) -> Option<T> {
        if index >= self.entries.len() {
            return None;
        }
        let (item, _) = self.entries.swap_remove(index);
        if index < self.entries.len() {
            self.sift_down(index);
            self.sift_up(index);
        }
        Some(item)
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.before(i, parent) {
                self.entries.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.entries.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.before(right, left) {
                right
            } else {
                left
            };
            if self.before(child, i) {
                self.entries.swap(i, child);
                i = child;
            } else {
                break;
            }
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
