//! Which rate-limit bucket a request spends from.
//!
//! Every extractor prefixes its keys with what they are (`ip:`, `key:`, `user:`, `header:`),
//! so buckets of different extractors never collide in one limiter. A request the extractor
//! finds no key in spends from the one shared bucket [`ANONYMOUS_KEY`]: leaving a header out
//! must not be a way around the limit.
//!
//! The key is stored in the log as is (it is how the limit survives a restart): an API key
//! extractor therefore writes API keys into the store directory. Map secrets to an account id
//! first (an auth layer and [`AuthenticatedUser`]) if the store must not hold them.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use http::header::{HeaderName, AUTHORIZATION};
use http::{Extensions, HeaderMap, Request};

/// The bucket of requests that carry no key.
pub const ANONYMOUS_KEY: &str = "anonymous";

/// Picks the rate-limit key of a request.
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key, or `None` when the request carries none (it then spends from
    /// [`ANONYMOUS_KEY`]).
    fn extract<B>(&self, req: &Request<B>) -> Option<String>;
}

/// The IPv6 prefix length [`ClientIp`] keys by unless told otherwise, in bits: one bucket per
/// /64, the block one subscriber usually holds, so a client cannot mint fresh buckets by
/// rotating addresses inside it.
pub const DEFAULT_IPV6_PREFIX_BITS: u8 = 64;

/// Keys by the client's IP address: `ip:203.0.113.7`, or its IPv6 network
/// (`ip:2001:db8:1:2::/64`).
///
/// The address comes from the connection: axum's `ConnectInfo<SocketAddr>` (with the crate's
/// `axum` feature, on by default; serve with `into_make_service_with_connect_info::<SocketAddr>()`),
/// or a `SocketAddr` or `IpAddr` a layer before this one put in the request's extensions (with
/// tonic: copy `TcpConnectInfo::remote_addr()` there). Behind a trusted reverse proxy,
/// [`forwarded_by`](Self::forwarded_by) reads the last address the proxy appended to a header
/// instead.
#[derive(Debug, Clone)]
pub struct ClientIp {
    forwarded: Option<HeaderName>,
    ipv6_prefix_bits: u8,
}

impl Default for ClientIp {
    fn default() -> Self {
        ClientIp { forwarded: None, ipv6_prefix_bits: DEFAULT_IPV6_PREFIX_BITS }
    }
}

impl ClientIp {
    /// The connection's peer address.
    pub fn new() -> ClientIp {
        ClientIp::default()
    }

    /// The last (rightmost) address in `header` (e.g. `x-forwarded-for`), which is the one
    /// your proxy added; earlier entries are whatever the client claimed. Use it only behind
    /// a proxy that sets the header, or clients choose their own bucket.
    pub fn forwarded_by(header: HeaderName) -> ClientIp {
        ClientIp { forwarded: Some(header), ..ClientIp::default() }
    }

    /// Keys IPv6 clients by their first `bits` bits (1–128; 128 = one bucket per address).
    /// Values outside that range are taken as 128.
    pub fn ipv6_prefix_bits(self, bits: u8) -> ClientIp {
        let bits = if (1..=128).contains(&bits) { bits } else { 128 };
        ClientIp { ipv6_prefix_bits: bits, ..self }
    }

    fn peer(ext: &Extensions) -> Option<IpAddr> {
        #[cfg(feature = "axum")]
        if let Some(info) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
            return Some(info.0.ip());
        }
        ext.get::<SocketAddr>().map(SocketAddr::ip).or_else(|| ext.get::<IpAddr>().copied())
    }
}

impl KeyExtractor for ClientIp {
    fn extract<B>(&self, req: &Request<B>) -> Option<String> {
        let ip = match &self.forwarded {
            Some(name) => {
                let last = req.headers().get_all(name).iter().next_back()?.to_str().ok()?;
                last.rsplit(',').next()?.trim().parse::<IpAddr>().ok()?
            }
            None => ClientIp::peer(req.extensions())?,
        };
        // One bucket per IPv4 address, whether it arrived as IPv4 or IPv4-mapped IPv6.
        match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let bits = u32::from(self.ipv6_prefix_bits);
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                let net = Ipv6Addr::from(u128::from(v6) & mask);
                Some(if bits == 128 { format!("ip:{net}") } else { format!("ip:{net}/{bits}") })
            }
            IpAddr::V6(v6) => Some(format!("ip:{}", v6.to_ipv4_mapped()?)),
            IpAddr::V4(v4) => Some(format!("ip:{v4}")),
        }
    }
}

/// Keys by the value of a request header: `header:<name>:<value>`.
#[derive(Debug, Clone)]
pub struct Header {
    name: HeaderName,
}

impl Header {
    /// The value of `name` (the first one if repeated).
    pub fn new(name: HeaderName) -> Header {
        Header { name }
    }
}

impl KeyExtractor for Header {
    fn extract<B>(&self, req: &Request<B>) -> Option<String> {
        let value = non_empty(req.headers(), &self.name)?;
        Some(format!("header:{}:{value}", self.name))
    }
}

