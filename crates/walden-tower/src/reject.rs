//! The answers the layers give instead of calling the service: 429, 503, 400, as HTTP or gRPC.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use walden::Decision;

/// `RateLimit-Limit`: the burst, in requests (IETF draft "RateLimit header fields for HTTP").
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests still allowed right now.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the full burst is available again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// gRPC status `RESOURCE_EXHAUSTED`, the gRPC answer for a denied request.
pub const GRPC_RESOURCE_EXHAUSTED: u16 = 8;
/// gRPC status `UNAVAILABLE`, the gRPC answer while a breaker is open.
pub const GRPC_UNAVAILABLE: u16 = 14;
/// gRPC status `INVALID_ARGUMENT`, for a key the store refuses.
const GRPC_INVALID_ARGUMENT: u16 = 3;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// How a layer answers a request it does not pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Plain HTTP: the status code (429, 503, 400) and the headers, empty body.
    #[default]
    Http,
    /// gRPC: HTTP 200 with `content-type: application/grpc` and `grpc-status` /
    /// `grpc-message` in the headers (a trailers-only response), plus the same rate-limit and
    /// `Retry-After` headers, which gRPC clients see as metadata.
    Grpc,
}

/// What went wrong, in both vocabularies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reason {
    RateLimited,
    BreakerOpen,
    BadKey,
    Unavailable,
}

impl Reason {
    fn http(self) -> StatusCode {
        match self {
            Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Reason::BreakerOpen | Reason::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Reason::BadKey => StatusCode::BAD_REQUEST,
        }
    }

    fn grpc(self) -> u16 {
        match self {
            Reason::RateLimited => GRPC_RESOURCE_EXHAUSTED,
            Reason::BreakerOpen | Reason::Unavailable => GRPC_UNAVAILABLE,
            Reason::BadKey => GRPC_INVALID_ARGUMENT,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Reason::RateLimited => "rate limit exceeded",
            Reason::BreakerOpen => "circuit breaker open",
            Reason::BadKey => "rate-limit key refused by the store",
            Reason::Unavailable => "rate limiter or breaker state unavailable",
        }
    }
}

/// A response with no body that says `reason` in `protocol`'s terms.
pub(crate) fn reject<B: Default>(protocol: Protocol, reason: Reason) -> Response<B> {
    let mut res = Response::new(B::default());
    match protocol {
        Protocol::Http => *res.status_mut() = reason.http(),
        Protocol::Grpc => {
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert(GRPC_STATUS, HeaderValue::from(reason.grpc()));
            h.insert(GRPC_MESSAGE, HeaderValue::from_static(reason.message()));
        }
    }
    res
}

/// Whole seconds for a header: rounded up, so a client that waits that long is not early.
pub(crate) fn header_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Sets `Retry-After` (seconds, rounded up) when the wait is known.
pub(crate) fn set_retry_after(headers: &mut HeaderMap, retry_after: Option<Duration>) {
    if let Some(d) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(header_seconds(d)));
    }
}

/// Sets the three `RateLimit-*` headers from a decision, unless the service set its own.
pub(crate) fn set_ratelimit_headers(headers: &mut HeaderMap, d: &Decision) {
    let values = [
        (RATELIMIT_LIMIT, u64::from(d.limit)),
        (RATELIMIT_REMAINING, u64::from(d.remaining)),
        (RATELIMIT_RESET, header_seconds(d.reset_after)),
    ];
    for (name, value) in values {
        headers.entry(name).or_insert_with(|| HeaderValue::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_seconds_round_up_so_a_client_is_never_early() {
        assert_eq!(header_seconds(Duration::ZERO), 0);
        assert_eq!(header_seconds(Duration::from_nanos(1)), 1);
        assert_eq!(header_seconds(Duration::from_secs(20)), 20);
        assert_eq!(header_seconds(Duration::from_millis(20_001)), 21);
    }

    #[test]
    fn grpc_rejections_are_trailers_only_responses_with_status_200() {
        let res: Response<String> = reject(Protocol::Grpc, Reason::BreakerOpen);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[GRPC_STATUS], "14");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/grpc");
        let res: Response<String> = reject(Protocol::Http, Reason::RateLimited);
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(res.headers().get(GRPC_STATUS).is_none());
    }
}
