//! Primitive mutation of a request body: boundary integers written where a field plausibly
//! sits (array lengths, string lengths, varints), array and byte lengths claiming far more
//! elements than the frame holds, bit flips, byte insertion and deletion.

use super::values::{i16_edge, i32_edge, i64_edge};
use crate::rng::Rng;
use crate::wire;

/// Mutates the bytes after the header (`body_start`) and fixes the size prefix.
pub fn mutate(frame: &mut Vec<u8>, body_start: usize, rng: &mut Rng) -> String {
    let body_start = body_start.min(frame.len());
    let flexible = wire::split(frame)
        .is_some_and(|s| s.api.request_header_version(s.header.request_api_version) >= 2);
    let what = if frame.len() == body_start {
        frame.extend(rng.bytes_between(1, 16));
        "random body appended to an empty body".to_string()
    } else {
        one(frame, body_start, flexible, rng)
    };
    wire::fix_size(frame);
    what
}

fn one(frame: &mut Vec<u8>, start: usize, flexible: bool, rng: &mut Rng) -> String {
    let len = frame.len() - start;
    match rng.below(9) {
        8 => claimed_length(frame, start, flexible, rng),
        0 | 1 => {
            // Plausible int32 positions: array lengths and counts are small big-endian ints.
            let at = plausible(frame, start, 4, rng).unwrap_or(start + rng.below(len));
            let v = i32_edge(rng);
            write(frame, at, &v.to_be_bytes());
            format!("int32 {v} at body+{}", at - start)
        }
        2 => {
            let at = plausible(frame, start, 2, rng).unwrap_or(start + rng.below(len));
            let v = i16_edge(rng);
            write(frame, at, &v.to_be_bytes());
            format!("int16 {v} at body+{}", at - start)
        }
        3 => {
            let at = start + rng.below(len);
            let v = i64_edge(rng);
            write(frame, at, &v.to_be_bytes());
            format!("int64 {v} at body+{}", at - start)
        }
        4 => {
            // An unsigned varint (compact lengths) claiming a huge or zero count.
            let at = start + rng.below(len);
            let v: &[u8] = rng
                .pick(&[
                    &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
                    &[0x00],
                    &[0x80, 0x80, 0x80, 0x80, 0x08],
                    &[0xff; 6],
                ])
                .copied()
                .unwrap_or(&[0]);
            frame.splice(at..(at + 1).min(frame.len()), v.iter().copied());
            format!("varint {v:02x?} at body+{}", at - start)
        }
        5 => {
            let flips = rng.below(4) + 1;
            for _ in 0..flips {
                let at = start + rng.below(len);
                frame[at] ^= 1 << rng.below(8);
            }
            format!("{flips} bit flips")
        }
        6 => {
            let at = start + rng.below(len + 1);
            let n = rng.below(8) + 1;
            let bytes = rng.bytes(n);
            frame.splice(at..at, bytes);
            format!("{n} bytes inserted at body+{}", at - start)
        }
        _ => {
            let at = start + rng.below(len);
            let n = (rng.below(8) + 1).min(frame.len() - at);
            frame.drain(at..at + n);
            format!("{n} bytes deleted at body+{}", at - start)
        }
    }
}

/// Claims far more array elements (or bytes) than the frame holds where a length plausibly
/// sits: an int32 count in a classic body, an unsigned-varint compact length (N+1) in a
/// flexible one. A broker that reserves by the claim before reading dies of it.
fn claimed_length(frame: &mut Vec<u8>, start: usize, flexible: bool, rng: &mut Rng) -> String {
    const CLAIMS: [u32; 4] = [i32::MAX as u32, i32::MAX as u32 - 1, 1 << 24, 65_536];
    let claim = rng.pick(&CLAIMS).copied().unwrap_or(i32::MAX as u32);
    if flexible {
        let candidates: Vec<usize> = (start..frame.len())
            .filter(|&i| (2..=65).contains(&frame[i]))
            .collect();
        let Some(&at) = rng.pick(&candidates) else {
            return format!("no compact length to claim {claim} with");
        };
        let mut varint = Vec::new();
        let mut v = claim;
        while v >= 0x80 {
            varint.push((v as u8) | 0x80);
            v >>= 7;
        }
        varint.push(v as u8);
        frame.splice(at..at + 1, varint);
        format!(
            "compact length claiming {} at body+{}",
            claim.wrapping_sub(1),
            at - start
        )
    } else {
        let Some(at) = plausible(frame, start, 4, rng) else {
            return format!("no int32 count to claim {claim} with");
        };
        write(frame, at, &claim.to_be_bytes());
        format!(
            "int32 count claiming {} at body+{}",
            claim as i32,
            at - start
        )
    }
}

/// A position where a small non-negative big-endian integer of `width` bytes sits.
fn plausible(frame: &[u8], start: usize, width: usize, rng: &mut Rng) -> Option<usize> {
    let candidates: Vec<usize> = (start..frame.len().saturating_sub(width - 1))
        .filter(|&i| {
            let f = &frame[i..i + width];
            f[..width - 1].iter().all(|&b| b == 0) && (1..=64).contains(&f[width - 1])
        })
        .collect();
    rng.pick(&candidates).copied()
}

fn write(frame: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let end = (at + bytes.len()).min(frame.len());
    frame.splice(at..end, bytes.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_primitive_mutation_keeps_the_size_prefix_honest() {
        for case in 0..200 {
            let mut rng = Rng::for_case(5, case);
            let mut frame = wire::framed(&[
                0, 3, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b',
            ]);
            mutate(&mut frame, 14, &mut rng);
            assert_eq!(
                i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
                frame.len() - 4
            );
            assert_eq!(
                &frame[4..8],
                &[0, 3, 0, 4],
                "the header prefix is left alone"
            );
        }
    }
}
