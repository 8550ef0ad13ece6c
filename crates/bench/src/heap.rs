//! Heap bytes in use, for the `bytes_per_entry` / `bytes_per_key` figures: glibc's
//! `mallinfo2` (`uordblks + hblkhd`: small-block bytes handed out plus mmapped blocks).
//! `None` where glibc is not the allocator, and the benchmark then says it did not measure.

/// Bytes the allocator has handed out and not yet had back, where measurable.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn in_use() -> Option<usize> {
    /// glibc's `struct mallinfo2` (glibc ≥ 2.33).
    #[repr(C)]
    struct Mallinfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }
    unsafe extern "C" {
        fn mallinfo2() -> Mallinfo2;
    }
    // SAFETY: `mallinfo2` takes no arguments, has no preconditions and returns a plain
    // struct of counters by value.
    let info = unsafe { mallinfo2() };
    let _ = (info.arena, info.ordblks, info.smblks, info.hblks);
    let _ = (info.usmblks, info.fsmblks, info.fordblks, info.keepcost);
    Some(info.uordblks + info.hblkhd)
}

/// Bytes the allocator has handed out and not yet had back, where measurable.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn in_use() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_live_allocation_shows_in_the_heap_figure() {
        let Some(before) = super::in_use() else {
            return; // not glibc: nothing to measure
        };
        let block = vec![1u8; 1 << 20];
        let after = super::in_use().unwrap();
        assert!(after >= before + (1 << 20) - 4096, "{before} -> {after}");
        drop(block);
    }
}
