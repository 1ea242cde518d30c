//! DeleteGroups: empty groups are deleted with their offsets (tombstones in
//! `__consumer_offsets`); groups with members get NON_EMPTY_GROUP.

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
    let mut deleted = ctx.broker.groups.delete_groups(&ids).await.into_iter();
    let results: Vec<_> = request
        .groups_names
        .iter()
        .map(|g| {
            if ids.iter().any(|id| id == g.as_str()) {
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
