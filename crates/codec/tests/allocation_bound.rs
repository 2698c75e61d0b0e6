//! The acceptance test for bad input: 1 MiB of random bytes, a frame claiming a 4 GiB length, and a
//! frame of the default limit packed with empty list entries give typed errors, no panic, and no
//! allocation beyond a small multiple of the frame limit.
//!
//! Measured with a counting global allocator, which is why this test lives alone in its own binary (other
//! tests running in parallel threads would blur the count) and why it needs `unsafe` (implementing
//! `GlobalAlloc` is an unsafe trait; it only forwards to the system allocator and counts).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::BytesMut;
use dotray_codec::{CodecError, DEFAULT_MAX_FRAME_LEN, FrameCodec, MAX_LIST_ENTRIES};
use tokio_util::codec::Decoder;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only updates counters on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        LARGEST.fetch_max(layout.size(), Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
            PEAK.fetch_max(now, Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
        }
        LARGEST.fetch_max(new_size, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A small deterministic generator, so the test needs no randomness crate and always sees the same input.
fn pseudo_random_bytes(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn random_mebibyte_and_four_gib_frame_stay_within_the_frame_limit() {
    const MAX: usize = 64 * 1024;
    // Prepare the input before measuring: 1 MiB of noise, and after it a prefix claiming 4 GiB - 1.
    let mut input = pseudo_random_bytes(1024 * 1024, 0x9e37_79b9_7f4a_7c15);
    // After an error the decoder restarts at the next 4 KiB read. Make those restart points hold
    // prefixes small enough to be accepted (alternately under 256 B and under 64 KiB), so the decoder
    // really buffers frames and parses protobuf instead of refusing every prefix at once.
    for (i, chunk) in input.chunks_mut(4096).enumerate() {
        chunk[0] = 0;
        chunk[1] = 0;
        if i % 2 == 0 {
            chunk[2] = 0;
        }
    }
    let mut buf = BytesMut::with_capacity(8 * 1024);

    let baseline = CURRENT.load(Relaxed);
    PEAK.store(baseline, Relaxed);
    LARGEST.store(0, Relaxed);

    let mut codec = FrameCodec::with_max_frame_len(MAX);
    let (mut frames, mut errors, mut too_large) = (0usize, 0usize, 0usize);
    for piece in input.chunks(4096) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => frames += 1,
                Ok(None) => break,
                Err(e) => {
                    errors += 1;
                    if let CodecError::FrameTooLarge { .. } = e {
                        too_large += 1;
                    }
                    // A transport closes the connection here; model a new one by discarding the buffer.
                    buf.clear();
                    break;
                }
            }
        }
    }
    // Then, on a fresh connection, a prefix claiming 4 GiB - 1 bytes.
    buf.clear();
    buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0a]);
    match FrameCodec::with_max_frame_len(MAX).decode(&mut buf) {
        Err(CodecError::FrameTooLarge { len: 0xffff_ffff, max: MAX }) => {}
        other => panic!("expected FrameTooLarge for a 4 GiB prefix, got {other:?}"),
    }
    let peak = PEAK.load(Relaxed) - baseline;
    let largest = LARGEST.load(Relaxed);

    // Every restart point holds an acceptable prefix, so each error came from parsing a whole frame.
    assert!(errors > 20, "noise must produce typed errors");
    assert!(errors > too_large, "frames must reach the protobuf parser");
    // The read buffer holds at most one frame plus one read; protobuf parsing allocates within the
    // frame. Allow the read chunk and the buffer's growth policy on top of the limit.
    let bound = 2 * (MAX + 4096) + 64 * 1024;
    assert!(largest <= bound, "largest allocation {largest} B exceeds {bound} B");
    assert!(peak <= bound, "peak allocation {peak} B exceeds {bound} B");
    eprintln!("frames {frames}, errors {errors} ({too_large} too large), peak {peak} B, largest {largest} B");

    // A frame of the default limit (4 MiB) holding two million empty `NodeInfo`s (2 bytes each on
    // the wire, some 80 once decoded): refused before prost allocates the list.
    let entries = (DEFAULT_MAX_FRAME_LEN - 16) / 2;
    let mut body = vec![0x08, 0x07]; // request_id = 7
    for _ in 0..entries {
        body.extend_from_slice(&[0x12, 0x00]); // nodes: an empty entry
    }
    let mut frame = Vec::with_capacity(body.len() + 16);
    frame.extend_from_slice(&[0; 4]);
    frame.push(0x9a); // envelope field 19 (node_query_response), length-delimited
    frame.push(0x01);
    let mut len = body.len();
    while len >= 0x80 {
        frame.push((len as u8) | 0x80);
        len >>= 7;
    }
    frame.push(len as u8);
    frame.extend_from_slice(&body);
    let prefix = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&prefix.to_be_bytes());
    let mut buf = BytesMut::from(&frame[..]);
    drop((frame, body));
    let baseline = CURRENT.load(Relaxed);
    PEAK.store(baseline, Relaxed);
    match FrameCodec::new().decode(&mut buf) {
        Err(CodecError::TooManyEntries { field: 2, max: MAX_LIST_ENTRIES }) => {}
        Ok(decoded) => panic!("expected TooManyEntries, got a frame: {}", decoded.is_some()),
        Err(other) => panic!("expected TooManyEntries, got {other}"),
    }
    let peak = PEAK.load(Relaxed) - baseline;
    assert!(peak <= 64 * 1024, "refusing the list allocated {peak} B");
    eprintln!("a frame of {entries} empty entries: refused, {peak} B allocated");
}
