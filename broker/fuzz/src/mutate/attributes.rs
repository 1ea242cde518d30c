//! Record batch attribute bits, drawn at random so every claim the mutators make meets every
//! branch a broker takes on them: the codec (0-4, and 5-7 which name none), the timestamp type
//! (LogAppendTime, which producers may not set), transactional, control (which clients may
//! not write), delete horizon, and the unused high bits. A broker that checks one of these
//! before it checks the claimed counts must still not trust the counts.

use crate::rng::Rng;

/// Codec bits 0-2.
pub const CODEC_MASK: i16 = 0x07;
/// Bit 3: the LogAppendTime timestamp type.
pub const LOG_APPEND_TIME: i16 = 0x08;
/// Bit 4: part of a transaction.
pub const TRANSACTIONAL: i16 = 0x10;
/// Bit 5: a control batch (transaction markers).
pub const CONTROL: i16 = 0x20;
/// Bit 6: the batch carries a delete horizon (compaction).
pub const DELETE_HORIZON: i16 = 0x40;
/// Bits Kafka does not use, low and high (i16::MIN is bit 15).
pub const UNUSED: [i16; 4] = [0x0080, 0x0100, 0x4000, i16::MIN];
/// The flag bits, each drawn on its own.
pub const FLAGS: [i16; 4] = [LOG_APPEND_TIME, TRANSACTIONAL, CONTROL, DELETE_HORIZON];

/// Random attributes: any codec 0-7, each flag with even odds, and one unused bit one time in
/// four.
pub fn draw(rng: &mut Rng) -> i16 {
    let mut attributes = rng.below(8) as i16;
    for flag in FLAGS {
        if rng.chance(50) {
            attributes |= flag;
        }
    }
    if rng.chance(25) {
        attributes |= rng.pick(&UNUSED).copied().unwrap_or(0);
    }
    attributes
}

/// The attributes as a report names them: `0x0018 (none, LogAppendTime, transactional)`.
pub fn describe(attributes: i16) -> String {
    let codec = match attributes & CODEC_MASK {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        5 => "codec 5",
        6 => "codec 6",
        _ => "codec 7",
    };
    let mut parts = vec![codec];
    for (bit, name) in [
        (LOG_APPEND_TIME, "LogAppendTime"),
        (TRANSACTIONAL, "transactional"),
        (CONTROL, "control"),
        (DELETE_HORIZON, "delete horizon"),
    ] {
        if attributes & bit != 0 {
            parts.push(name);
        }
    }
    if UNUSED.iter().any(|&bit| attributes & bit != 0) {
        parts.push("unused bits");
    }
    format!("{:#06x} ({})", attributes as u16, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_and_every_bit_is_drawn() {
        let mut codecs = [false; 8];
        let mut bits = 0u16;
        for case in 0..400 {
            let a = draw(&mut Rng::for_case(3, case));
            codecs[(a & CODEC_MASK) as usize] = true;
            bits |= a as u16;
        }
        assert!(codecs.iter().all(|&c| c), "{codecs:?}");
        for bit in FLAGS.iter().chain(UNUSED.iter()) {
            assert_ne!(bits & (*bit as u16), 0, "bit {bit:#x} never drawn");
        }
    }

    #[test]
    fn attributes_are_described_by_name() {
        assert_eq!(describe(0x0008), "0x0008 (none, LogAppendTime)");
        assert_eq!(
            describe(0x0035u16 as i16),
            "0x0035 (codec 5, transactional, control)"
        );
        assert_eq!(describe(i16::MIN | 1), "0x8001 (gzip, unused bits)");
    }
}
