//! Property tests: every envelope kind survives encode → decode, whatever its field values and however the
//! byte stream is cut into reads.

mod strategies;

use bytes::BytesMut;
use dotray_codec::proto::{BodyKind, Envelope};
use dotray_codec::{CodecError, FrameCodec};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// Encodes `envelopes` back to back into one byte stream.
fn encode_stream(envelopes: &[Envelope]) -> BytesMut {
    let mut codec = FrameCodec::new();
    let mut wire = BytesMut::new();
    for env in envelopes {
        codec.encode(env, &mut wire).expect("encodable");
    }
    wire
}

/// Feeds `wire` to a fresh decoder in pieces cut at `cuts` (sorted byte offsets); returns what came out.
fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> Result<Vec<Envelope>, CodecError> {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
        buf.extend_from_slice(&wire[start..end]);
        start = end;
        while let Some(env) = codec.decode(&mut buf)? {
            out.push(env);
        }
    }
    assert!(buf.is_empty(), "no bytes left over after whole frames");
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_body_round_trips(env in strategies::envelope()) {
        let wire = encode_stream(std::slice::from_ref(&env));
        let decoded = decode_in_pieces(&wire, &[]).expect("decodes");
        prop_assert_eq!(decoded, vec![env]);
    }

    #[test]
    fn a_stream_decodes_the_same_however_it_is_cut(
        envs in proptest::collection::vec(strategies::envelope(), 1..6),
        cut_seeds in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let wire = encode_stream(&envs);
        let mut cuts: Vec<usize> = cut_seeds.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(decode_in_pieces(&wire, &cuts).expect("decodes"), envs);
    }
}

/// One sample of every body kind, split at every possible byte boundary, and fed one byte at a time.
#[test]
fn split_at_every_boundary() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    // Draw envelopes until every kind the strategy draws (all 23) is present at least once.
    let mut runner = TestRunner::deterministic();
    let mut envs: Vec<Envelope> = Vec::new();
    let mut kinds = std::collections::HashSet::new();
    while kinds.len() < 23 {
        let env = strategies::envelope().new_tree(&mut runner).expect("strategy").current();
        if kinds.insert(env.kind()) {
            envs.push(env);
        }
    }
    let wire = encode_stream(&envs);
    for cut in 0..=wire.len() {
        assert_eq!(decode_in_pieces(&wire, &[cut]).expect("decodes"), envs, "cut at byte {cut}");
    }
    let every_byte: Vec<usize> = (1..wire.len()).collect();
    assert_eq!(decode_in_pieces(&wire, &every_byte).expect("decodes"), envs);
    assert!(kinds.contains(&Some(BodyKind::Data)) && kinds.contains(&Some(BodyKind::Hello)));
}
