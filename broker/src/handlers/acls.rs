//! DescribeAcls, CreateAcls and DeleteAcls. This broker runs no authorizer (every client may
//! do everything), so it answers them as Kafka does without `authorizer.class.name`:
//! SECURITY_DISABLED, which the Admin client reports as SecurityDisabledException, rather than
//! storing ACLs nothing would enforce.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;

const NO_AUTHORIZER: &str = "no authorizer is configured on this broker";

fn message() -> Option<StrBytes> {
    Some(StrBytes::from_static_str(NO_AUTHORIZER))
}

/// DescribeAcls: SECURITY_DISABLED.
pub(crate) async fn describe(
    _ctx: RequestContext,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    request.refuse(ResponseError::SecurityDisabled)
}

/// CreateAcls: SECURITY_DISABLED for every creation.
pub(crate) async fn create(_ctx: RequestContext, request: CreateAclsRequest) -> CreateAclsResponse {
    request.refuse(ResponseError::SecurityDisabled)
}

/// DeleteAcls: SECURITY_DISABLED for every filter.
pub(crate) async fn delete(_ctx: RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    request.refuse(ResponseError::SecurityDisabled)
}

impl Refuse for DescribeAclsRequest {
    type Response = DescribeAclsResponse;
    fn refuse(self, error: ResponseError) -> DescribeAclsResponse {
        DescribeAclsResponse::default()
            .with_error_code(error.code())
            .with_error_message(message())
    }
}

impl Refuse for CreateAclsRequest {
    type Response = CreateAclsResponse;
    fn refuse(self, error: ResponseError) -> CreateAclsResponse {
        CreateAclsResponse::default().with_results(
            self.creations
                .iter()
                .map(|_| {
                    AclCreationResult::default()
                        .with_error_code(error.code())
                        .with_error_message(message())
                })
                .collect(),
        )
    }
}

impl Refuse for DeleteAclsRequest {
    type Response = DeleteAclsResponse;
    fn refuse(self, error: ResponseError) -> DeleteAclsResponse {
        DeleteAclsResponse::default().with_filter_results(
            self.filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(error.code())
                        .with_error_message(message())
                })
                .collect(),
        )
    }
}
