//! SaslHandshake and SaslAuthenticate outside an authentication: on a listener without SASL,
//! or after a SASL connection authenticated (its re-authentications are handled by the
//! connection's [`crate::security::sasl::session`] before dispatch), Kafka answers
//! ILLEGAL_SASL_STATE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;

/// Answers a SaslHandshake that is not part of an authentication.
pub(crate) async fn handshake(
    _ctx: RequestContext,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    request.refuse(ResponseError::IllegalSaslState)
}

/// Answers a SaslAuthenticate that is not part of an authentication.
pub(crate) async fn authenticate(
    _ctx: RequestContext,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    request.refuse(ResponseError::IllegalSaslState)
}

impl Refuse for SaslHandshakeRequest {
    type Response = SaslHandshakeResponse;
    fn refuse(self, error: ResponseError) -> SaslHandshakeResponse {
        SaslHandshakeResponse::default().with_error_code(error.code())
    }
}

impl Refuse for SaslAuthenticateRequest {
    type Response = SaslAuthenticateResponse;
    fn refuse(self, error: ResponseError) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "SASL authentication is not expected on this connection",
            )))
    }
}
