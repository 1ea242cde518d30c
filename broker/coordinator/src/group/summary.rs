//! What DescribeGroups and ListGroups report about a group.

use bytes::Bytes;

use super::classic::Group;
use super::state::GroupState;

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the selected protocol (Stable groups only).
    pub metadata: Bytes,
    /// Current assignment (Stable groups only).
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// State name.
    pub state: GroupState,
    /// Protocol type ("" for none).
    pub protocol_type: String,
    /// Selected protocol when Stable, else "".
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberSummary>,
}

impl GroupSummary {
    /// The summary of a group that does not exist (Kafka reports it as Dead).
    pub fn dead() -> GroupSummary {
        GroupSummary {
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }
    }
}

impl Group {
    /// The DescribeGroups view (`GroupMetadata.summary`): metadata and assignments only once
    /// Stable, when they are consistent.
    pub fn summary(&self) -> GroupSummary {
        let stable = self.state == GroupState::Stable;
        let protocol = if stable {
            self.protocol_name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let members = self
            .members
            .values()
            .map(|m| MemberSummary {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol).cloned().unwrap_or_default()
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        GroupSummary {
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        }
    }
}
