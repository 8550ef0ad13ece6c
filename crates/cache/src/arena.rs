//! The index-based arena that holds every entry, and the doubly linked
//! recency list threaded through it.
//!
//! # Why an arena and not `Box`ed nodes
//!
//! The textbook LRU is "a hash map from key to list node, plus a doubly linked
//! list ordered by recency". In Rust a pointer-based list needs `unsafe` (or
//! `Rc<RefCell<..>>`, which is slow and leaks on cycles). Instead every node
//! lives in one `Vec<Node>` and links are `u32` indices into it:
//!
//! - unlinking or moving a node is a handful of index writes, O(1);
//! - freed slots go on a free list and are reused, so the `Vec` never grows
//!   past the peak number of live entries;
//! - `u32` links keep a node small (the hash table stores a 4-byte index, the
//!   key lives once, in the node).
//!
//! The same node also carries the links of the timer wheel
//! ([`crate::timer_wheel`]), so an entry with a TTL costs no extra allocation.

/// "No node": the end of a list, or an empty head.
pub(crate) const NIL: u32 = u32::MAX;
/// Deadline of an entry without a time to live.
pub(crate) const NEVER: u64 = u64::MAX;
/// `timer_slot` of a node that is not in the timer wheel.
pub(crate) const NO_SLOT: u16 = u16::MAX;

/// One slot of the arena: a live entry, or a free slot (`entry == None`, and
/// `next` links the free list).
#[derive(Debug)]
pub(crate) struct Node<K, V> {
    pub(crate) entry: Option<(K, V)>,
    /// Towards the head (more recently used / inserted).
    pub(crate) prev: u32,
    /// Towards the tail (less recently used / older).
    pub(crate) next: u32,
    pub(crate) timer_prev: u32,
    pub(crate) timer_next: u32,
    /// Expiry tick, or [`NEVER`].
    pub(crate) deadline: u64,
    /// The key's hash, set by the cache when it links the entry: eviction,
    /// removal, table growth and W-TinyLFU's duel read it instead of
    /// hashing the key again.
    pub(crate) hash: u64,
    pub(crate) weight: u32,
    /// `level * 64 + slot` in the timer wheel, or [`NO_SLOT`].
    pub(crate) timer_slot: u16,
    /// SIEVE's "visited" bit (0/1), or S3-FIFO's access counter (0..=3);
    /// unused by LRU.
    pub(crate) freq: u8,
    /// S3-FIFO: the node is on the small queue (`small_head`..`small_tail`)
    /// rather than the main list (`head`..`tail`).
    pub(crate) small: bool,
}

/// Nodes plus the recency list (`head` = most recent, `tail` = least recent)
/// and, for S3-FIFO only, a second list: the small queue.
#[derive(Debug)]
pub(crate) struct Arena<K, V> {
    pub(crate) nodes: Vec<Node<K, V>>,
    free: u32,
    pub(crate) head: u32,
    pub(crate) tail: u32,
    /// S3-FIFO's small queue (newest at the head); empty for LRU and SIEVE.
    pub(crate) small_head: u32,
    pub(crate) small_tail: u32,
    len: usize,
    /// Upper bound on live entries when known (count capacity), so growth
    /// stops at the capacity instead of doubling past it.
    max_nodes: Option<usize>,
}

