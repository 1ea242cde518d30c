//! `allOf`, `anyOf` and `oneOf` under Confluent's rules: a product type (`allOf`) may lose
//! sub-schemas but not gain them, a sum type (`anyOf`/`oneOf`) may gain but not lose them
//! (repeated sub-schemas counted once; the old kind decides a narrowing, the new kind an
//! extension), any combinator may become `anyOf`, a single option `oneOf`, `allOf` a single
//! option, and the sub-schemas of the two sides must pair up (a maximum matching of
//! compatible pairs) or the change is COMBINED_TYPE_SUBSCHEMAS_CHANGED.
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
    // As Confluent weighs a switch of combinator: to anyOf, between two single options, from
    // a single option to oneOf, or from allOf to a single option is COMBINED_TYPE_EXTENDED
    // (compatible); any other switch is a change of kind.
    if rk != wk {
        let extended = rk == "anyOf"
            || (ws.len() == 1 && rs.len() == 1)
            || (ws.len() == 1 && rk == "oneOf")
            || (rs.len() == 1 && wk == "allOf");
        if !extended {
            walk.report("COMBINED_TYPE_CHANGED", path, &format!("{wk} became {rk}"));
            return;
        }
    }
    // Duplicated options count once. More options are an extension of the new kind (a
    // product type extended is incompatible); fewer a narrowing of the old kind (a sum type
    // narrowed is incompatible).
    let (rs, ws) = (distinct(rs), distinct(ws));
    if rs.len() > ws.len() && rk == "allOf" {
        walk.report("PRODUCT_TYPE_EXTENDED", path, "");
    } else if rs.len() < ws.len() && wk != "allOf" {
        walk.report("SUM_TYPE_NARROWED", path, "");
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
        walk.report("COMBINED_TYPE_SUBSCHEMAS_CHANGED", path, "");
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
