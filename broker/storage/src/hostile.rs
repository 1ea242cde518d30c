//! Hostile bytes for the decoders' property tests: arbitrary bytes, and valid samples with
//! bits flipped, bytes overwritten, 32- and 64-bit fields set to extremes (claimed counts and
//! lengths far beyond the bytes present), varints made over-long, and cuts. A `seal` makes
//! the mutated bytes pass the input's own checksum again, so a mutation reaches the decoding
//! behind it instead of stopping at the CRC.
//!
//! The runs are deterministic (a fixed seed, no failure persistence): every machine runs the
//! same cases, and a failure names its input.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Cases per decoder: enough to cover the edit kinds on every sample, quick in debug builds.
const CASES: u32 = 768;

/// One change to a valid sample; positions wrap around its length.
#[derive(Debug, Clone)]
enum Edit {
    Flip {
        at: usize,
        bit: u8,
    },
    Byte {
        at: usize,
        value: u8,
    },
    Int32 {
        at: usize,
        value: i32,
    },
    Int64 {
        at: usize,
        value: i64,
    },
    /// An over-long or maximal varint in place of whatever was there.
    Varint {
        at: usize,
        bytes: Vec<u8>,
    },
    Cut {
        at: usize,
    },
}

fn claimed_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(i32::MAX),
        Just(i32::MAX - 1),
        Just(i32::MIN),
        Just(-1),
        Just(-2),
        Just(0),
        Just(0x0100_0000),
        any::<i32>(),
    ]
}

fn claimed_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MAX),
        Just(i64::MAX - 1),
        Just(i64::MIN),
        Just(-1),
        Just(0),
        any::<i64>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (
            at,
            prop_oneof![Just(0u8), Just(0xff), Just(0x7f), Just(0x80), any::<u8>()]
        )
            .prop_map(|(at, value)| Edit::Byte { at, value }),
        (at, claimed_i32()).prop_map(|(at, value)| Edit::Int32 { at, value }),
        (at, claimed_i64()).prop_map(|(at, value)| Edit::Int64 { at, value }),
        (
            at,
            prop_oneof![
                Just(vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
                Just(vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
                Just(vec![0xff; 10]),
                Just(vec![
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
                ]),
                Just(vec![0x80; 11]),
            ]
        )
            .prop_map(|(at, bytes)| Edit::Varint { at, bytes }),
        at.prop_map(|at| Edit::Cut { at }),
    ]
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    if bytes.len() >= value.len() {
        let at = at % (bytes.len() - value.len() + 1);
        bytes[at..at + value.len()].copy_from_slice(value);
    }
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        return;
    }
    match edit {
        Edit::Flip { at, bit } => {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
        }
        Edit::Byte { at, value } => put(bytes, *at, &[*value]),
        Edit::Int32 { at, value } => put(bytes, *at, &value.to_be_bytes()),
        Edit::Int64 { at, value } => put(bytes, *at, &value.to_be_bytes()),
        Edit::Varint { at, bytes: varint } => put(bytes, *at, varint),
        Edit::Cut { at } => bytes.truncate(at % bytes.len()),
    }
}

/// Hostile inputs: arbitrary bytes, or a sample with a few edits, sealed.
fn inputs(samples: Vec<Vec<u8>>, seal: fn(&mut [u8])) -> impl Strategy<Value = Vec<u8>> {
    let count = samples.len().max(1);
    let edited = (0..count, prop::collection::vec(edit(), 1..5)).prop_map(move |(i, edits)| {
        let mut bytes = samples.get(i).cloned().unwrap_or_default();
        for e in &edits {
            apply(&mut bytes, e);
        }
        seal(&mut bytes);
        bytes
    });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        4 => edited,
    ]
}

/// Runs `decode` over hostile inputs built from `samples`; fails (naming the input) if it
/// panics. `decode` returns nothing: errors are its business, panics are the defect.
pub fn never_panics(samples: Vec<Vec<u8>>, seal: fn(&mut [u8]), decode: impl Fn(&[u8])) {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&inputs(samples, seal), |bytes| {
        decode(&bytes);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("a decoder panicked on hostile bytes: {failure}");
    }
}

/// No checksum to restore.
pub fn unsealed(_: &mut [u8]) {}

/// Restores the CRC-32C of the RecordBatch v2 at the start of `bytes` (it covers the
/// attributes to the end of the batch, as its length field says or the bytes present).
pub fn seal_batch(bytes: &mut [u8]) {
    const CRC: usize = 17;
    const ATTRIBUTES: usize = 21;
    if bytes.len() < ATTRIBUTES {
        return;
    }
    let claimed = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let end = usize::try_from(claimed)
        .ok()
        .and_then(|l| l.checked_add(12))
        .filter(|end| *end >= ATTRIBUTES && *end <= bytes.len())
        .unwrap_or(bytes.len());
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES..end]);
    bytes[CRC..ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn a_panicking_decoder_is_caught_and_reported() {
    let caught = std::panic::catch_unwind(|| {
        never_panics(vec![vec![1, 2, 3]], unsealed, |bytes| {
            assert!(bytes.len() != 3 || bytes[0] == 1, "planted defect");
        })
    });
    assert!(caught.is_err(), "the planted panic is found");
}
