//! InitProducerId: producer ids for idempotent producers (KIP-98), with the epoch bump a
//! producer asks for after an unrecoverable sequence error (KIP-360); transactional ids are
//! the transaction coordinator's.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use crate::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::txn::ProducerRef;

/// Hands out a new producer id, or bumps the epoch of the one the producer already has.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    if let Some(refusal) = refusal(&ctx, request.transactional_id.as_deref().map(|id| &**id)) {
        return response
            .with_error_code(refusal.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    if let Some(transactional_id) = request.transactional_id.as_deref() {
        let expected = (request.producer_id.0 >= 0).then_some(ProducerRef {
            id: request.producer_id.0,
            epoch: request.producer_epoch,
        });
        let outcome = ctx
            .broker
            .txns
            .init_producer_id(
                &*ctx.broker,
                transactional_id,
                request.transaction_timeout_ms,
                expected,
            )
            .await;
        return match super::txn::fencing_for_version(outcome, ctx.version(), 4) {
            Ok(producer) => response
                .with_producer_id(ProducerId(producer.id))
                .with_producer_epoch(producer.epoch),
            Err(error) => response
                .with_error_code(error.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        };
    }
    let bump = request.producer_id.0 >= 0 && request.producer_epoch >= 0;
    if bump && request.producer_epoch < i16::MAX - 1 {
        return response
            .with_producer_id(request.producer_id)
            .with_producer_epoch(request.producer_epoch + 1);
    }
    match ctx.broker.producer_ids.next_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::error!(%error, "cannot allocate a producer id");
            response
                .with_error_code(ResponseError::KafkaStorageError.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// Kafka's checks: WRITE on the transactional id; without one (an idempotent producer),
/// IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
fn refusal(ctx: &RequestContext, transactional_id: Option<&str>) -> Option<ResponseError> {
    match transactional_id {
        Some(id) => (!ctx.may(Operation::Write, ResourceType::TransactionalId, id))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => (!ctx.sees(
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ) && !ctx.may_on_some(Operation::Write, ResourceType::Topic))
        .then_some(ResponseError::ClusterAuthorizationFailed),
    }
}
