//! Frame-level mutation: the size prefix and the request header, where a broker decides how
//! much to read and how to route before any body decoding.

use kafka_protocol::messages::ApiKey;

use super::values::{i16_edge, i32_edge};
use crate::rng::Rng;
use crate::wire;

/// Mutates the framing or header of a whole frame; returns what it did.
pub fn mutate(frame: &mut Vec<u8>, rng: &mut Rng, served: &[(ApiKey, i16, i16)]) -> String {
    match rng.below(9) {
        0 => {
            let lie = i32_edge(rng);
            set_i32(frame, 0, lie);
            format!("size prefix {lie}")
        }
        1 => {
            let delta = *rng.pick(&[-1i32, 1, -4, 4, 100]).unwrap_or(&1);
            let size = (frame.len() as i32 - 4).saturating_add(delta);
            set_i32(frame, 0, size);
            format!("size prefix off by {delta}")
        }
        2 => {
            let cut = rng.below(frame.len().max(1));
            frame.truncate(cut.max(4));
            let lying = rng.chance(50);
            if !lying {
                wire::fix_size(frame);
            }
            format!(
                "truncated to {} bytes ({} prefix)",
                frame.len(),
                if lying { "original" } else { "fixed" }
            )
        }
        3 => {
            let n = rng.below(512) + 1;
            frame.extend(rng.bytes(n));
            let lying = rng.chance(50);
            if !lying {
                wire::fix_size(frame);
            }
            format!(
                "{n} garbage bytes appended ({} prefix)",
                if lying { "original" } else { "fixed" }
            )
        }
        4 => {
            // Another served API's key over this API's body.
            let (api, lo, hi) = rng
                .pick(served)
                .copied()
                .unwrap_or((ApiKey::Metadata, 0, 0));
            let version = if rng.chance(50) { lo } else { hi };
            set_i16(frame, 4, api as i16);
            set_i16(frame, 6, version);
            format!("header swapped to {api:?} v{version}")
        }
        5 => {
            let key = if rng.chance(50) {
                i16_edge(rng)
            } else {
                60 + rng.below(40) as i16
            };
            set_i16(frame, 4, key);
            format!("api key {key}")
        }
        6 => {
            let version = i16_edge(rng);
            set_i16(frame, 6, version);
            format!("api version {version}")
        }
        7 => {
            // Client id length (header v1+): -1 (null), 0, longer than the frame, negative.
            let len = *rng.pick(&[-1i16, 0, i16::MAX, -2, 1000]).unwrap_or(&-1);
            set_i16(frame, 12, len);
            format!("client id length {len}")
        }
        _ => tagged_field(frame, rng),
    }
}

/// For a flexible (header v2) request: appends an unknown tagged field of hostile size to the
/// header's tag section by replacing an empty section (0) with one tag.
fn tagged_field(frame: &mut Vec<u8>, rng: &mut Rng) -> String {
    let Some(split) = wire::split(frame) else {
        return "tagged field skipped (unparseable header)".into();
    };
    let version = split.header.request_api_version;
    if split.api.request_header_version(version) < 2 {
        let id = i32_edge(rng);
        wire::set_correlation_id(frame, id);
        return format!("correlation id {id}");
    }
    let header_end = frame.len() - split.body.len();
    let declared = *rng.pick(&[0u32, 1, 127, 0xFFFF_FFFF]).unwrap_or(&1);
    let mut tag = vec![1u8, 0x05];
    put_uvarint(&mut tag, declared);
    tag.extend(rng.bytes_between(0, 8));
    // The empty tag section is the header's last byte.
    frame.splice(header_end - 1..header_end, tag);
    wire::fix_size(frame);
    format!("header tagged field 5 declaring {declared} bytes")
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn set_i16(frame: &mut [u8], at: usize, v: i16) {
    if let Some(slot) = frame.get_mut(at..at + 2) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
}

fn set_i32(frame: &mut [u8], at: usize, v: i32) {
    if let Some(slot) = frame.get_mut(at..at + 4) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
}
