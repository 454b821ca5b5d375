//! Masking keys for client frames. RFC 6455 5.3 wants each key unpredictable, "derived
//! from a strong source of entropy": they come from the OS generator (getrandom), read
//! 64 keys at a time into a per-thread pool instead of one system call per frame (that
//! call was a third of a client's CPU time when echoing small messages). A process
//! forked after keys were pooled refills before using any (pthread_atfork), so a parent
//! and its child never send the same keys.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

const POOL_BYTES: usize = 256;

/// Bumped in the child of every fork (pthread_atfork): pools filled before are stale.
static FORKS: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Random bytes handed out four at a time; `generation` is the fork count when filled.
struct Pool {
    bytes: [u8; POOL_BYTES],
    used: usize,
    generation: u64,
}

impl Pool {
    const fn empty() -> Pool {
        Pool {
            bytes: [0; POOL_BYTES],
            used: POOL_BYTES,
            generation: 0,
        }
    }

    /// The next key, refilling with `fill` when the pool is used up or was filled in
    /// another generation (before a fork). None when `fill` fails.
    fn take(
        &mut self,
        generation: u64,
        fill: impl FnOnce(&mut [u8]) -> std::io::Result<()>,
    ) -> Option<[u8; 4]> {
        if self.used + 4 > POOL_BYTES || self.generation != generation {
            if fill(&mut self.bytes).is_err() {
                self.used = POOL_BYTES;
                return None;
            }
            self.used = 0;
            self.generation = generation;
        }
        let mut k = [0u8; 4];
        k.copy_from_slice(&self.bytes[self.used..self.used + 4]);
        // a key is used once: do not leave it behind
        self.bytes[self.used..self.used + 4].fill(0);
        self.used += 4;
        Some(k)
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool::empty()) };
}

/// A fresh masking key.
pub fn mask_key() -> [u8; 4] {
    ATFORK.call_once(|| {
        // the handler only increments an atomic
        crate::io::sys::process::on_fork_in_child(after_fork_in_child);
    });
    let generation = FORKS.load(Ordering::Relaxed);
    let key = POOL
        .try_with(|p| p.borrow_mut().take(generation, crate::io::sys::fill_random))
        .ok()
        .flatten();
    match key {
        Some(k) => k,
        None => {
            // pool unavailable (thread exiting) or getrandom failing: one direct
            // read, and as a last resort the clock (the original's behaviour)
            let mut k = [0u8; 4];
            if crate::io::sys::fill_random(&mut k).is_err() {
                k = (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .subsec_nanos())
                .to_ne_bytes();
            }
            k
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fill_per_64_keys_and_bytes_come_from_the_fill() {
        let mut pool = Pool::empty();
        let mut fills = 0u8;
        let mut keys = Vec::new();
        for _ in 0..130 {
            let k = pool
                .take(0, |b| {
                    fills += 1;
                    for (i, x) in b.iter_mut().enumerate() {
                        *x = (i as u8) ^ (fills << 4);
                    }
                    Ok(())
                })
                .unwrap();
            keys.push(k);
        }
        assert_eq!(fills, 3, "130 keys need 3 fills of 64");
        assert_eq!(keys[0], [0x10, 0x11, 0x12, 0x13]);
        assert_eq!(keys[63], [0x10 ^ 252, 0x10 ^ 253, 0x10 ^ 254, 0x10 ^ 255]);
        assert_eq!(keys[64], [0x20, 0x21, 0x22, 0x23]);
        assert!(
            pool.bytes[..pool.used].iter().all(|&b| b == 0),
            "used keys are wiped"
        );
    }

    #[test]
    fn a_new_generation_refills_at_once() {
        let mut pool = Pool::empty();
        let mut fills = 0;
        let mut fill = |b: &mut [u8]| {
            fills += 1;
            b.fill(fills);
            Ok(())
        };
        assert_eq!(pool.take(0, &mut fill), Some([1; 4]));
        assert_eq!(pool.take(0, &mut fill), Some([1; 4]));
        assert_eq!(
            pool.take(1, &mut fill),
            Some([2; 4]),
            "after a fork: new bytes"
        );
        assert_eq!(fills, 2);
    }

    #[test]
    fn a_failing_fill_gives_none_and_retries_next_time() {
        let mut pool = Pool::empty();
        assert_eq!(
            pool.take(0, |_| Err(std::io::Error::other("no entropy"))),
            None
        );
        assert_eq!(
            pool.take(0, |b| {
                b.fill(7);
                Ok(())
            }),
            Some([7; 4])
        );
    }

    #[test]
    fn keys_differ() {
        let keys: Vec<[u8; 4]> = (0..200).map(|_| mask_key()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        // 200 random 32-bit keys collide with probability ~5e-6
        assert_eq!(sorted.len(), keys.len(), "repeated mask keys: {keys:?}");
    }

    /// Regression: with pooled keys, a forked child must not replay the parent's pool.
    #[test]
    fn parent_and_forked_child_use_different_keys() {
        let _ = mask_key(); // fill this thread's pool (63 keys left in it)
                            // the child only draws keys (its thread-local pool and getrandom)
        let child =
            crate::io::sys::process::in_forked_child(|| (0..4).flat_map(|_| mask_key()).collect())
                .expect("the forked child failed");
        assert_eq!(child.len(), 16, "child wrote {} bytes", child.len());
        let parent: Vec<u8> = (0..4).flat_map(|_| mask_key()).collect();
        assert_ne!(parent, child, "the child replayed the parent's pooled keys");
    }
}
