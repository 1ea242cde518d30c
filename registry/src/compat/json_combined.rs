//! `allOf`, `anyOf` and `oneOf` under Confluent's rules: a product type (`allOf`) may lose
//! sub-schemas but not gain them, a sum type (`anyOf`/`oneOf`) may gain but not lose them
//! (repeated sub-schemas counted once), any combinator may become `anyOf` and one with a
//! single option `oneOf`, and the sub-schemas of the two sides must pair up (a maximum
//! matching of compatible pairs) or the change is COMBINED_TYPE_SUBSCHEMAS_CHANGED.
//! When only one side is a combinator, the other side is compared with each sub-schema.

use super::json::{Node, Walk};

const COMBINATORS: [&str; 3] = ["allOf", "anyOf", "oneOf"];

fn combinator<'a>(node: &Node<'a>) -> Option<(&'static str, Vec<Node<'a>>)> {
    COMBINATORS.iter().find_map(|k| {
        node.value
            .get(*k)
            .filter(|v| v.is_array())
            .map(|_| (*k, node.list(k)))
    })
}

/// Compares the combinators of `reader` and `writer`; true when it compared the whole schemas
/// (the caller stops), false when neither side has a combinator.
pub(super) fn check_combined<'a>(
    walk: &mut Walk<'a>,
    reader: &Node<'a>,
    writer: &Node<'a>,
    path: &str,
) -> bool {
    match (combinator(reader), combinator(writer)) {
        (None, None) => false,
        (Some((rk, rs)), Some((wk, ws))) => {
            both_combined(walk, (rk, &rs), (wk, &ws), path);
            walk.accepts(
                reader.without(&COMBINATORS),
                writer.without(&COMBINATORS),
                path.to_string(),
            );
            true
        }
        (Some((rk, rs)), None) => {
            let base = reader.without(&COMBINATORS);
            let subs: Vec<Node<'a>> = rs
                .into_iter()
                .map(|r| base.merged(&walk.resolved(r, true)))
                .collect();
            if rk == "allOf" {
                for (i, r) in subs.into_iter().enumerate() {
                    walk.accepts(r, writer.clone(), format!("{path}/allOf/{i}"));
                }
            } else if !subs
                .into_iter()
                .any(|r| walk.quietly_accepts(r, writer.clone()))
            {
                walk.report(
                    "COMBINED_TYPE_CHANGED",
                    path,
                    &format!("no sub-schema of the new {rk} accepts the old schema"),
                );
            }
            true
        }
        (None, Some((wk, ws))) => {
            let base = writer.without(&COMBINATORS);
            let subs: Vec<Node<'a>> = ws.into_iter().map(|w| walk.resolved(w, false)).collect();
            if wk == "allOf" {
                let all = subs.iter().fold(base, |acc, w| acc.merged(w));
                walk.accepts(reader.clone(), all, path.to_string());
            } else {
                for (i, w) in subs.iter().enumerate() {
                    walk.accepts(reader.clone(), base.merged(w), format!("{path}/{wk}/{i}"));
                }
            }
            true
        }
    }
}

fn both_combined<'a>(
    walk: &mut Walk<'a>,
    (rk, rs): (&str, &[Node<'a>]),
    (wk, ws): (&str, &[Node<'a>]),
    path: &str,
) {
    // Confluent lets any combinator become anyOf, a single-option one become oneOf, and a
    // single option stay single under allOf; every other switch is a change of kind.
    let extended = rk == wk
        || rk == "anyOf"
        || (rk == "oneOf" && ws.len() == 1)
        || (rk == "allOf" && rs.len() == 1 && ws.len() == 1);
    if !extended {
        walk.report("COMBINED_TYPE_CHANGED", path, &format!("{wk} became {rk}"));
        return;
    }
    // Duplicated options count once.
    let (rs, ws) = (distinct(rs), distinct(ws));
    if rk == "allOf" && rs.len() > ws.len() {
        walk.report("PRODUCT_TYPE_EXTENDED", &format!("{path}/{rk}"), "");
    } else if rk != "allOf" && rs.len() < ws.len() {
        walk.report("SUM_TYPE_NARROWED", &format!("{path}/{rk}"), "");
    }
    let compatible: Vec<Vec<bool>> = ws
        .iter()
        .map(|w| {
            rs.iter()
                .map(|r| walk.quietly_accepts(r.clone(), w.clone()))
                .collect()
        })
        .collect();
    if max_matching(&compatible) < rs.len().min(ws.len()) {
        walk.report(
            "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
            &format!("{path}/{rk}"),
            "",
        );
    }
}

/// The options of a combinator without repeats, in order.
fn distinct<'a>(options: &[Node<'a>]) -> Vec<Node<'a>> {
    let mut out: Vec<Node<'a>> = Vec::new();
    for option in options {
        if !out.iter().any(|o| o.value == option.value) {
            out.push(option.clone());
        }
    }
    out
}

/// The size of a maximum matching in the bipartite graph `edges[left][right]` (Kuhn's
/// augmenting paths; the sides are a schema's sub-schemas, so small).
fn max_matching(edges: &[Vec<bool>]) -> usize {
    fn augment(
        left: usize,
        edges: &[Vec<bool>],
        visited: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for right in 0..owner.len() {
            if edges[left].get(right) == Some(&true) && !visited[right] {
                visited[right] = true;
                let free = match owner[right] {
                    None => true,
                    Some(other) => augment(other, edges, visited, owner),
                };
                if free {
                    owner[right] = Some(left);
                    return true;
                }
            }
        }
        false
    }
    let rights = edges.iter().map(Vec::len).max().unwrap_or(0);
    let mut owner = vec![None; rights];
    (0..edges.len())
        .filter(|&left| augment(left, edges, &mut vec![false; rights], &mut owner))
        .count()
}

#[cfg(test)]
mod tests {
    use super::max_matching;

    #[test]
    fn matching_finds_the_largest_pairing() {
        assert_eq!(max_matching(&[vec![true, true], vec![true, false]]), 2);
        assert_eq!(max_matching(&[vec![true, false], vec![true, false]]), 1);
        assert_eq!(max_matching(&[]), 0);
    }
}
