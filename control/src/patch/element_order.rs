//! The order of a merged list, as the API server computes it.
//!
//! Elements named by the order list (the patch list, or a
//! `$setElementOrder/<field>` directive) come in that order; the other
//! elements (only on the server) keep their server order. The two runs are
//! interleaved: a server-only element goes before a patch element only
//! when both were on the server and it came first there; otherwise the
//! patch element goes first. So, exactly as upstream, a plain patch that
//! adds an element to a merged list puts it *before* the live elements
//! (`kubectl patch` adding a container shows it first), while kubectl
//! apply, which always sends `$setElementOrder`, gets the order of the
//! user's file, with elements injected by others kept near where they were.

use crate::json_eq::json_eq;
use serde_json::Value;

fn position(ids: &[Option<Value>], id: &Value) -> Option<usize> {
    ids.iter()
        .position(|candidate| candidate.as_ref().is_some_and(|c| json_eq(c, id)))
}

/// Reorder `merged`. `order` holds identities (as made by `identity`) in
/// the wanted order; `server` is the live list before patching.
pub(crate) fn normalize<F>(merged: Vec<Value>, order: &[Value], server: &[Value], identity: F) -> Vec<Value>
where
    F: Fn(&Value) -> Option<Value>,
{
    let order_ids: Vec<Option<Value>> = order.iter().cloned().map(Some).collect();
    let server_ids: Vec<Option<Value>> = server.iter().map(&identity).collect();

    // (position in order or server, position on the server, element)
    let mut ordered: Vec<(usize, Option<usize>, Value)> = Vec::new();
    let mut server_only: Vec<(usize, Option<usize>, Value)> = Vec::new();
    for element in merged {
        let id = identity(&element);
        let on_server = id.as_ref().and_then(|i| position(&server_ids, i));
        match id.as_ref().and_then(|i| position(&order_ids, i)) {
            Some(p) => ordered.push((p, on_server, element)),
            None => server_only.push((on_server.unwrap_or(usize::MAX), on_server, element)),
        }
    }
    ordered.sort_by_key(|(p, _, _)| *p);
    server_only.sort_by_key(|(p, _, _)| *p);

    let mut out = Vec::with_capacity(ordered.len() + server_only.len());
    let mut left = ordered.into_iter().peekable();
    let mut right = server_only.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, in_patch, _)), Some((_, on_server, _))) => {
                !matches!((in_patch, on_server), (Some(p), Some(s)) if s < p)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, _, element)) = next {
            out.push(element);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(list: &[Value]) -> Vec<String> {
        list.iter().map(|v| v.to_string().trim_matches('"').to_string()).collect()
    }

    fn run(merged: Value, order: Value, server: Value) -> Vec<String> {
        let merged = merged.as_array().cloned().unwrap_or_default();
        let order = order.as_array().cloned().unwrap_or_default();
        let server = server.as_array().cloned().unwrap_or_default();
        names(&normalize(merged, &order, &server, |v| Some(v.clone())))
    }

    #[test]
    fn new_elements_go_before_the_live_ones_they_meet() {
        assert_eq!(run(json!(["a", "b", "c", "d"]), json!(["d"]), json!(["a", "b", "c"])), ["d", "a", "b", "c"]);
        assert_eq!(run(json!(["a", "b", "c", "d"]), json!(["b", "d"]), json!(["a", "b", "c"])), ["a", "b", "d", "c"]);
    }

    #[test]
    fn order_list_wins_among_its_elements() {
        assert_eq!(run(json!(["a", "b", "c"]), json!(["c", "a", "b"]), json!(["a", "b", "c"])), ["c", "a", "b"]);
        // "x" is only on the server, before "b" there: it stays before "b".
        assert_eq!(run(json!(["a", "x", "b"]), json!(["b", "a"]), json!(["a", "x", "b"])), ["x", "b", "a"]);
        // "x" is only on the server, after "a": it stays after "a".
        assert_eq!(run(json!(["a", "x", "c"]), json!(["a", "c"]), json!(["a", "x"])), ["a", "c", "x"]);
        assert_eq!(run(json!(["a", "x", "b"]), json!(["a", "b"]), json!(["a", "x", "b"])), ["a", "x", "b"]);
    }
}
