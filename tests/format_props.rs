//! Properties of the on-disk format, checked with generated inputs: every record, batch,
//! header, footer, identity and body written by the encoders decodes back to what was written,
//! and every decoder, fed arbitrary bytes, returns (an error or a value) without panicking.

use proptest::prelude::*;
use walden::format::breaker::BreakerRecord;
use walden::format::ratelimit::RateLimitRecord;
use walden::format::{
    decode_batch, decode_frame, encode_batch_op, encode_frame, encode_frame_with, BatchOp,
    BatchOpKind, RecordKind, SegmentHeader, SnapshotFooter, SnapshotHeader, StoreIdentity,
    Watermark,
};
use walden::snapshot::read_snapshot;
use walden::CircuitState;

fn kind() -> impl Strategy<Value = RecordKind> {
    proptest::sample::select(RecordKind::ALL.to_vec())
}

fn circuit_state() -> impl Strategy<Value = CircuitState> {
    prop_oneof![
        Just(CircuitState::Closed),
        Just(CircuitState::Open),
        Just(CircuitState::HalfOpen),
        Just(CircuitState::ForcedOpen),
        Just(CircuitState::Disabled),
    ]
}

/// A collection name, key and value within their limits.
fn op() -> impl Strategy<Value = (bool, String, String, u64, Vec<u8>)> {
    (
        any::<bool>(),
        "[A-Za-z0-9_.-]{1,64}",
        ".{1,40}",
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
}

proptest! {
    #[test]
    fn every_record_round_trips(
        salt in any::<u32>(),
        lsn in any::<u64>(),
        ts in any::<u64>(),
        kind in kind(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut buf = Vec::new();
        encode_frame(&mut buf, salt, lsn, ts, kind, &body);
        let f = decode_frame(&buf, salt).unwrap();
        prop_assert_eq!((f.lsn, f.timestamp_unix_ns, f.kind, f.body, f.len), (lsn, ts, kind as u8, &body[..], buf.len()));
        prop_assert!(decode_frame(&buf, salt.wrapping_add(1)).is_err(), "another salt must not verify");
    }

    #[test]
    fn every_record_round_trips_with_its_durable_watermark(
        salt in any::<u32>(),
        lsn in 1..u64::MAX,
        back in 1..1_000_000u64,
        epoch in any::<u64>(),
        kind in kind(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let w = Watermark { epoch, lsn: lsn.saturating_sub(back) };
        let mut buf = Vec::new();
        encode_frame_with(&mut buf, salt, lsn, 0, kind, w, &body);
        let f = decode_frame(&buf, salt).unwrap();
        prop_assert_eq!((f.lsn, f.watermark, f.body), (lsn, w, &body[..]));
    }

    #[test]
    fn every_batch_round_trips(ops in proptest::collection::vec(op(), 0..20)) {
        let mut body = (ops.len() as u32).to_le_bytes().to_vec();
        for (put, collection, key, version, value) in &ops {
            let kind = if *put { BatchOpKind::Put } else { BatchOpKind::Delete };
            let value = if *put { &value[..] } else { &[][..] };
            encode_batch_op(&mut body, &BatchOp { kind, collection, key, version: *version, value });
        }
        let decoded = decode_batch(&body).unwrap();
        prop_assert_eq!(decoded.len(), ops.len());
        for (d, (put, collection, key, version, value)) in decoded.iter().zip(&ops) {
            prop_assert_eq!(d.kind == BatchOpKind::Put, *put);
            prop_assert_eq!((d.collection, d.key, d.version), (&collection[..], &key[..], *version));
            if *put {
                prop_assert_eq!(d.value, &value[..]);
            }
        }
    }

    #[test]
    fn every_header_footer_and_identity_round_trips(
        store_id in any::<[u8; 16]>(),
        a in any::<u64>(),
        b in any::<u64>(),
        c in any::<u64>(),
    ) {
        let seg = SegmentHeader { store_id, epoch: a, segment_no: b, first_lsn: c };
        prop_assert_eq!(SegmentHeader::decode(&seg.encode()), Ok(seg));
        let snap = SnapshotHeader { store_id, epoch: a, lsn: b, entry_count: c };
        prop_assert_eq!(SnapshotHeader::decode(&snap.encode()), Ok(snap));
        let footer = SnapshotFooter { entry_count: a, entry_bytes: b };
        prop_assert_eq!(SnapshotFooter::decode(&footer.encode()), Ok(footer));
        let id = StoreIdentity { store_id, created_unix_ns: a };
        prop_assert_eq!(StoreIdentity::decode(&id.encode()), Ok(id));
    }

    #[test]
    fn every_body_round_trips(
        now in any::<u64>(),
        tat in any::<u64>(),
        name in "[A-Za-z0-9_.-]{0,64}",
        key in ".{0,40}",
        state in circuit_state(),
        generation in any::<u64>(),
    ) {
        let rl = RateLimitRecord { now_unix_ns: now, tat_unix_ns: tat, limiter: &name, key: &key };
        let bytes = rl.encode();
        prop_assert_eq!(RateLimitRecord::decode(&bytes), Ok(rl));
        let br = BreakerRecord {
            state,
            generation,
            open_until_unix_ns: if state == CircuitState::Open { tat } else { 0 },
            transition_unix_ns: now,
            name: &name,
        };
        let bytes = br.encode();
        prop_assert_eq!(BreakerRecord::decode(&bytes), Ok(br));
    }

    #[test]
    fn every_decoder_returns_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        salt in any::<u32>(),
    ) {
        let _ = decode_frame(&bytes, salt);
        let _ = decode_batch(&bytes);
        let _ = SegmentHeader::decode(&bytes);
        let _ = SnapshotHeader::decode(&bytes);
        let _ = SnapshotFooter::decode(&bytes);
        let _ = StoreIdentity::decode(&bytes);
        let _ = RateLimitRecord::decode(&bytes);
        let _ = BreakerRecord::decode(&bytes);
        let _ = read_snapshot(&bytes, None, &mut |_| Ok(()));
    }

    #[test]
    fn a_damaged_record_never_verifies(
        salt in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 1..64),
        bit in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        encode_frame(&mut buf, salt, 7, 9, RecordKind::Batch, &body);
        let i = bit.index(buf.len() * 8);
        buf[i / 8] ^= 1 << (i % 8);
        prop_assert!(decode_frame(&buf, salt).is_err(), "a flipped bit verified");
    }
}
