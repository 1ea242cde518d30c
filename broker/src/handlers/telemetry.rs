//! GetTelemetrySubscriptions and PushTelemetry (KIP-714), answered as Kafka answers them with
//! no client metrics receiver: an empty subscription, and pushes checked then dropped.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, PushTelemetryRequest,
    PushTelemetryResponse,
};
use uuid::Uuid;

use super::refuse::Refuse;
use super::RequestContext;
use crate::telemetry::{Push, ACCEPTED_COMPRESSION_TYPES, PUSH_INTERVAL_MS, TELEMETRY_MAX_BYTES};

/// The subscription of the calling client instance: no metrics requested.
pub(crate) async fn get_subscriptions(
    ctx: RequestContext,
    request: GetTelemetrySubscriptionsRequest,
) -> GetTelemetrySubscriptionsResponse {
    let now = crate::clock::now_ms();
    match ctx
        .broker
        .telemetry
        .get(request.client_instance_id, Uuid::new_v4(), now)
    {
        Ok(s) => GetTelemetrySubscriptionsResponse::default()
            .with_client_instance_id(s.client_instance_id)
            .with_subscription_id(s.subscription_id)
            .with_accepted_compression_types(ACCEPTED_COMPRESSION_TYPES.to_vec())
            .with_push_interval_ms(PUSH_INTERVAL_MS)
            .with_telemetry_max_bytes(TELEMETRY_MAX_BYTES)
            .with_delta_temporality(true),
        Err(error) => GetTelemetrySubscriptionsResponse::default().with_error_code(refused(
            &ctx,
            "GetTelemetrySubscriptions",
            error,
        )),
    }
}

/// A push, checked as Kafka checks it; its metrics go nowhere (no receiver is configured).
pub(crate) async fn push(
    ctx: RequestContext,
    request: PushTelemetryRequest,
) -> PushTelemetryResponse {
    let push = Push {
        client_instance_id: request.client_instance_id,
        subscription_id: request.subscription_id,
        terminating: request.terminating,
        compression_type: request.compression_type,
        metrics_len: request.metrics.len(),
    };
    match ctx.broker.telemetry.push(push, crate::clock::now_ms()) {
        Ok(()) => PushTelemetryResponse::default(),
        Err(error) => {
            PushTelemetryResponse::default().with_error_code(refused(&ctx, "PushTelemetry", error))
        }
    }
}

/// Logs a refused telemetry request and gives its error code.
fn refused(ctx: &RequestContext, api: &str, error: ResponseError) -> i16 {
    tracing::debug!(
        api,
        client = %super::Client::id(&ctx.header),
        ?error,
        "telemetry request refused"
    );
    error.code()
}

impl Refuse for GetTelemetrySubscriptionsRequest {
    type Response = GetTelemetrySubscriptionsResponse;
    fn refuse(self, error: ResponseError) -> GetTelemetrySubscriptionsResponse {
        GetTelemetrySubscriptionsResponse::default().with_error_code(error.code())
    }
}

impl Refuse for PushTelemetryRequest {
    type Response = PushTelemetryResponse;
    fn refuse(self, error: ResponseError) -> PushTelemetryResponse {
        PushTelemetryResponse::default().with_error_code(error.code())
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::*;

    use super::super::group_wire_tests::{broker, call};
    use super::*;
    use crate::protocol::{served_apis, ApiSets};

    #[tokio::test]
    async fn telemetry_is_answered_but_not_advertised_as_kafka_does_without_a_receiver() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path()).await;
        for sets in [ApiSets::default(), ApiSets::ALL] {
            assert!(
                served_apis(sets).all(|(api, _, _)| !matches!(
                    api,
                    ApiKey::GetTelemetrySubscriptions | ApiKey::PushTelemetry
                )),
                "clients are not invited to push"
            );
        }
        let get = GetTelemetrySubscriptionsRequest::default();
        let got: GetTelemetrySubscriptionsResponse =
            call(&b, ApiKey::GetTelemetrySubscriptions, 0, &get).await;
        assert_eq!(got.error_code, 0);
        assert!(
            !got.client_instance_id.is_nil(),
            "an instance id is assigned"
        );
        assert!(got.requested_metrics.is_empty(), "no metrics are requested");
        assert_eq!(got.push_interval_ms, PUSH_INTERVAL_MS);
        assert_eq!(got.telemetry_max_bytes, TELEMETRY_MAX_BYTES);

        let again = get.with_client_instance_id(got.client_instance_id);
        let early: GetTelemetrySubscriptionsResponse =
            call(&b, ApiKey::GetTelemetrySubscriptions, 0, &again).await;
        assert_eq!(
            early.error_code,
            ResponseError::ThrottlingQuotaExceeded.code()
        );

        let push = PushTelemetryRequest::default()
            .with_client_instance_id(got.client_instance_id)
            .with_subscription_id(got.subscription_id)
            .with_metrics(bytes::Bytes::from_static(b"otlp"));
        let pushed: PushTelemetryResponse = call(&b, ApiKey::PushTelemetry, 0, &push).await;
        assert_eq!(
            pushed.error_code, 0,
            "the first push after a get is accepted"
        );
        let unknown = push.with_subscription_id(got.subscription_id.wrapping_add(1));
        let pushed: PushTelemetryResponse = call(&b, ApiKey::PushTelemetry, 0, &unknown).await;
        assert_eq!(
            pushed.error_code,
            ResponseError::ThrottlingQuotaExceeded.code(),
            "a second push within the interval"
        );
    }
}
