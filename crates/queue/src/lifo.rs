//! LIFO storage: a stack (newest first) kept in a `VecDeque` so that the
//! *oldest* item, needed by `Backpressure::DropOldest`, is at the other end.

use std::collections::VecDeque;

/// A bounded-by-the-caller stack. All operations are O(1).
#[derive(Debug)]
pub(crate) struct Lifo<T> {
    items: VecDeque<T>,
}

impl<T> Lifo<T> {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(cap.min(4096)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// The newest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_back()
    }

    /// The oldest item (bottom of the stack): what `DropOldest` evicts.
    pub(crate) fn pop_oldest(&mut self) -> Option<T> {
        self.items.pop_front()
    }
}
