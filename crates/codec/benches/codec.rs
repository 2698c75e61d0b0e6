//! Encode and decode throughput of `FrameCodec` for data frames of 64 B, 1 KiB and 64 KiB payloads.
//!
//! Run with `cargo bench -p dotray-codec`. Encoding measures `Encoder::encode` of one `Data` envelope into
//! a reused buffer; decoding measures `Decoder::decode` of one frame from a buffer (zero-copy payload).
//! Throughput is reported in payload bytes per second.

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dotray_codec::{FrameCodec, proto};
use std::hint::black_box;
use tokio_util::codec::{Decoder, Encoder};

const SIZES: [usize; 3] = [64, 1024, 64 * 1024];

fn data(size: usize) -> proto::Envelope {
    proto::Data { stream_ref: 3, seq: 123_456, hops: 4, payload: Bytes::from(vec![0x5a; size]) }.into()
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in SIZES {
        let env = data(size);
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::with_capacity(size + 64);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &env, |b, env| {
            b.iter(|| {
                buf.clear();
                codec.encode(black_box(env), &mut buf).expect("encodes");
                black_box(buf.len());
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in SIZES {
        // 64 frames back to back, decoded from one buffer per iteration, like a socket read would give.
        let mut wire = BytesMut::new();
        let mut codec = FrameCodec::new();
        for _ in 0..64 {
            codec.encode(&data(size), &mut wire).expect("encodes");
        }
        let wire = wire.freeze();
        group.throughput(Throughput::Bytes(64 * size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &wire, |b, wire| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let mut n = 0;
                while let Some(env) = codec.decode(&mut buf).expect("decodes") {
                    black_box(&env);
                    n += 1;
                }
                assert_eq!(n, 64);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
