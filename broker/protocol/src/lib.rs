//! The Kafka wire format at the connection edge: size-prefixed frames, the fixed request header
//! prefix, response encoding and the table of API versions this broker serves, over the
//! patched kafka-protocol (`broker/vendor/kafka-protocol`).
//!
//! A crate of its own so the compiler keeps it at the edge: it knows frames and versions, not
//! what a request does.

mod frame;
#[cfg(test)]
mod kafka_4_3;
mod versions;

pub use frame::{encode_response, read_claimed, read_frame, read_sized, FrameError, RequestPrefix};
pub use versions::{
    advertised_min, routed_apis, served_apis, served_range, supported_range, ApiSets,
    SUPPORTED_APIS,
};
