//! Boundary values and hostile names the mutators draw from.

use kafka_protocol::protocol::StrBytes;

use crate::rng::Rng;

/// int16 values at the edges of what fields mean.
pub const I16_EDGES: [i16; 9] = [0, -1, 1, 2, -2, i16::MAX, i16::MIN, 255, 256];
/// int32 values at the edges, incl. 2^31-1.
pub const I32_EDGES: [i32; 12] = [
    0,
    -1,
    1,
    -2,
    i32::MAX,
    i32::MIN,
    i32::MAX - 1,
    65_535,
    65_536,
    100_000,
    1 << 24,
    -100,
];
/// int64 values at the edges, incl. offsets around 2^31 and 2^63.
pub const I64_EDGES: [i64; 12] = [
    0,
    -1,
    1,
    -2,
    -3,
    i64::MAX,
    i64::MIN,
    i32::MAX as i64,
    (i32::MAX as i64) + 1,
    1 << 40,
    i64::MAX - 1,
    -1_000,
];

/// One int16 edge value.
pub fn i16_edge(rng: &mut Rng) -> i16 {
    rng.pick(&I16_EDGES).copied().unwrap_or(0)
}

/// One int32 edge value.
pub fn i32_edge(rng: &mut Rng) -> i32 {
    rng.pick(&I32_EDGES).copied().unwrap_or(0)
}

/// One int64 edge value.
pub fn i64_edge(rng: &mut Rng) -> i64 {
    rng.pick(&I64_EDGES).copied().unwrap_or(0)
}

/// A hostile or plausible name: empty, at and past Kafka's 249-character limit, with invalid
/// characters, path tricks, internal topics, or one of the `known` names (often a duplicate).
pub fn name(rng: &mut Rng, known: &[String]) -> StrBytes {
    let s = match rng.below(14) {
        0 => String::new(),
        1 => "a".repeat(249),
        2 => "b".repeat(250),
        3 => "c".repeat(rng.below(2000) + 256),
        4 => "bad/name".into(),
        5 => "..".into(),
        6 => ".".into(),
        7 => "has space".into(),
        8 => "ünïcødé-tøpic".into(),
        9 => "__consumer_offsets".into(),
        10 => "__transaction_state".into(),
        11 => "x\0y".into(),
        12 => format!("fz-new-{}", rng.below(8)),
        _ => known
            .get(rng.below(known.len()))
            .cloned()
            .unwrap_or_default(),
    };
    StrBytes::from_string(s)
}
