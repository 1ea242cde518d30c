//! The `range` assignor (Kafka's `RangeAssignor` for the consumer protocol): for each topic,
//! its subscribers in order (static members by instance id first, then the others by member
//! id) take contiguous ranges, the first ones one partition more when the count does not
//! divide. Members with the same subscriptions over topics of equal size so get the same
//! partition numbers of every topic (co-partitioning, for joins). Not sticky beyond that
//! order, as Kafka's is not.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Assignment, GroupSpec, MemberSpec};

fn order(a: &MemberSpec, b: &MemberSpec) -> Ordering {
    match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.member_id.cmp(&b.member_id)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

/// See the module documentation.
pub fn assign(spec: &GroupSpec) -> BTreeMap<String, Assignment> {
    let mut members: Vec<&MemberSpec> = spec.members.iter().collect();
    members.sort_by(|a, b| order(a, b));
    let mut out: BTreeMap<String, Assignment> = spec
        .members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for (&topic, &count) in &spec.partitions {
        let subscribers: Vec<&&MemberSpec> = members
            .iter()
            .filter(|m| m.topics.contains(&topic))
            .collect();
        let Ok(n) = i32::try_from(subscribers.len()) else {
            continue;
        };
        if n == 0 || count <= 0 {
            continue;
        }
        let (quota, mut extra) = (count / n, count % n);
        let mut next = 0;
        for m in subscribers {
            let mut take = quota;
            if extra > 0 {
                take += 1;
                extra -= 1;
            }
            let a = out.entry(m.member_id.clone()).or_default();
            for p in next..(next + take).min(count) {
                a.insert(topic, p);
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn co_partitions_topics_of_equal_size() {
        let s = spec(
            vec![
                member("m0", &[1, 2], Assignment::new()),
                member("m1", &[1, 2], Assignment::new()),
            ],
            &[(1, 3), (2, 3)],
        );
        let out = assign(&s);
        assert_valid(&s, &out);
        assert_eq!(
            out["m0"],
            Assignment::from_topics([(topic(1), vec![0, 1]), (topic(2), vec![0, 1])])
        );
        assert_eq!(
            out["m1"],
            Assignment::from_topics([(topic(1), vec![2]), (topic(2), vec![2])])
        );
    }

    #[test]
    fn static_members_come_first_by_instance_id() {
        let mut a = member("a", &[1], Assignment::new());
        let mut z = member("z", &[1], Assignment::new());
        a.instance_id = Some("i-2".into());
        z.instance_id = Some("i-1".into());
        let d = member("0-dynamic", &[1], Assignment::new());
        let s = spec(vec![d, a, z], &[(1, 3)]);
        let out = assign(&s);
        assert_valid(&s, &out);
        assert_eq!(out["z"], Assignment::from_topics([(topic(1), vec![0])]));
        assert_eq!(out["a"], Assignment::from_topics([(topic(1), vec![1])]));
        assert_eq!(
            out["0-dynamic"],
            Assignment::from_topics([(topic(1), vec![2])])
        );
    }

    #[test]
    fn heterogeneous_subscriptions_split_each_topic_among_its_subscribers() {
        let s = spec(
            vec![
                member("a", &[1], Assignment::new()),
                member("b", &[1, 2], Assignment::new()),
                member("c", &[2], Assignment::new()),
            ],
            &[(1, 4), (2, 1)],
        );
        let out = assign(&s);
        assert_valid(&s, &out);
        assert_eq!(out["a"].len(), 2);
        assert_eq!(out["b"].len(), 3);
        assert_eq!(out["c"].len(), 0, "more subscribers than partitions");
    }
}
