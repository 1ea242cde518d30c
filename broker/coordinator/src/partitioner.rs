//! Which partition of a coordinator's topic holds a key (a group id in `__consumer_offsets`, a
//! transactional id in `__transaction_state`): Kafka's
//! `Utils.abs(groupId.hashCode()) % numPartitions`, bit for bit, so a group keeps its partition
//! when data moves between Kafka and Tributary.

/// Java's `String.hashCode`: `h = 31 * h + c` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `Utils.abs`: `Integer.MIN_VALUE` maps to 0 instead of overflowing.
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The `__consumer_offsets` partition of `group_id` among `partitions` (at least 1).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    kafka_abs(java_string_hash(group_id)) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java() {
        // Values from java.lang.String#hashCode.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("test"), 3_556_498);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Non-BMP characters hash as two UTF-16 surrogates.
        assert_eq!(java_string_hash("😀"), 1_772_899);
        assert_eq!(java_string_hash("Ünïcode"), 1_055_301_514);
        assert_eq!(java_string_hash("console-consumer-12345"), 158_455_506);
    }

    #[test]
    fn partition_uses_kafka_abs() {
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("test", 50), 3_556_498 % 50);
        assert_eq!(partition_for("x", 1), 0);
        for name in ["a", "group-1", "console-consumer-12345", "Ünïcode"] {
            let p = partition_for(name, 50);
            assert!((0..50).contains(&p), "{name} -> {p}");
        }
    }
}
