//! The document routes: `GET`/`PUT`/`DELETE /docs/{collection}/{key}` with ETags.
//!
//! The ETag of a document is its version in quotes (`"7"`), a strong validator: walden's
//! versions never repeat for a key (a document created after a delete starts above every
//! version the key had), so an ETag never matches a different document at the same key.
//!
//! | request | answer |
//! |---|---|
//! | `GET` | `200` + `ETag`, `304` if `If-None-Match` matches, `404` |
//! | `PUT` | `200` + `ETag`; `201` for a create-only `If-None-Match: *`; `412` when `If-Match` / `If-None-Match: *` does not hold |
//! | `DELETE` | `204`, `404`; `412` when `If-Match` does not hold |
//!
//! On a write, `If-None-Match` supports `*` only (create-only); a list of tags there is a `400`.
//! Weak tags (`W/"3"`) never match, as `If-Match` compares strongly.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;

use crate::docs::{DocError, DocResult, Documents, Precondition, Written};

/// The handlers' state: the document backend.
pub type Docs = Arc<dyn Documents>;

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header")
}

/// The versions named by an `If-Match` / `If-None-Match` value, or `None` for `*`. Weak tags
/// (`W/"3"`) and tags that are not ours are left out: they match nothing.
pub fn parse_etags(value: &str) -> Option<Vec<u64>> {
    if value.trim() == "*" {
        return None;
    }
    let tag = |t: &str| t.trim().strip_prefix('"')?.strip_suffix('"')?.parse::<u64>().ok();
    Some(value.split(',').filter_map(tag).collect())
}

/// The write precondition of a request's headers (`If-Match` wins over `If-None-Match`).
/// `Err` says why the request is malformed (a 400).
fn precondition(headers: &HeaderMap) -> Result<Precondition, &'static str> {
    let text = |name| -> Result<Option<&str>, &'static str> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).map_err(|_| "unreadable precondition"),
        }
    };
    if let Some(v) = text(IF_MATCH)? {
        return Ok(parse_etags(v).map_or(Precondition::IfExists, Precondition::IfMatch));
    }
    match text(IF_NONE_MATCH)? {
        None => Ok(Precondition::None),
        Some(v) if parse_etags(v).is_none() => Ok(Precondition::IfAbsent),
        Some(_) => Err("a write supports If-None-Match: * only"),
    }
}

fn bad_request(why: &'static str) -> Response {
    (StatusCode::BAD_REQUEST, why).into_response()
}

/// Maps a backend error to a status: the client's mistakes are 4xx, the store's 500 (which
/// the documents breaker counts).
fn error_response(e: DocError) -> Response {
    use walden::Error as E;
    let status = match &e {
        DocError::Store(E::InvalidName { .. }) => StatusCode::BAD_REQUEST,
        DocError::Store(E::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        DocError::Store(E::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        eprintln!("walden-service: {e}");
    }
    (status, e.to_string()).into_response()
}

/// Runs a blocking backend call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> DocResult<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(error_response),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

/// `GET /docs/{collection}/{key}`.
pub async fn get_doc(
    State(docs): State<Docs>,
    Path((collection, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let doc = match blocking(move || docs.get(&collection, &key)).await {
        Ok(Some(doc)) => doc,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(res) => return res,
    };
    let if_none_match = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if let Some(v) = if_none_match {
        if parse_etags(v).is_none_or(|tags| tags.contains(&doc.version)) {
            return (StatusCode::NOT_MODIFIED, [(ETAG, etag(doc.version))]).into_response();
        }
    }
    let json: Box<str> = doc.json.into();
    let ct = HeaderValue::from_static("application/json");
    ([(ETAG, etag(doc.version)), (CONTENT_TYPE, ct)], Body::from(String::from(json)))
        .into_response()
}

/// `PUT /docs/{collection}/{key}` with a JSON body.
pub async fn put_doc(
    State(docs): State<Docs>,
    Path((collection, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pre = match precondition(&headers) {
        Ok(pre) => pre,
        Err(why) => return bad_request(why),
    };
    let json: Box<RawValue> = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")).into_response()
        }
    };
    written(blocking(move || docs.put(&collection, &key, &json, &pre)).await)
}

/// `DELETE /docs/{collection}/{key}`.
pub async fn delete_doc(
    State(docs): State<Docs>,
    Path((collection, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let pre = match precondition(&headers) {
        Ok(pre) => pre,
        Err(why) => return bad_request(why),
    };
    written(blocking(move || docs.delete(&collection, &key, &pre)).await)
}

fn written(r: Result<Written, Response>) -> Response {
    match r {
        Ok(Written::Stored { version, created }) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, [(ETAG, etag(version))]).into_response()
        }
        Ok(Written::Deleted) => StatusCode::NO_CONTENT.into_response(),
        Ok(Written::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Ok(Written::PreconditionFailed) => StatusCode::PRECONDITION_FAILED.into_response(),
        Err(res) => res,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_lists_parse_to_versions_and_star_to_none() {
        assert_eq!(parse_etags("*"), None);
        assert_eq!(parse_etags("\"3\""), Some(vec![3]));
        assert_eq!(parse_etags("\"3\", W/\"4\", \"x\", \"5\""), Some(vec![3, 5]));
        assert_eq!(parse_etags("3"), Some(vec![]), "an unquoted tag matches nothing");
    }

    #[test]
    fn if_match_wins_and_if_none_match_on_a_write_must_be_a_star() {
        let mut h = HeaderMap::new();
        assert_eq!(precondition(&h).unwrap(), Precondition::None);
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert_eq!(precondition(&h).unwrap(), Precondition::IfAbsent);
        h.insert(IF_MATCH, HeaderValue::from_static("\"2\""));
        assert_eq!(precondition(&h).unwrap(), Precondition::IfMatch(vec![2]));
        h.insert(IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(precondition(&h).unwrap(), Precondition::IfExists);
        h.remove(IF_MATCH);
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"2\""));
        assert!(precondition(&h).is_err());
    }
}
