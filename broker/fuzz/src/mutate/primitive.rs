//! Primitive mutation of a request body: boundary integers written where a field plausibly
//! sits (array lengths, string lengths, varints), bit flips, byte insertion and deletion.

use super::values::{i16_edge, i32_edge, i64_edge};
use crate::rng::Rng;
use crate::wire;

/// Mutates the bytes after the header (`body_start`) and fixes the size prefix.
pub fn mutate(frame: &mut Vec<u8>, body_start: usize, rng: &mut Rng) -> String {
    let body_start = body_start.min(frame.len());
    let what = if frame.len() == body_start {
        frame.extend(rng.bytes_between(1, 16));
        "random body appended to an empty body".to_string()
    } else {
        one(frame, body_start, rng)
    };
    wire::fix_size(frame);
    what
}

fn one(frame: &mut Vec<u8>, start: usize, rng: &mut Rng) -> String {
    let len = frame.len() - start;
    match rng.below(8) {
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