/// Keys by an API key: `key:<api key>`, from a header (`x-api-key` by default) or from
/// `Authorization: Bearer <key>`.
#[derive(Debug, Clone)]
pub struct ApiKey {
    header: HeaderName,
    bearer: bool,
}

impl Default for ApiKey {
    fn default() -> Self {
        ApiKey { header: HeaderName::from_static("x-api-key"), bearer: false }
    }
}

impl ApiKey {
    /// The value of `header`.
    pub fn header(header: HeaderName) -> ApiKey {
        ApiKey { header, bearer: false }
    }

    /// The token of `Authorization: Bearer <token>`.
    pub fn bearer() -> ApiKey {
        ApiKey { header: AUTHORIZATION, bearer: true }
    }
}

impl KeyExtractor for ApiKey {
    fn extract<B>(&self, req: &Request<B>) -> Option<String> {
        let value = non_empty(req.headers(), &self.header)?;
        let key = if self.bearer {
            let (scheme, token) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return None;
            }
            token.trim()
        } else {
            value
        };
        Some(format!("key:{key}"))
    }
}

/// The authenticated principal, put in the request's extensions by an authentication layer
/// that runs before the rate limit (outside it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(pub String);

/// Keys by the [`UserId`] extension: `user:<id>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthenticatedUser;

impl KeyExtractor for AuthenticatedUser {
    fn extract<B>(&self, req: &Request<B>) -> Option<String> {
        let user = req.extensions().get::<UserId>()?;
        (!user.0.is_empty()).then(|| format!("user:{}", user.0))
    }
}

/// Keys by a function of the headers and extensions (its keys are used as returned).
pub struct KeyFn<F>(pub Arc<F>);

impl<F> Clone for KeyFn<F> {
    fn clone(&self) -> Self {
        KeyFn(Arc::clone(&self.0))
    }
}

impl<F> KeyFn<F>
where
    F: Fn(&HeaderMap, &Extensions) -> Option<String> + Send + Sync + 'static,
{
    /// Wraps `f`.
    pub fn new(f: F) -> KeyFn<F> {
        KeyFn(Arc::new(f))
    }
}

impl<F> KeyExtractor for KeyFn<F>
where
    F: Fn(&HeaderMap, &Extensions) -> Option<String> + Send + Sync + 'static,
{
    fn extract<B>(&self, req: &Request<B>) -> Option<String> {
        (self.0)(req.headers(), req.extensions())
    }
}

fn non_empty<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn client_ip_reads_the_peer_address_and_folds_mapped_ipv4() {
        let mut r = req(&[]);
        assert_eq!(ClientIp::new().extract(&r), None);
        r.extensions_mut().insert("[::ffff:10.0.0.1]:80".parse::<SocketAddr>().unwrap());
        assert_eq!(ClientIp::new().extract(&r).as_deref(), Some("ip:10.0.0.1"));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_network() {
        let mut r = req(&[]);
        r.extensions_mut().insert("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse::<IpAddr>().unwrap());
        assert_eq!(ClientIp::new().extract(&r).as_deref(), Some("ip:2001:db8:1:2::/64"));
        let per_address = ClientIp::new().ipv6_prefix_bits(128);
        assert_eq!(per_address.extract(&r).as_deref(), Some("ip:2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
        let r48 = ClientIp::new().ipv6_prefix_bits(48);
        assert_eq!(r48.extract(&r).as_deref(), Some("ip:2001:db8:1::/48"));
    }

    #[test]
    fn forwarded_ip_is_the_rightmost_entry_the_proxy_appended() {
        let r = req(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2")]);
        let ip = ClientIp::forwarded_by(HeaderName::from_static("x-forwarded-for"));
        assert_eq!(ip.extract(&r).as_deref(), Some("ip:2.2.2.2"));
        assert_eq!(ip.extract(&req(&[("x-forwarded-for", "junk")])), None);
    }

    #[test]
    fn api_keys_come_from_a_header_or_a_bearer_token() {
        let r = req(&[("x-api-key", "k1"), ("authorization", "Bearer t1")]);
        assert_eq!(ApiKey::default().extract(&r).as_deref(), Some("key:k1"));
        assert_eq!(ApiKey::bearer().extract(&r).as_deref(), Some("key:t1"));
        assert_eq!(ApiKey::bearer().extract(&req(&[("authorization", "Basic x")])), None);
        assert_eq!(ApiKey::default().extract(&req(&[("x-api-key", " ")])), None);
    }

    #[test]
    fn users_headers_and_functions_have_their_own_prefixes() {
        let mut r = req(&[("x-tenant", "acme")]);
        r.extensions_mut().insert(UserId("ada".into()));
        let tenant = Header::new(HeaderName::from_static("x-tenant"));
        assert_eq!(tenant.extract(&r).as_deref(), Some("header:x-tenant:acme"));
        assert_eq!(AuthenticatedUser.extract(&r).as_deref(), Some("user:ada"));
        let f = KeyFn::new(|h: &HeaderMap, _: &Extensions| {
            h.get("x-tenant").map(|v| format!("t:{}", v.to_str().unwrap()))
        });
        assert_eq!(f.extract(&r).as_deref(), Some("t:acme"));
    }
}
