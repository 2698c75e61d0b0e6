//! [`OutQueue`]: what is queued for one connection and not yet handed to its writer, kept as the
//! slices the writer will write.
//!
//! Small frames are copied back to back into one buffer, so that a burst of them costs the writer one
//! slice and the senders no reference count each (a `Bytes` shared with the writer has a count that
//! the sender's core raises and the writer's core lowers again: one cache line crossing cores per
//! frame). Frames of [`COPY_FRAME_MAX`] bytes or more are queued as their parts, by reference: their
//! payload is never copied. Order is kept: a part that is not copied closes the copied run.
//!
//! The queue is plain data; [`crate::peer_sender::ConnShared`] keeps it under a lock and does the
//! waking and the byte budget.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use dotray_codec::{COPY_FRAME_MAX, OutFrame};

/// Smallest and largest allocation of the copy buffer. A connection starts small (most carry only
/// digests, pings and acks) and doubles its chunk each time a run of copied frames outgrows it; the
/// buffer is dropped whenever the writer finds the queue empty ([`OutQueue::release_idle`]), so an idle
/// connection holds none. (Every node holds a writer per neighbour: 128 nodes in one process with a
/// fixed 64 KiB each would hold ~80 MB.)
const COPY_CHUNK_MIN: usize = 4 * 1024;
const COPY_CHUNK_MAX: usize = 64 * 1024;

/// Frames queued for one connection, as the slices to write, oldest first.
#[derive(Debug)]
pub(crate) struct OutQueue {
    /// Slices ready to be taken, in order, each with the number of frames that start in it.
    slices: VecDeque<(Bytes, u64)>,
    /// Small frames copied back to back after every slice in `slices`.
    copied: BytesMut,
    /// Frames in `copied`.
    copied_frames: u64,
    /// Size of the next allocation of `copied` (see [`COPY_CHUNK_MIN`]).
    chunk: usize,
}

impl Default for OutQueue {
    fn default() -> Self {
        Self { slices: VecDeque::new(), copied: BytesMut::new(), copied_frames: 0, chunk: COPY_CHUNK_MIN }
    }
}

impl OutQueue {
    /// Queues `frame` after everything already queued: copied when shorter than [`COPY_FRAME_MAX`],
    /// else as its parts by reference (a short head is still copied).
    pub(crate) fn push(&mut self, frame: &OutFrame<'_>) {
        if frame.len() < COPY_FRAME_MAX {
            frame.put(self.room_to_copy(frame.len()));
            self.copied_frames += 1;
            return;
        }
        let head = frame.head();
        if head.len() < COPY_FRAME_MAX {
            self.room_to_copy(head.len()).extend_from_slice(head);
            self.copied_frames += 1;
        } else {
            self.close_copied();
            self.slices.push_back((frame.head_bytes(), 1));
        }
        if !frame.payload().is_empty() {
            self.close_copied();
            self.slices.push_back((frame.payload().clone(), 0));
        }
    }

    /// The copy buffer, with room for `len` more bytes in its current chunk.
    fn room_to_copy(&mut self, len: usize) -> &mut BytesMut {
        if self.copied.capacity() - self.copied.len() < len {
            // The run fills its chunk: it ends here (a slice of at most a chunk, never copied again),
            // and the next chunk is twice as large.
            if !self.copied.is_empty() {
                self.close_copied();
                self.chunk = (self.chunk * 2).min(COPY_CHUNK_MAX);
            }
            self.copied.reserve(self.chunk.max(len));
        }
        &mut self.copied
    }

    /// True when nothing is left to take.
    pub(crate) fn is_empty(&self) -> bool {
        self.slices.is_empty() && self.copied.is_empty()
    }

    /// Moves queued slices, oldest first, into `batch` until it holds `max_slices` slices or at least
    /// `max_bytes` bytes. Returns the bytes and the frames moved (a frame split over two slices counts
    /// with its first).
    pub(crate) fn take(
        &mut self,
        batch: &mut Vec<Bytes>,
        max_slices: usize,
        max_bytes: usize,
    ) -> (usize, u64) {
        self.close_copied();
        let (mut bytes, mut frames) = (0, 0);
        while batch.len() < max_slices && bytes < max_bytes {
            let Some((slice, starts)) = self.slices.pop_front() else { break };
            bytes += slice.len();
            frames += starts;
            batch.push(slice);
        }
        (bytes, frames)
    }

    /// Gives back the copy buffer's memory if nothing is queued (the writer calls it when it goes
    /// idle). What the writer still holds of it is freed when the writer drops it.
    pub(crate) fn release_idle(&mut self) {
        if self.is_empty() {
            self.copied = BytesMut::new();
        }
    }

