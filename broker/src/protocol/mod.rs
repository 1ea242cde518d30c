//! The Kafka wire format at the connection edge: size-prefixed frames, the fixed request header
//! prefix, response encoding and the table of API versions this broker serves.

mod frame;
mod versions;

pub use frame::{encode_response, read_claimed, read_frame, read_sized, FrameError, RequestPrefix};
pub use versions::{
    advertised_min, routed_apis, served_apis, served_range, supported_range, SUPPORTED_APIS,
};
