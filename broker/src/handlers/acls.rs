//! DescribeAcls, CreateAcls and DeleteAcls against the broker's authorizer
//! ([`crate::acl`]). Without one (no `authorizer.class.name`) they are answered as Kafka
//! answers them then: SECURITY_DISABLED, which the Admin client reports as
//! SecurityDisabledException, rather than storing ACLs nothing would enforce. Who may call
//! them (DESCRIBE, ALTER on the cluster) is checked before they run.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::model::ResourcePattern;
use crate::acl::{AclBinding, AclFilter};

/// The filter a DescribeAcls request or a DeleteAcls filter carries (the same fields);
/// `None` for codes Kafka does not define.
macro_rules! filter_of {
    ($f:expr) => {
        AclFilter::new(
            $f.resource_type_filter,
            $f.resource_name_filter.as_deref(),
            $f.pattern_type_filter,
            $f.principal_filter.as_deref(),
            $f.host_filter.as_deref(),
            $f.operation,
            $f.permission_type,
        )
    };
}

const NO_AUTHORIZER: &str = "no authorizer is configured on this broker";

fn message() -> Option<StrBytes> {
    Some(StrBytes::from_static_str(NO_AUTHORIZER))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn invalid_filter() -> Option<StrBytes> {
    Some(StrBytes::from_static_str(
        "the filter has a code Kafka does not define",
    ))
}

fn storage_error(e: &crate::acl::StoreError) -> (i16, Option<StrBytes>) {
    tracing::error!(error = %e, "cannot save the ACLs");
    (
        ResponseError::UnknownServerError.code(),
        Some(StrBytes::from_string(e.to_string())),
    )
}

/// DescribeAcls: the bindings the filter matches, grouped by resource pattern.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let Some(authorizer) = &ctx.broker.authorizer else {
        return request.refuse(ResponseError::SecurityDisabled);
    };
    let filter = filter_of!(request);
    let Some(filter) = filter else {
        return DescribeAclsResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(invalid_filter());
    };
    let mut by_resource: BTreeMap<ResourcePattern, Vec<AclDescription>> = BTreeMap::new();
    for b in authorizer.describe(&filter) {
        let e = &b.entry;
        by_resource.entry(b.resource.clone()).or_default().push(
            AclDescription::default()
                .with_principal(text(&e.principal))
                .with_host(text(&e.host))
                .with_operation(e.operation.code())
                .with_permission_type(e.permission.code()),
        );
    }
    DescribeAclsResponse::default()
        .with_error_message(None)
        .with_resources(
            by_resource
                .into_iter()
                .map(|(r, acls)| {
                    DescribeAclsResource::default()
                        .with_resource_type(r.kind.code())
                        .with_resource_name(text(&r.name))
                        .with_pattern_type(r.pattern.code())
                        .with_acls(acls)
                })
                .collect(),
        )
}

/// CreateAcls: each valid binding is added; an invalid one gets INVALID_REQUEST with the
/// reason, the others are still created.
pub(crate) async fn create(ctx: RequestContext, request: CreateAclsRequest) -> CreateAclsResponse {
    let Some(authorizer) = &ctx.broker.authorizer else {
        return request.refuse(ResponseError::SecurityDisabled);
    };
    let checked: Vec<_> = request
        .creations
        .iter()
        .map(|c| {
            AclBinding::new(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclBinding> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let saved = authorizer.create(&valid).await;
    let results = checked
        .iter()
        .map(|c| {
            let (code, message) = match (c, &saved) {
                (Err(why), _) => (
                    ResponseError::InvalidRequest.code(),
                    Some(StrBytes::from_string(why.to_string())),
                ),
                (Ok(_), Err(e)) => storage_error(e),
                (Ok(b), Ok(())) => {
                    tracing::info!(principal = %ctx.client.principal(), acl = ?b, "ACL created");
                    (0, None)
                }
            };
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// DeleteAcls: removes what each filter matches and lists it under that filter.
pub(crate) async fn delete(ctx: RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let Some(authorizer) = &ctx.broker.authorizer else {
        return request.refuse(ResponseError::SecurityDisabled);
    };
    let filters: Vec<Option<AclFilter>> = request.filters.iter().map(|f| filter_of!(f)).collect();
    let valid: Vec<AclFilter> = filters.iter().flatten().cloned().collect();
    let deleted = authorizer.delete(&valid).await;
    let mut removed = match &deleted {
        Ok(lists) => lists.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = filters
        .iter()
        .map(|f| match (f, &deleted) {
            (None, _) => DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(invalid_filter()),
            (Some(_), Err(e)) => {
                let (code, message) = storage_error(e);
                DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(message)
            }
            (Some(_), Ok(_)) => {
                let matching = removed.next().unwrap_or_default();
                if !matching.is_empty() {
                    tracing::info!(principal = %ctx.client.principal(), acls = ?matching, "ACLs deleted");
                }
                DeleteAclsFilterResult::default()
                    .with_error_message(None)
                    .with_matching_acls(matching.iter().map(matching_acl).collect())
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching_acl(b: &AclBinding) -> DeleteAclsMatchingAcl {
    let (r, e) = (&b.resource, &b.entry);
    DeleteAclsMatchingAcl::default()
        .with_error_message(None)
        .with_resource_type(r.kind.code())
        .with_resource_name(text(&r.name))
        .with_pattern_type(r.pattern.code())
        .with_principal(text(&e.principal))
        .with_host(text(&e.host))
        .with_operation(e.operation.code())
        .with_permission_type(e.permission.code())
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
