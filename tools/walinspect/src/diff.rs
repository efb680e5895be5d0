//! What changed between two versions of a document, path by path (`history --diff`).
//!
//! Objects are compared key by key and arrays element by element: the elements both versions
//! share at the start and at the end are matched up first, so appending to (or prepending to,
//! or removing from) an array of `n` elements is one change, not a replacement of the whole
//! array (which would make the history of a growing array quadratic in size). Paths are JSON
//! Pointers (RFC 6901: `~` is written `~0`, `/` is written `~1`).

use serde_json::Value;

/// One changed path: `(path, old, new)`, `None` for absent.
pub type Change = (String, Option<Value>, Option<Value>);

/// A path-by-path difference between two versions of a document (`None`: absent, i.e. before
/// the first put or after a delete).
pub fn json_diff(old: Option<&Value>, new: Option<&Value>) -> Vec<Change> {
    let mut out = Vec::new();
    match (old, new) {
        (Some(a), Some(b)) => diff_into(String::new(), a, b, &mut out),
        (None, None) => {}
        (a, b) => out.push((String::new(), a.cloned(), b.cloned())),
    }
    for change in &mut out {
        if change.0.is_empty() {
            // The whole document; "" is its JSON Pointer, "/" reads better.
            change.0 = "/".into();
        }
    }
    out
}

/// One reference token of a JSON Pointer.
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn diff_into(path: String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}/{}", token(k));
                match b.get(k) {
                    Some(vb) => diff_into(p, va, vb, out),
                    None => out.push((p, Some(va.clone()), None)),
                }
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                out.push((format!("{path}/{}", token(k)), None, Some(vb.clone())));
            }
        }
        (Value::Array(a), Value::Array(b)) => diff_arrays(&path, a, b, out),
        _ if old != new => out.push((path, Some(old.clone()), Some(new.clone()))),
        _ => {}
    }
}

/// Arrays: the common prefix and suffix are unchanged; in between, elements are compared
/// pairwise and the longer side's extra elements are added or removed (at their own index).
fn diff_arrays(path: &str, a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (&a[prefix..], &b[prefix..]);
    let suffix = a_rest.iter().rev().zip(b_rest.iter().rev()).take_while(|(x, y)| x == y).count();
    let a_mid = &a_rest[..a_rest.len() - suffix];
    let b_mid = &b_rest[..b_rest.len() - suffix];
    let paired = a_mid.len().min(b_mid.len());
    for i in 0..paired {
        diff_into(format!("{path}/{}", prefix + i), &a_mid[i], &b_mid[i], out);
    }
    for (i, x) in a_mid.iter().enumerate().skip(paired) {
        out.push((format!("{path}/{}", prefix + i), Some(x.clone()), None));
    }
    for (i, y) in b_mid.iter().enumerate().skip(paired) {
        out.push((format!("{path}/{}", prefix + i), None, Some(y.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_added_removed_and_changed_paths() {
        let a = json!({"name": "Ada", "age": 36, "tags": {"x": 1}});
        let b = json!({"name": "Ada L", "tags": {"x": 2}, "city": "London"});
        let d = json_diff(Some(&a), Some(&b));
        assert!(d.contains(&("/name".into(), Some(json!("Ada")), Some(json!("Ada L")))));
        assert!(d.contains(&("/age".into(), Some(json!(36)), None)));
        assert!(d.contains(&("/tags/x".into(), Some(json!(1)), Some(json!(2)))));
        assert!(d.contains(&("/city".into(), None, Some(json!("London")))));
        assert_eq!(d.len(), 4);
        assert!(json_diff(Some(&a), Some(&a)).is_empty());
        assert_eq!(json_diff(None, Some(&a)), [("/".into(), None, Some(a.clone()))]);
        assert_eq!(json_diff(Some(&a), None), [("/".into(), Some(a), None)]);
    }

    #[test]
    fn an_array_append_is_one_added_element_not_a_new_array() {
        let a = json!({"log": [1, 2, 3]});
        let b = json!({"log": [1, 2, 3, 4]});
        assert_eq!(json_diff(Some(&a), Some(&b)), [("/log/3".into(), None, Some(json!(4)))]);
        // Prepending, removing in the middle, changing one element inside an object.
        let c = json!({"log": [0, 1, 2, 3, 4]});
        assert_eq!(json_diff(Some(&b), Some(&c)), [("/log/0".into(), None, Some(json!(0)))]);
        let d = json!({"log": [0, 1, 3, 4]});
        assert_eq!(json_diff(Some(&c), Some(&d)), [("/log/2".into(), Some(json!(2)), None)]);
        let e = json!([{"n": 1}, {"n": 2}]);
        let f = json!([{"n": 1}, {"n": 5}]);
        assert_eq!(
            json_diff(Some(&e), Some(&f)),
            [("/1/n".into(), Some(json!(2)), Some(json!(5)))]
        );
        // A long array growing by one element at a time: one change per version.
        let mut prev = json!([]);
        for n in 0..200 {
            let mut next = prev.clone();
            next.as_array_mut().unwrap().push(json!(n));
            assert_eq!(json_diff(Some(&prev), Some(&next)).len(), 1);
            prev = next;
        }
    }

    #[test]
    fn paths_escape_slash_and_tilde_as_json_pointers() {
        let a = json!({"a/b": 1, "c~d": 1});
        let b = json!({"a/b": 2, "c~d": 2});
        let d = json_diff(Some(&a), Some(&b));
        assert!(d.iter().any(|c| c.0 == "/a~1b"), "{d:?}");
        assert!(d.iter().any(|c| c.0 == "/c~0d"), "{d:?}");
    }
}
