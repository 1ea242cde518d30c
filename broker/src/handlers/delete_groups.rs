//! DeleteGroups: empty groups are deleted with their offsets (tombstones in
//! `__consumer_offsets`), share groups with their share-partitions' state (tombstones in
//! `__share_group_state`); groups with members get NON_EMPTY_GROUP.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};

/// Answers a DeleteGroups request.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let ids: Vec<String> = request
        .groups_names
        .iter()
        .map(|g| g.to_string())
        .filter(|g| ctx.may(Operation::Delete, ResourceType::Group, g))
        .collect();
    let mut shares = std::collections::HashMap::new();
    for id in ids.iter().filter(|id| ctx.broker.groups.is_share_group(id)) {
        shares.insert(id.clone(), delete_share_group(&ctx, id).await);
    }
    let others: Vec<String> = ids
        .iter()
        .filter(|id| !shares.contains_key(*id))
        .cloned()
        .collect();
    let mut deleted = ctx.broker.groups.delete_groups(&others).await.into_iter();
    let results: Vec<_> = request
        .groups_names
        .iter()
        .map(|g| {
            if let Some(result) = shares.get(g.as_str()) {
                *result
            } else if others.iter().any(|id| id == g.as_str()) {
                deleted.next().unwrap_or(Ok(()))
            } else {
                Err(ResponseError::GroupAuthorizationFailed)
            }
        })
        .collect();
    DeleteGroupsResponse::default().with_results(
        request
            .groups_names
            .into_iter()
            .zip(results)
            .map(|(id, r)| {
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(r.err().map_or(0, |e| e.code()))
            })
            .collect(),
    )
}

/// Deletes an empty share group with its share-partitions' state (Kafka's
/// DeleteShareGroupState, wherever each state is served): the state first, so a deletion that
/// fails half-way leaves the group to be deleted again, never state without a group.
async fn delete_share_group(ctx: &RequestContext, id: &str) -> Result<(), ResponseError> {
    ctx.broker.groups.share_group_is_idle(id)?;
    ctx.broker.share_partitions.forget(id, |_| true);
    let states = &ctx.broker.share_states;
    for (key, _) in states.held(id).await? {
        states.delete(&key).await?;
    }
    if !ctx.broker.groups.delete_share_group(id).await? {
        return Err(ResponseError::GroupIdNotFound);
    }
    Ok(())
}

impl Refuse for DeleteGroupsRequest {
    type Response = DeleteGroupsResponse;
    fn refuse(self, error: ResponseError) -> DeleteGroupsResponse {
        DeleteGroupsResponse::default().with_results(
            self.groups_names
                .into_iter()
                .map(|id| {
                    DeletableGroupResult::default()
                        .with_group_id(id)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}
