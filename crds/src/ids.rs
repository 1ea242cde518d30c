//! Kafka-style identifiers (22-character URL-safe base64 UUIDs) derived from Kubernetes UIDs,
//! so a cluster id or topic id is stable for the life of the object and needs no extra storage.

/// Errors turning a Kubernetes UID into a Kafka id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The UID is not 32 hex digits (with optional dashes), as Kubernetes UIDs always are.
    #[error("uid {uid:?} is not a UUID; Kubernetes UIDs are 32 hex digits with dashes")]
    NotUuid {
        /// The offending UID.
        uid: String,
    },
}

/// Converts a Kubernetes UID (`8-4-4-4-12` hex) into the 22-character URL-safe base64 form
/// Kafka uses for cluster and topic ids.
pub fn kafka_id_from_uid(uid: &str) -> Result<String, IdError> {
    let hex: Vec<u8> = uid.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return Err(IdError::NotUuid {
            uid: uid.to_owned(),
        });
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| IdError::NotUuid {
            uid: uid.to_owned(),
        })?;
        bytes[i] = u8::from_str_radix(s, 16).map_err(|_| IdError::NotUuid {
            uid: uid.to_owned(),
        })?;
    }
    Ok(base64url_nopad(&bytes))
}

fn base64url_nopad(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_becomes_22_char_kafka_id() {
        let id = kafka_id_from_uid("00000000-0000-0000-0000-000000000000");
        assert_eq!(id, Ok("AAAAAAAAAAAAAAAAAAAAAA".to_owned()));
        let id = kafka_id_from_uid("fb2e7c4a-1d3f-4a8b-9c2e-0123456789ab");
        assert_eq!(id.as_ref().map(String::len), Ok(22));
    }

    #[test]
    fn rejects_non_uuid() {
        assert!(kafka_id_from_uid("not-a-uid").is_err());
        assert!(kafka_id_from_uid("zz2e7c4a-1d3f-4a8b-9c2e-0123456789ab").is_err());
    }
}