impl<K, V> Arena<K, V> {
    pub(crate) fn new(max_nodes: Option<usize>) -> Self {
        Self {
            nodes: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            small_head: NIL,
            small_tail: NIL,
            len: 0,
            max_nodes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Memory held by the arena (capacity, not length), for size reports.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.nodes.capacity() * core::mem::size_of::<Node<K, V>>()
    }

    #[inline]
    pub(crate) fn key(&self, idx: u32) -> &K {
        match &self.nodes[idx as usize].entry {
            Some((k, _)) => k,
            // Only live indices are ever stored in the table and lists.
            None => unreachable!("arena index {idx} is free"),
        }
    }

    #[inline]
    pub(crate) fn entry(&self, idx: u32) -> Option<&(K, V)> {
        self.nodes[idx as usize].entry.as_ref()
    }

    #[inline]
    pub(crate) fn node(&self, idx: u32) -> &Node<K, V> {
        &self.nodes[idx as usize]
    }

    #[inline]
    pub(crate) fn node_mut(&mut self, idx: u32) -> &mut Node<K, V> {
        &mut self.nodes[idx as usize]
    }

    /// Stores an entry with the key's `hash` in a free slot (or a new one)
    /// and returns its index. The node is not linked into any list yet.
    #[inline]
    pub(crate) fn alloc(&mut self, key: K, value: V, weight: u32, deadline: u64, hash: u64) -> u32 {
        self.len += 1;
        if self.free != NIL {
            // Field by field into the free slot: building a whole `Node`
            // and moving it in cost ≈ 10 more instructions per insert
            // (callgrind), through a 64-byte copy on the stack.
            let idx = self.free;
            let node = &mut self.nodes[idx as usize];
            self.free = node.next;
            node.entry = Some((key, value));
            node.prev = NIL;
            node.next = NIL;
            node.timer_prev = NIL;
            node.timer_next = NIL;
            node.deadline = deadline;
            node.hash = hash;
            node.weight = weight;
            node.timer_slot = NO_SLOT;
            node.freq = 0;
            node.small = false;
            return idx;
        }
        self.push_new(Node {
            entry: Some((key, value)),
            prev: NIL,
            next: NIL,
            timer_prev: NIL,
            timer_next: NIL,
            deadline,
            hash,
            weight,
            timer_slot: NO_SLOT,
            freq: 0,
            small: false,
        })
    }

    /// Appends a node (no free slot), growing at most to `max_nodes`.
    #[cold]
    fn push_new(&mut self, node: Node<K, V>) -> u32 {
        if self.nodes.len() == self.nodes.capacity() {
            let grow = self.nodes.len().max(16);
            let grow = match self.max_nodes {
                Some(max) => grow.min(max.saturating_sub(self.nodes.len()).max(1)),
                None => grow,
            };
            self.nodes.reserve_exact(grow);
        }
        let idx = self.nodes.len() as u32;
        self.nodes.push(node);
        idx
    }

    /// Returns the slot to the free list and hands back its entry. The node
    /// must already be unlinked from every list.
    pub(crate) fn free(&mut self, idx: u32) -> Option<(K, V)> {
        let node = &mut self.nodes[idx as usize];
        let entry = node.entry.take();
        node.next = self.free;
        node.prev = NIL;
        self.free = idx;
        self.len -= 1;
        entry
    }

    /// Links `idx` in at the head (most recent).
    pub(crate) fn push_front(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let node = &mut self.nodes[idx as usize];
            node.prev = NIL;
            node.next = old_head;
        }
        if old_head != NIL {
            self.nodes[old_head as usize].prev = idx;
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    /// Links `idx` in at the head of the small queue (S3-FIFO).
    pub(crate) fn push_front_small(&mut self, idx: u32) {
        let old_head = self.small_head;
        {
            let node = &mut self.nodes[idx as usize];
            node.prev = NIL;
            node.next = old_head;
            node.small = true;
        }
        if old_head != NIL {
            self.nodes[old_head as usize].prev = idx;
        } else {
            self.small_tail = idx;
        }
        self.small_head = idx;
    }

    /// Unlinks `idx` from whichever list it is on (main or small).
    pub(crate) fn unlink(&mut self, idx: u32) {
        let (prev, next, small) = {
            let node = &mut self.nodes[idx as usize];
            let small = node.small;
            node.small = false;
            (node.prev, node.next, small)
        };
        let (head, tail) = if small {
            (&mut self.small_head, &mut self.small_tail)
        } else {
            (&mut self.head, &mut self.tail)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            *head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else {
            *tail = prev;
        }
    }

    /// Makes `idx` the most recent entry.
    #[inline]
    pub(crate) fn move_to_front(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    /// Live indices: the small queue head to tail (empty unless S3-FIFO),
    /// then the main list head (most recent) to tail.
    pub(crate) fn indices(&self) -> ListIter<'_, K, V> {
        if self.small_head != NIL {
            ListIter {
                arena: self,
                cur: self.small_head,
                then: self.head,
            }
        } else {
            ListIter {
                arena: self,
                cur: self.head,
                then: NIL,
            }
        }
    }
}

/// Walks the small queue, then the main list, each from head to tail.
#[derive(Debug)]
pub(crate) struct ListIter<'a, K, V> {
    arena: &'a Arena<K, V>,
    cur: u32,
    /// Where to continue when `cur`'s list ends.
    then: u32,
}

impl<K, V> Iterator for ListIter<'_, K, V> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.cur == NIL {
            self.cur = core::mem::replace(&mut self.then, NIL);
            if self.cur == NIL {
                return None;
            }
        }
        let idx = self.cur;
        self.cur = self.arena.nodes[idx as usize].next;
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_unlink_and_reuse_slots() {
        let mut arena = Arena::new(None);
        let a = arena.alloc("a", 1, 1, NEVER, 0);
        arena.push_front(a);
        let b = arena.alloc("b", 2, 1, NEVER, 0);
        arena.push_front(b);
        let c = arena.alloc("c", 3, 1, NEVER, 0);
        arena.push_front(c);
        assert_eq!(arena.indices().collect::<Vec<_>>(), vec![c, b, a]);
        arena.move_to_front(a);
        assert_eq!(arena.indices().collect::<Vec<_>>(), vec![a, c, b]);
        arena.unlink(c);
        assert_eq!(arena.free(c), Some(("c", 3)));
        assert_eq!(arena.indices().collect::<Vec<_>>(), vec![a, b]);
        // The freed slot is reused instead of growing the vector, with
        // every field reset (a reused slot is written field by field).
        arena.node_mut(b).freq = 1;
        arena.unlink(b);
        arena.push_front_small(b);
        arena.unlink(b);
        assert_eq!(arena.free(b), Some(("b", 2)));
        let b2 = arena.alloc("b2", 5, 7, 99, 0xABCD);
        assert_eq!(b2, b);
        let node = arena.node(b2);
        assert_eq!(
            (node.prev, node.next, node.timer_prev, node.timer_next),
            (NIL, NIL, NIL, NIL)
        );
        assert_eq!((node.deadline, node.hash, node.weight), (99, 0xABCD, 7));
        assert_eq!(
            (node.timer_slot, node.freq, node.small),
            (NO_SLOT, 0, false)
        );
        arena.push_front(b2);
        let d = arena.alloc("d", 4, 1, NEVER, 0);
        assert_eq!(d, c);
        assert_eq!(arena.nodes.len(), 3);
        assert_eq!(arena.len(), 3);
        assert_eq!(arena.indices().collect::<Vec<_>>(), vec![b2, a]);
    }

    #[test]
    fn growth_stops_at_max_nodes() {
        let mut arena = Arena::new(Some(20));
        for i in 0..20u32 {
            let idx = arena.alloc(i, i, 1, NEVER, 0);
            arena.push_front(idx);
        }
        assert_eq!(arena.nodes.capacity(), 20);
    }
}
