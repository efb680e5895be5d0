//! The body of a `Breaker` record: one circuit breaker's state after a transition.
//!
//! ```text
//! u8  body format version   = 1
//! u8  state                 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled
//! u64 generation            +1 on every transition
//! u64 open_until_unix_ns    open: when probes may start; 0 in every other state
//! u64 transition_unix_ns    when the transition happened
//! u16 name_len, then that many bytes (UTF-8 breaker name)
//! ```
//! All integers little-endian; nothing may follow the name.

use super::body::{put_str16, BodyReader};

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CircuitState {
    /// Calls flow; outcomes are counted.
    #[default]
    Closed,
    /// Calls are rejected until `open_until`; then the breaker turns half-open.
    Open,
    /// A limited number of probe calls flow; their outcomes close or reopen the breaker.
    HalfOpen,
    /// Manually opened: every call is rejected until `CircuitBreaker::reset`.
    ForcedOpen,
    /// Manually disabled: every call flows and nothing is counted until
    /// `CircuitBreaker::reset`.
    Disabled,
}

/// Body format version of `Breaker` records this build writes and reads.
pub const BREAKER_BODY_VERSION: u8 = 1;

/// One decoded `Breaker` record body, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRecord<'a> {
    /// The state entered.
    pub state: CircuitState,
    /// The breaker's generation after the transition.
    pub generation: u64,
    /// For [`CircuitState::Open`]: when probes may start, ns since the Unix epoch; else 0.
    pub open_until_unix_ns: u64,
    /// When the transition happened, ns since the Unix epoch.
    pub transition_unix_ns: u64,
    /// Name of the breaker.
    pub name: &'a str,
}

impl CircuitState {
    fn to_byte(self) -> u8 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
            CircuitState::ForcedOpen => 3,
            CircuitState::Disabled => 4,
        }
    }

    fn from_byte(b: u8) -> Option<CircuitState> {
        Some(match b {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            3 => CircuitState::ForcedOpen,
            4 => CircuitState::Disabled,
            _ => return None,
        })
    }
}

impl<'a> BreakerRecord<'a> {
    /// The body bytes. The caller has checked that the name fits a `u16` length.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 1 + 8 + 8 + 8 + 2 + self.name.len());
        out.push(BREAKER_BODY_VERSION);
        out.push(self.state.to_byte());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.open_until_unix_ns.to_le_bytes());
        out.extend_from_slice(&self.transition_unix_ns.to_le_bytes());
        put_str16(&mut out, self.name);
        out
    }

    /// Decodes a body; any malformed input is an `Err` with a description, never a panic.
    pub fn decode(body: &'a [u8]) -> Result<BreakerRecord<'a>, String> {
        let mut r = BodyReader::with_version(body, BREAKER_BODY_VERSION)?;
        let b = r.u8("state")?;
        let state = CircuitState::from_byte(b).ok_or_else(|| format!("unknown state byte {b}"))?;
        let rec = BreakerRecord {
            state,
            generation: r.u64("generation")?,
            open_until_unix_ns: r.u64("open_until_unix_ns")?,
            transition_unix_ns: r.u64("transition_unix_ns")?,
            name: r.str16("breaker name")?,
        };
        r.finish()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::body::fuzz_decoder;

    fn sample() -> BreakerRecord<'static> {
        BreakerRecord {
            state: CircuitState::Open,
            generation: 7,
            open_until_unix_ns: 9,
            transition_unix_ns: 3,
            name: "db",
        }
    }

    #[test]
    fn body_bytes_are_exactly_as_documented() {
        let b = sample().encode();
        let mut want = vec![1u8, 1];
        for v in [7u64, 9, 3] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        want.extend_from_slice(&[2, 0, b'd', b'b']);
        assert_eq!(b, want);
        assert_eq!(BreakerRecord::decode(&b), Ok(sample()));
    }

    #[test]
    fn every_state_round_trips_and_unknown_states_are_rejected() {
        for s in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
            CircuitState::ForcedOpen,
            CircuitState::Disabled,
        ] {
            let rec = BreakerRecord { state: s, ..sample() };
            assert_eq!(BreakerRecord::decode(&rec.encode()), Ok(rec));
        }
        let mut b = sample().encode();
        b[1] = 5;
        assert!(BreakerRecord::decode(&b).unwrap_err().contains("unknown state"));
    }

    #[test]
    fn garbage_never_panics_and_truncations_are_rejected() {
        fuzz_decoder(&sample().encode(), |b| BreakerRecord::decode(b).is_ok());
    }
}
