//! Payload masking (RFC 6455 section 5.3).

/// XORs `data` in place with the 4-byte `key`, starting at key position `phase % 4`
/// (phase = number of payload bytes of this frame already processed).
///
/// Masking is an involution, so the same call masks and unmasks. The work is done 16
/// bytes at a time with the (rotated) key repeated four times, then 8, 4 and single
/// bytes for the tail; unaligned loads are cheap on every target we build for. Byte
/// order is fixed (little-endian words), so the result is the same everywhere.
#[inline(always)]
pub fn apply_mask(data: &mut [u8], key: [u8; 4], phase: usize) {
    // Byte i of the rotated key is key[(phase + i) % 4].
    let k32 = u32::from_le_bytes(key).rotate_right(8 * (phase as u32 & 3));
    let k64 = u64::from(k32) | (u64::from(k32) << 32);
    let k128 = u128::from(k64) | (u128::from(k64) << 64);
    let mut chunks = data.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let v = u128::from_le_bytes(chunk.try_into().unwrap_or([0; 16])) ^ k128;
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    // 16, 8 and 4 are multiples of 4, so each tail piece starts at key position 0.
    let mut tail = chunks.into_remainder();
    if tail.len() >= 8 {
        let (head, rest) = tail.split_at_mut(8);
        let v = u64::from_le_bytes(head.try_into().unwrap_or([0; 8])) ^ k64;
        head.copy_from_slice(&v.to_le_bytes());
        tail = rest;
    }
    if tail.len() >= 4 {
        let (head, rest) = tail.split_at_mut(4);
        let v = u32::from_le_bytes(head.try_into().unwrap_or([0; 4])) ^ k32;
        head.copy_from_slice(&v.to_le_bytes());
        tail = rest;
    }
    for (i, b) in tail.iter_mut().enumerate() {
        *b ^= (k32 >> (8 * i)) as u8;
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
