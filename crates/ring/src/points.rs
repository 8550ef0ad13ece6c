//! Sorted hash points with a prefix index: the shared core of the ring, multi-probe and
//! bounded-load placements.
//!
//! A plain binary search over 50,000 points costs ~16 dependent cache misses. The prefix
//! index maps the top `b` bits of a hash (with `2^b ≥ points`) to the first point in that
//! bucket, so a successor search is one index load plus, on average, about one step.

/// Replica lists up to this long test "already chosen?" by scanning the list (no
/// allocation, fastest for the usual 2–5 replicas); longer ones use a bitmap of the
/// members, so even a list of every member costs O(points + N), not O(points × N).
pub(crate) const SHORT_LIST: usize = 16;

/// "Is this member already in the replica list?" — a scan of the list for short lists, a
/// bitmap over the members for long ones (see [`SHORT_LIST`]).
#[derive(Debug)]
pub(crate) struct Chosen {
    bitmap: Vec<bool>,
}

impl Chosen {
    /// For a list of up to `want` of `members` members.
    pub(crate) fn new(want: usize, members: usize) -> Self {
        Self {
            bitmap: if want > SHORT_LIST {
                vec![false; members]
            } else {
                Vec::new()
            },
        }
    }

    /// True when `member` was inserted; `list` holds every inserted member.
    #[inline]
    pub(crate) fn contains(&self, list: &[usize], member: usize) -> bool {
        if self.bitmap.is_empty() {
            list.contains(&member)
        } else {
            self.bitmap[member]
        }
    }

    /// Records `member` (the caller also pushes it onto its list).
    #[inline]
    pub(crate) fn insert(&mut self, member: usize) {
        if let Some(seen) = self.bitmap.get_mut(member) {
            *seen = true;
        }
    }
}

/// Points on the 64-bit circle, sorted, each owned by a member index.
#[derive(Debug, Clone, Default)]
pub(crate) struct SortedPoints {
    pub(crate) points: Vec<u64>,
    pub(crate) owners: Vec<u32>,
    /// `prefix[b]` = index of the first point whose top bits are ≥ `b`.
    prefix: Vec<u32>,
    shift: u32,
}

impl SortedPoints {
    /// Builds from `(point, owner, tie_break)` triples. Ties on the point are broken by
    /// `tie_break` (a name hash) so the order never depends on insertion order.
    pub(crate) fn build(mut raw: Vec<(u64, u32, u64)>) -> Self {
        raw.sort_unstable_by_key(|&(point, _, tie)| (point, tie));
        let points: Vec<u64> = raw.iter().map(|&(p, _, _)| p).collect();
        let owners: Vec<u32> = raw.iter().map(|&(_, o, _)| o).collect();
        let len = points.len().max(2);
        let bits = (usize::BITS - (len - 1).leading_zeros()).clamp(1, 22);
        let shift = 64 - bits;
        let buckets = 1usize << bits;
        let mut prefix = Vec::with_capacity(buckets + 1);
        let mut i = 0usize;
        for bucket in 0..buckets as u64 {
            while i < points.len() && (points[i] >> shift) < bucket {
                i += 1;
            }
            prefix.push(i as u32);
        }
        prefix.push(points.len() as u32);
        Self {
            points,
            owners,
            prefix,
            shift,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Index of the first point ≥ `hash`, wrapping to 0. Requires a non-empty set.
    #[inline]
    pub(crate) fn successor(&self, hash: u64) -> usize {
        let bucket = (hash >> self.shift) as usize;
        // `prefix` has 2^bits + 1 entries and `bucket < 2^bits`: both reads are in bounds.
        let mut i = self.prefix[bucket] as usize;
        let end = self.prefix[bucket + 1] as usize;
        while i < end && self.points[i] < hash {
            i += 1;
        }
        if i == self.points.len() { 0 } else { i }
    }

    /// Owner of the point at index `i`.
    #[inline]
    pub(crate) fn owner(&self, i: usize) -> usize {
        self.owners[i] as usize
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.points.capacity() * 8 + self.owners.capacity() * 4 + self.prefix.capacity() * 4
    }

    /// Walks clockwise from the successor of `hash`, appending distinct owners to `out`
    /// until it holds `n` or every point was visited. `seen` is scratch of member count.
    pub(crate) fn distinct_owners(
        &self,
        hash: u64,
        n: usize,
        members: usize,
        out: &mut Vec<usize>,
    ) {
        out.clear();
        if self.is_empty() || n == 0 {
            return;
        }
        let want = n.min(members);
        let mut chosen = Chosen::new(want, members);
        let start = self.successor(hash);
        let len = self.points.len();
        for step in 0..len {
            let owner = self.owner((start + step) % len);
            if !chosen.contains(out, owner) {
                chosen.insert(owner);
                out.push(owner);
                if out.len() == want {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_matches_binary_search() {
        let raw: Vec<(u64, u32, u64)> = (0..1000u64)
            .map(|i| (crate::hash::mix64(i), (i % 7) as u32, i))
            .collect();
        let sp = SortedPoints::build(raw);
        for q in 0..20_000u64 {
            let h = crate::hash::mix64(q ^ 0xdead_beef);
            let expected = sp.points.partition_point(|&p| p < h) % sp.len();
            assert_eq!(sp.successor(h), expected);
        }
        assert_eq!(
            sp.successor(u64::MAX),
            if sp.points[sp.len() - 1] == u64::MAX {
                sp.len() - 1
            } else {
                0
            }
        );
        assert_eq!(sp.successor(0), 0);
    }

    #[test]
    fn single_point_wraps() {
        let sp = SortedPoints::build(vec![(1 << 63, 0, 0)]);
        assert_eq!(sp.successor(0), 0);
        assert_eq!(sp.successor(u64::MAX), 0);
    }
}
