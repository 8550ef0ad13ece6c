//! Model-based property tests: random operation sequences applied to the
//! queue and to a simple reference (`VecDeque` or `BinaryHeap`), compared
//! step by step, under every backpressure policy.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use keel_queue::{Backpressure, PopError, PushError, Queue, Receiver, Sender};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Push(u8),
    Pop,
    Batch(usize),
    Reserve(Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(|v| Op::Push(v % 8)),
        3 => Just(Op::Pop),
        1 => (0usize..5).prop_map(Op::Batch),
        1 => proptest::option::of(any::<u8>()).prop_map(|v| Op::Reserve(v.map(|v| v % 8))),
    ]
}

fn policy() -> impl Strategy<Value = Backpressure> {
    prop_oneof![
        Just(Backpressure::Block),
        Just(Backpressure::Reject),
        Just(Backpressure::DropIncoming),
        Just(Backpressure::DropOldest),
    ]
}

/// The reference: a plain container with the same policy logic.
trait Model {
    fn len(&self) -> usize;
    /// Slots in use, including the FIFO ring's tombstones.
    fn occupied(&self) -> usize {
        self.len()
    }
    /// A permit dropped unused.
    fn release(&mut self) {}
    fn insert(&mut self, item: (u8, u64));
    fn take(&mut self) -> Option<(u8, u64)>;
    fn evict(&mut self) -> Option<(u8, u64)>;
}

/// FIFO with the ring's tombstones: a permit dropped unused keeps its place
/// (`None`) until it reaches the head, where it is freed.
struct FifoModel(VecDeque<Option<(u8, u64)>>);
impl FifoModel {
    fn normalize(&mut self) {
        while let Some(None) = self.0.front() {
            self.0.pop_front();
        }
    }
}
impl Model for FifoModel {
    fn len(&self) -> usize {
        self.0.iter().flatten().count()
    }
    fn occupied(&self) -> usize {
        self.0.len()
    }
    fn release(&mut self) {
        self.0.push_back(None);
        self.normalize();
    }
    fn insert(&mut self, item: (u8, u64)) {
        self.0.push_back(Some(item));
    }
    fn take(&mut self) -> Option<(u8, u64)> {
        self.normalize();
        let item = self.0.pop_front().flatten();
        self.normalize();
        item
    }
    fn evict(&mut self) -> Option<(u8, u64)> {
        self.take()
    }
}

struct LifoModel(VecDeque<(u8, u64)>);
impl Model for LifoModel {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn insert(&mut self, item: (u8, u64)) {
        self.0.push_back(item);
    }
    fn take(&mut self) -> Option<(u8, u64)> {
        self.0.pop_back()
    }
    fn evict(&mut self) -> Option<(u8, u64)> {
        self.0.pop_front()
    }
}

/// Max-heap on (priority, earlier arrival first).
struct PriorityModel(BinaryHeap<(u8, Reverse<u64>)>);
impl Model for PriorityModel {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn insert(&mut self, (p, seq): (u8, u64)) {
        self.0.push((p, Reverse(seq)));
    }
    fn take(&mut self) -> Option<(u8, u64)> {
        self.0.pop().map(|(p, Reverse(seq))| (p, seq))
    }
    fn evict(&mut self) -> Option<(u8, u64)> {
        // The least urgent: lowest priority, newest among equals.
        let mut all = std::mem::take(&mut self.0).into_vec();
        let (index, _) = all.iter().enumerate().min_by_key(|(_, entry)| **entry)?;
        let (p, Reverse(seq)) = all.swap_remove(index);
        self.0 = all.into();
        Some((p, seq))
    }
}