    /// Ends the current run of copied frames: it becomes one slice.
    fn close_copied(&mut self) {
        if !self.copied.is_empty() {
            self.slices.push_back((self.copied.split().freeze(), std::mem::take(&mut self.copied_frames)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A contiguous frame of `len` bytes.
    fn frame(len: usize, tag: u8) -> OutFrame<'static> {
        OutFrame::from(Bytes::from(vec![tag; len]))
    }

    /// A payload of `len` bytes of `tag`.
    fn payload(len: usize, tag: u8) -> Bytes {
        Bytes::from(vec![tag; len])
    }

    /// A `Data` frame as the node's driver makes one: a short head, and the payload borrowed.
    fn data(payload: &Bytes) -> OutFrame<'_> {
        OutFrame::data(1, 1, 0, payload, dotray_codec::DEFAULT_MAX_FRAME_LEN).unwrap()
    }

    fn wire(frames: &[OutFrame<'_>]) -> Vec<u8> {
        frames.iter().flat_map(|f| f.to_bytes().to_vec()).collect()
    }

    fn drain(queue: &mut OutQueue, max_slices: usize, max_bytes: usize) -> (Vec<u8>, usize) {
        let (mut out, mut slices) = (Vec::new(), 0);
        let mut batch = Vec::new();
        loop {
            let (bytes, _) = queue.take(&mut batch, max_slices, max_bytes);
            if bytes == 0 {
                break;
            }
            assert_eq!(bytes, batch.iter().map(Bytes::len).sum::<usize>());
            slices += batch.len();
            out.extend(batch.drain(..).flat_map(|b| b.to_vec()));
        }
        (out, slices)
    }

    #[test]
    fn small_frames_become_one_slice_and_large_ones_stay_apart() {
        let mut queue = OutQueue::default();
        let large = payload(COPY_FRAME_MAX, 5);
        let frames = [
            frame(100, 1),
            frame(200, 2),
            frame(COPY_FRAME_MAX, 3),
            frame(50, 4),
            data(&large),
            frame(10, 6),
        ];
        for f in &frames {
            queue.push(f);
        }
        let mut batch = Vec::new();
        assert_eq!(queue.take(&mut batch, 2, usize::MAX).1, 3, "[1 2] and 3: three frames");
        let (rest, slices) = drain(&mut queue, 64, usize::MAX);
        let bytes: Vec<u8> = batch.iter().flat_map(|b| b.to_vec()).chain(rest).collect();
        assert_eq!(bytes, wire(&frames));
        assert_eq!(slices, 3, "then [4 5's head] copied, 5's payload, [6]");
        assert!(queue.is_empty());
    }

    #[test]
    fn a_large_frame_is_not_copied() {
        let mut queue = OutQueue::default();
        let big = Bytes::from(vec![7; COPY_FRAME_MAX + 1]);
        queue.push(&OutFrame::from(big.clone()));
        let mut batch = Vec::new();
        queue.take(&mut batch, 8, usize::MAX);
        assert_eq!(batch[0].as_ptr(), big.as_ptr(), "the same memory");
    }

    #[test]
    fn a_small_data_frame_joins_the_copied_run_in_order() {
        let mut queue = OutQueue::default();
        let small = payload(300, 8);
        let frames = [frame(100, 1), data(&small), frame(20, 2)];
        for f in &frames {
            queue.push(f);
        }
        let expected = wire(&frames);
        let mut batch = Vec::new();
        assert_eq!(queue.take(&mut batch, 8, usize::MAX), (expected.len(), 3));
        assert_eq!(batch.len(), 1, "one copied run");
        assert_eq!(&batch[0][..], &expected[..]);
    }

    #[test]
    fn a_large_payload_is_not_copied() {
        let mut queue = OutQueue::default();
        let large = payload(COPY_FRAME_MAX, 9);
        let frame = data(&large);
        queue.push(&frame);
        let mut batch = Vec::new();
        queue.take(&mut batch, 8, usize::MAX);
        assert_eq!(batch.len(), 2, "the head copied, the payload by reference");
        assert_eq!(batch[1].as_ptr(), frame.payload().as_ptr(), "the same memory");
    }

    proptest! {
        #[test]
        fn bytes_come_out_in_order_whatever_the_sizes_and_limits(
            lens in proptest::collection::vec((1usize..3 * COPY_FRAME_MAX, 0u8..3), 0..60),
            max_slices in 1usize..8,
            max_bytes in 1usize..20_000,
        ) {
            let mut queue = OutQueue::default();
            // Contiguous frames, large data frames (queued as parts), small data frames (copied).
            let payloads: Vec<Bytes> = lens
                .iter()
                .enumerate()
                .map(|(i, &(len, kind))| match kind {
                    1 => payload(COPY_FRAME_MAX + len, i as u8),
                    _ => payload(len % COPY_FRAME_MAX, i as u8),
                })
                .collect();
            let frames: Vec<OutFrame<'_>> = lens
                .iter()
                .zip(&payloads)
                .enumerate()
                .map(|(i, (&(len, kind), payload))| match kind {
                    0 => frame(len, i as u8),
                    _ => data(payload),
                })
                .collect();
            // Take now and then while pushing, as a writer does.
            let mut out = Vec::new();
            let mut batch = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                queue.push(f);
                if i % 7 == 3 {
                    queue.take(&mut batch, max_slices, max_bytes);
                    prop_assert!(batch.len() <= max_slices);
                    out.extend(batch.drain(..).flat_map(|b| b.to_vec()));
                }
            }
            out.extend(drain(&mut queue, max_slices, max_bytes).0);
            prop_assert_eq!(out, wire(&frames));
        }
    }
}
