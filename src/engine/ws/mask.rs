//! Payload masking (RFC 6455 section 5.3).

/// XORs `data` in place with the 4-byte `key`, starting at key position `phase % 4`
/// (phase = number of payload bytes of this frame already processed).
///
/// Masking is an involution, so the same call masks and unmasks. The bulk is done a
/// `u64` at a time with the key repeated twice; the unaligned head and the short tail
/// go byte by byte.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], phase: usize) {
    // Align the word loop to 8 bytes; `align_offset` may legally report "impossible"
    // (usize::MAX), which the `min` turns into "all bytes go through the byte loop".
    let head = data.as_ptr().align_offset(8).min(data.len());
    let (head_bytes, rest) = data.split_at_mut(head);
    mask_bytes(head_bytes, key, phase);

    let k = rotate_key(key, (phase & 3) + head);
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = rest.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // Whole words advance the key by multiples of 4, so the tail starts at phase 0 of `k`.
    mask_bytes(chunks.into_remainder(), k, 0);
}

/// The key as seen from payload position `phase`.
fn rotate_key(key: [u8; 4], phase: usize) -> [u8; 4] {
    let p = phase & 3;
    [key[p], key[(p + 1) & 3], key[(p + 2) & 3], key[(p + 3) & 3]]
}

fn mask_bytes(data: &mut [u8], key: [u8; 4], phase: usize) {
    let phase = phase & 3;
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(phase + i) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(data: &mut [u8], key: [u8; 4], phase: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(phase + i) % 4];
        }
    }

    #[test]
    fn matches_naive_all_phases_lengths_and_offsets() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let base: Vec<u8> = (0..64u8)
            .map(|i| i.wrapping_mul(31).wrapping_add(7))
            .collect();
        for phase in 0..8 {
            for len in 0..40 {
                // Vary the start offset so the aligned head takes every size.
                for off in 0..8 {
                    let mut a = base.clone();
                    let mut b = base.clone();
                    apply_mask(&mut a[off..off + len], key, phase);
                    naive(&mut b[off..off + len], key, phase);
                    assert_eq!(a, b, "phase {phase} len {len} off {off}");
                    apply_mask(&mut a[off..off + len], key, phase);
                    assert_eq!(a, base, "round trip phase {phase} len {len} off {off}");
                }
            }
        }
    }

    #[test]
    fn rfc_example() {
        // RFC 6455 5.7: masked "Hello".
        let mut data = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&data, b"Hello");
    }

    #[test]
    fn huge_phase_does_not_overflow() {
        let mut data = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        let mut expect = data;
        apply_mask(&mut data, [9, 8, 7, 6], usize::MAX);
        naive(&mut expect, [9, 8, 7, 6], 3);
        assert_eq!(data, expect);
    }

    proptest! {
        #[test]
        fn mask_twice_is_identity_for_any_split(
            data in prop::collection::vec(any::<u8>(), 0..300),
            key in any::<[u8; 4]>(),
            phase in 0usize..16,
            split in any::<prop::sample::Index>(),
            off in 0usize..8,
        ) {
            let mut buf = vec![0u8; off];
            buf.extend_from_slice(&data);
            let body = &mut buf[off..];
            // Mask in one go, unmask in two pieces with the phase carried over.
            apply_mask(body, key, phase);
            let cut = if body.is_empty() { 0 } else { split.index(body.len() + 1) };
            let (a, b) = body.split_at_mut(cut);
            apply_mask(a, key, phase);
            apply_mask(b, key, phase + cut);
            prop_assert_eq!(&buf[off..], &data[..]);
        }
    }
}