fn check(
    model: &mut dyn Model,
    tx: &Sender<(u8, u64)>,
    rx: &Receiver<(u8, u64)>,
    cap: usize,
    policy: Backpressure,
    ops: Vec<Op>,
) {
    let (mut dropped, mut rejected, mut pushed, mut popped) = (0u64, 0u64, 0u64, 0u64);
    for (seq, op) in ops.into_iter().enumerate() {
        let seq = seq as u64;
        match op {
            Op::Push(p) => {
                let item = (p, seq);
                let full = model.occupied() >= cap;
                let outcome = tx.try_push(item);
                match (full, policy) {
                    (false, _) => {
                        assert_eq!(outcome, Ok(()));
                        model.insert(item);
                        pushed += 1;
                    }
                    (true, Backpressure::Block | Backpressure::Reject) => {
                        assert_eq!(outcome, Err(PushError::Full(item)));
                        rejected += 1;
                    }
                    (true, Backpressure::DropIncoming) => {
                        assert_eq!(outcome, Ok(()));
                        dropped += 1;
                    }
                    (true, Backpressure::DropOldest) => {
                        assert_eq!(outcome, Ok(()));
                        model.evict();
                        model.insert(item);
                        dropped += 1;
                        pushed += 1;
                    }
                }
            }
            Op::Pop => {
                let expected = model.take();
                match expected {
                    Some(item) => {
                        assert_eq!(rx.try_pop(), Ok(item));
                        popped += 1;
                    }
                    None => assert_eq!(rx.try_pop(), Err(PopError::Empty)),
                }
            }
            Op::Batch(n) => {
                let expected: Vec<_> =
                    std::iter::from_fn(|| if model.len() > 0 { model.take() } else { None })
                        .take(n)
                        .collect();
                let got = rx.try_pop_batch(n);
                if n == 0 {
                    assert_eq!(got, Ok(vec![]));
                } else if expected.is_empty() {
                    assert_eq!(got, Err(PopError::Empty));
                } else {
                    popped += expected.len() as u64;
                    assert_eq!(got, Ok(expected));
                }
            }
            Op::Reserve(value) => {
                let full = model.occupied() >= cap;
                let permit = tx.try_reserve();
                match (full, policy) {
                    (false, _) => {
                        let permit = permit.unwrap();
                        if let Some(p) = value {
                            permit.send((p, seq));
                            model.insert((p, seq));
                            pushed += 1;
                        } else {
                            drop(permit);
                            model.release();
                        }
                    }
                    (true, Backpressure::DropOldest) => {
                        let permit = permit.unwrap();
                        model.evict();
                        dropped += 1;
                        if let Some(p) = value {
                            permit.send((p, seq));
                            model.insert((p, seq));
                            pushed += 1;
                        } else {
                            drop(permit);
                            model.release();
                        }
                    }
                    (true, _) => {
                        assert!(permit.is_err());
                        rejected += 1;
                    }
                }
            }
        }
        assert_eq!(rx.len(), model.len());
    }
    let stats = tx.stats();
    assert_eq!(
        (stats.pushed, stats.popped, stats.dropped, stats.rejected),
        (pushed, popped, dropped, rejected)
    );
    assert_eq!(stats.len, model.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fifo_matches_vecdeque(cap in 1usize..6, policy in policy(), ops in proptest::collection::vec(op(), 0..120)) {
        let (tx, rx) = Queue::builder().capacity(cap).backpressure(policy).build().unwrap();
        check(&mut FifoModel(VecDeque::new()), &tx, &rx, cap, policy, ops);
    }

    #[test]
    fn lifo_matches_stack(cap in 1usize..6, policy in policy(), ops in proptest::collection::vec(op(), 0..120)) {
        let (tx, rx) = Queue::builder().capacity(cap).lifo().backpressure(policy).build().unwrap();
        check(&mut LifoModel(VecDeque::new()), &tx, &rx, cap, policy, ops);
    }

    #[test]
    fn priority_matches_binary_heap(cap in 1usize..6, policy in policy(), ops in proptest::collection::vec(op(), 0..120)) {
        let (tx, rx) = Queue::builder().capacity(cap)
            .backpressure(policy)
            .priority_by_key(|item: &(u8, u64)| item.0)
            .unwrap();
        check(&mut PriorityModel(BinaryHeap::new()), &tx, &rx, cap, policy, ops);
    }
}
