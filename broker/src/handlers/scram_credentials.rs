//! DescribeUserScramCredentials and AlterUserScramCredentials over [`crate::security::credentials`].

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::security::credentials::{Refusal, Upsertion};

/// The error code and message of a refusal.
fn answer(refusal: &Refusal) -> (i16, Option<StrBytes>) {
    let code = match refusal {
        Refusal::UnknownMechanism => ResponseError::UnsupportedSaslMechanism,
        Refusal::Unacceptable(_) => ResponseError::UnacceptableCredential,
        Refusal::Duplicate(_) => ResponseError::DuplicateResource,
        Refusal::NotFound(_) => ResponseError::ResourceNotFound,
        Refusal::Save(_) => ResponseError::UnknownServerError,
    };
    (
        code.code(),
        Some(StrBytes::from_string(refusal.to_string())),
    )
}

/// DescribeUserScramCredentials: the mechanisms and iterations of the named users (all users
/// when none are named), never the keys.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let users: Vec<String> = request
        .users
        .unwrap_or_default()
        .iter()
        .map(|u| u.name.to_string())
        .collect();
    let results = ctx
        .broker
        .scram
        .describe(&users)
        .into_iter()
        .map(|(user, found)| {
            let result = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user));
            match found {
                Ok(infos) => result.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(mechanism, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism.code())
                                .with_iterations(iterations)
                        })
                        .collect(),
                ),
                Err(refusal) => {
                    let (code, message) = answer(&refusal);
                    result.with_error_code(code).with_error_message(message)
                }
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// AlterUserScramCredentials: each user's deletions and upsertions apply together or not at
/// all.
pub(crate) async fn alter(
    ctx: RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let deletions: Vec<_> = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .collect();
    let upsertions: Vec<_> = request
        .upsertions
        .iter()
        .map(|u| Upsertion {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let results = ctx
        .broker
        .scram
        .alter(&deletions, &upsertions)
        .await
        .into_iter()
        .map(|(user, outcome)| {
            let result =
                AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match outcome {
                Ok(()) => result,
                Err(refusal) => {
                    tracing::info!(user = %result.user.as_str(), %refusal, "SCRAM credential change refused");
                    let (code, message) = answer(&refusal);
                    result.with_error_code(code).with_error_message(message)
                }
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

impl Refuse for DescribeUserScramCredentialsRequest {
    type Response = DescribeUserScramCredentialsResponse;
    fn refuse(self, error: ResponseError) -> DescribeUserScramCredentialsResponse {
        DescribeUserScramCredentialsResponse::default().with_error_code(error.code())
    }
}

impl Refuse for AlterUserScramCredentialsRequest {
    type Response = AlterUserScramCredentialsResponse;
    fn refuse(self, error: ResponseError) -> AlterUserScramCredentialsResponse {
        let users = self
            .deletions
            .iter()
            .map(|d| d.name.clone())
            .chain(self.upsertions.iter().map(|u| u.name.clone()));
        let mut results: Vec<AlterUserScramCredentialsResult> = Vec::new();
        for user in users {
            if !results.iter().any(|r| r.user == user) {
                results.push(
                    AlterUserScramCredentialsResult::default()
                        .with_user(user)
                        .with_error_code(error.code()),
                );
            }
        }
        AlterUserScramCredentialsResponse::default().with_results(results)
    }
}
