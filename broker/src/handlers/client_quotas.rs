//! DescribeClientQuotas and AlterClientQuotas: the quotas `kafka-configs.sh --entity-type
//! users|clients|ips` and `Admin.describeClientQuotas`/`alterClientQuotas` manage.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    alter_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::quotas::entity::{parse_entity, Filter};
use crate::quotas::QuotaStoreError;

/// DescribeClientQuotas: the entities passing the filter, with their quotas.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let components = request
        .components
        .iter()
        .map(|c| (c.entity_type.as_str(), c.match_type, c._match.as_deref()));
    let filter = match Filter::parse(components, request.strict) {
        Ok(filter) => filter,
        Err(invalid) => {
            tracing::info!(%invalid, "DescribeClientQuotas refused");
            let code = if invalid.unsupported {
                ResponseError::UnsupportedVersion
            } else {
                ResponseError::InvalidRequest
            };
            return DescribeClientQuotasResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(invalid.message)));
        }
    };
    let entries = ctx
        .broker
        .quotas
        .store
        .describe(&filter)
        .into_iter()
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .into_iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_static_str(kind.name()))
                                .with_entity_name(name.map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(key))
                                .with_value(value)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

/// AlterClientQuotas: each entry is checked and applied on its own, as in Kafka.
pub(crate) async fn alter(
    ctx: RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let store = &ctx.broker.quotas.store;
    let mut entries = Vec::with_capacity(request.entries.len());
    for entry in request.entries {
        let result = match parse_entity(
            entry
                .entity
                .iter()
                .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())),
        ) {
            Err(invalid) => Err(QuotaStoreError::from(invalid)),
            Ok(entity) => {
                let ops: Vec<_> = entry
                    .ops
                    .iter()
                    .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                    .collect();
                store.alter(&entity, &ops, request.validate_only).await
            }
        };
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err(error) => {
                tracing::info!(%error, "client quota change refused");
                let code = match error {
                    QuotaStoreError::Invalid(_) => ResponseError::InvalidRequest,
                    _ => ResponseError::UnknownServerError,
                };
                (code.code(), Some(StrBytes::from_string(error.to_string())))
            }
        };
        entries.push(
            alter_client_quotas_response::EntryData::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_entity(echo_entity(&entry.entity)),
        );
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

fn echo_entity(
    entity: &[kafka_protocol::messages::alter_client_quotas_request::EntityData],
) -> Vec<alter_client_quotas_response::EntityData> {
    entity
        .iter()
        .map(|e| {
            alter_client_quotas_response::EntityData::default()
                .with_entity_type(e.entity_type.clone())
                .with_entity_name(e.entity_name.clone())
        })
        .collect()
}

impl Refuse for DescribeClientQuotasRequest {
    type Response = DescribeClientQuotasResponse;
    fn refuse(self, error: ResponseError) -> DescribeClientQuotasResponse {
        DescribeClientQuotasResponse::default().with_error_code(error.code())
    }
}

impl Refuse for AlterClientQuotasRequest {
    type Response = AlterClientQuotasResponse;
    fn refuse(self, error: ResponseError) -> AlterClientQuotasResponse {
        AlterClientQuotasResponse::default().with_entries(
            self.entries
                .iter()
                .map(|entry| {
                    alter_client_quotas_response::EntryData::default()
                        .with_error_code(error.code())
                        .with_entity(echo_entity(&entry.entity))
                })
                .collect(),
        )
    }
}
