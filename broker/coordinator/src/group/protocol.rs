//! Protocol choice across members: which protocols a group can run, and the one it runs
//! (Kafka's `candidateProtocols` and `selectProtocol`: every member votes for its most
//! preferred protocol that all members support; the most votes wins).

use std::collections::HashMap;

use super::member::{Member, MemberProtocol};

/// Protocols every member supports.
pub fn candidates<'a>(members: impl IntoIterator<Item = &'a Member>) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut total = 0usize;
    for member in members {
        total += 1;
        for p in &member.protocols {
            let c = count.entry(p.name.as_str()).or_insert(0);
            if *c == 0 {
                order.push(p.name.as_str());
            }
            *c += 1;
        }
    }
    order
        .into_iter()
        .filter(|name| count.get(name) == Some(&total))
        .map(str::to_string)
        .collect()
}

/// The protocol the group runs: each member's vote is its first protocol among the
/// candidates; ties go to the protocol that got its votes first (member order). `None` when
/// there are no members or nothing in common.
pub fn select<'a>(members: impl IntoIterator<Item = &'a Member> + Clone) -> Option<String> {
    let candidates = candidates(members.clone());
    let mut votes: Vec<(&str, usize)> = Vec::new();
    for member in members {
        let Some(choice) = member
            .protocols
            .iter()
            .find(|p| candidates.contains(&p.name))
        else {
            continue;
        };
        match votes.iter_mut().find(|(name, _)| *name == choice.name) {
            Some((_, n)) => *n += 1,
            None => votes.push((choice.name.as_str(), 1)),
        }
    }
    // max_by_key keeps the last maximum; iterate reversed so the earliest wins ties.
    votes
        .into_iter()
        .rev()
        .max_by_key(|&(_, n)| n)
        .map(|(name, _)| name.to_string())
}

/// Whether a member with `protocol_type` and `protocols` may join a group currently running
/// `group_type` with `members` (`GroupMetadata.supportsProtocols`): an empty group takes any
/// non-empty offer; otherwise the type must match and one protocol must be supported by all.
pub fn supports<'a>(
    group_type: Option<&str>,
    members: impl IntoIterator<Item = &'a Member> + Clone,
    protocol_type: &str,
    protocols: &[MemberProtocol],
) -> bool {
    let mut members_iter = members.clone().into_iter().peekable();
    if members_iter.peek().is_none() {
        return !protocol_type.is_empty() && !protocols.is_empty();
    }
    group_type == Some(protocol_type) && {
        let common = candidates(members);
        protocols.iter().any(|p| common.contains(&p.name))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|n| MemberProtocol {
                    name: n.to_string(),
                    metadata: Bytes::new(),
                })
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: false,
            awaiting_sync: false,
            is_new: false,
            heartbeat_deadline: 0,
        }
    }

    fn offer(names: &[&str]) -> Vec<MemberProtocol> {
        member("x", names).protocols
    }

    #[test]
    fn candidates_are_supported_by_everyone() {
        let ms = [
            member("a", &["range", "roundrobin", "sticky"]),
            member("b", &["sticky", "range"]),
        ];
        assert_eq!(candidates(&ms), vec!["range", "sticky"]);
    }

    #[test]
    fn majority_vote_picks_the_protocol() {
        // a prefers range, b and c prefer sticky; all support both.
        let ms = [
            member("a", &["range", "sticky"]),
            member("b", &["sticky", "range"]),
            member("c", &["sticky", "range"]),
        ];
        assert_eq!(select(&ms).as_deref(), Some("sticky"));
    }

    #[test]
    fn a_vote_skips_protocols_not_everyone_supports() {
        // a prefers roundrobin, but b lacks it: a's vote goes to range.
        let ms = [
            member("a", &["roundrobin", "range"]),
            member("b", &["range", "cooperative-sticky"]),
        ];
        assert_eq!(select(&ms).as_deref(), Some("range"));
    }

    #[test]
    fn ties_go_to_the_first_vote() {
        let ms = [member("a", &["x", "y"]), member("b", &["y", "x"])];
        assert_eq!(select(&ms).as_deref(), Some("x"));
    }

    #[test]
    fn nothing_in_common_selects_nothing() {
        let ms = [member("a", &["x"]), member("b", &["y"])];
        assert_eq!(select(&ms), None);
        assert_eq!(select(&[] as &[Member]), None);
    }

    #[test]
    fn empty_group_takes_any_offer_but_needs_one() {
        let none: [Member; 0] = [];
        assert!(supports(None, &none, "consumer", &offer(&["range"])));
        assert!(!supports(None, &none, "", &offer(&["range"])));
        assert!(!supports(None, &none, "consumer", &[]));
    }

    #[test]
    fn joining_needs_same_type_and_a_common_protocol() {
        let ms = [member("a", &["range", "sticky"]), member("b", &["sticky"])];
        let ty = Some("consumer");
        assert!(supports(ty, &ms, "consumer", &offer(&["sticky"])));
        assert!(!supports(ty, &ms, "consumer", &offer(&["range"])));
        assert!(!supports(ty, &ms, "connect", &offer(&["sticky"])));
    }
}
