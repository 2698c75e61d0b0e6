//! [`BufferRecycler`]: reuses the large buffers that frames are carved from, once every frame carved
//! from one has been dropped.
//!
//! Both ends of a connection carve many small `Bytes` out of one large buffer: the [`crate::FrameEncoder`]
//! encodes frames one after another into a 64 KiB chunk, and a reader decodes frames out of its read
//! buffer without copying them. Each frame keeps its whole buffer alive, so when the buffer is full the
//! carver must start a new one while the old one is still in use, and the old one is freed whenever its
//! last frame goes. A stream of frames thus allocates and frees one large buffer per 64 KiB or so; the
//! memory allocator tends to give such memory back to the system and fault it in again (glibc trims
//! freed memory at the top of its heaps): hundreds of thousands of page faults for a long stream of
//! large frames (see docs/PERFORMANCE.md).
//!
//! The recycler keeps the carver's retired buffers (as empty [`BytesMut`] handles on the same memory)
//! and, when a new buffer is needed, hands back the first one that every frame has let go of, reset to
//! its full capacity, with [`BytesMut::try_reclaim`]. Only when all of them are still in use does the
//! carver allocate. The recycler holds at most `max_buffers` retired buffers of at most
//! `max_buffer_len` bytes each: that, per carver, is the memory it may keep that the allocator would
//! otherwise have had back.
//!
//! ```
//! use bytes::BytesMut;
//! use dotray_codec::BufferRecycler;
//!
//! let mut recycler = BufferRecycler::new(4, 1 << 20);
//! let mut buffer = BytesMut::with_capacity(4096);
//! buffer.extend_from_slice(b"a frame");
//! let frame = buffer.split().freeze(); // shares the buffer's memory
//! recycler.retire(buffer);
//! assert!(recycler.take(4096).is_none(), "the frame still uses it");
//! drop(frame);
//! let reused = recycler.take(4096).expect("nobody uses it any more");
//! assert!(reused.capacity() >= 4096 && reused.is_empty());
//! ```

use std::collections::VecDeque;

use bytes::BytesMut;

/// Retired buffers waiting for their frames to be dropped, for reuse. See the [module docs](self).
#[derive(Debug)]
pub struct BufferRecycler {
    retired: VecDeque<BytesMut>,
    max_buffers: usize,
    max_buffer_len: usize,
}

impl BufferRecycler {
    /// A recycler that keeps at most `max_buffers` retired buffers, none larger than `max_buffer_len`
    /// bytes (larger ones are freed as usual).
    pub fn new(max_buffers: usize, max_buffer_len: usize) -> Self {
        Self { retired: VecDeque::with_capacity(max_buffers), max_buffers, max_buffer_len }
    }

    /// Keeps `buffer` for reuse. Its contents are discarded: retire a buffer after splitting off what it
    /// holds (then it is an empty handle on the memory that the split-off parts still use). When the
    /// recycler is full, the oldest retired buffer is freed.
    pub fn retire(&mut self, mut buffer: BytesMut) {
        if self.max_buffers == 0 {
            return;
        }
        buffer.clear();
        // Its size is judged when it comes back (`take`): only then does the handle span the whole
        // allocation again.
        if self.retired.len() == self.max_buffers {
            self.retired.pop_front();
        }
        self.retired.push_back(buffer);
    }

    /// A retired buffer that nothing else uses any more, empty, with room for at least `min_len` bytes;
    /// `None` if every retired buffer is still in use (or too small).
    pub fn take(&mut self, min_len: usize) -> Option<BytesMut> {
        let at = self.retired.iter_mut().position(|b| b.try_reclaim(min_len))?;
        let buffer = self.retired.remove(at)?;
        if buffer.capacity() > self.max_buffer_len {
            // Reclaimed, but larger than this recycler keeps: let it go, and allocate anew.
            return None;
        }
        Some(buffer)
    }

    /// Frees every retired buffer (for example when the stream goes quiet).
    pub fn clear(&mut self) {
        self.retired.clear();
    }

    /// How many retired buffers are kept (in use or not).
    pub fn len(&self) -> usize {
        self.retired.len()
    }

    /// True when no buffer is kept.
    pub fn is_empty(&self) -> bool {
        self.retired.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize, len: usize) -> BytesMut {
        let mut b = BytesMut::with_capacity(capacity);
        b.extend_from_slice(&vec![7u8; len]);
        b
    }

    #[test]
    fn reuses_the_same_memory_once_its_frames_are_gone() {
        let mut recycler = BufferRecycler::new(2, 1 << 20);
        let mut buffer = filled(4096, 100);
        let base = buffer.as_ptr() as usize;
        let frame = buffer.split().freeze();
        recycler.retire(buffer);
        assert!(recycler.take(4096).is_none());
        assert_eq!(recycler.len(), 1, "a buffer in use stays retired");
        drop(frame);
        let reused = recycler.take(4000).expect("reclaimable");
        assert_eq!(reused.as_ptr() as usize, base, "the same allocation, from its start");
        assert!(reused.is_empty());
        assert!(recycler.is_empty());
    }

    #[test]
    fn skips_buffers_still_in_use_and_takes_a_free_one() {
        let mut recycler = BufferRecycler::new(4, 1 << 20);
        let mut busy = filled(4096, 10);
        let held = busy.split().freeze();
        recycler.retire(busy);
        let mut free = filled(4096, 10);
        let base = free.as_ptr() as usize;
        drop(free.split());
        recycler.retire(free);
        let got = recycler.take(4096).expect("the second is free");
        assert_eq!(got.as_ptr() as usize, base);
        assert_eq!(recycler.len(), 1);
        drop(held);
    }

    #[test]
    fn keeps_at_most_max_buffers_and_refuses_too_small_or_too_large() {
        let mut recycler = BufferRecycler::new(2, 8192);
        for _ in 0..5 {
            recycler.retire(filled(1024, 0));
        }
        assert_eq!(recycler.len(), 2);
        assert!(recycler.take(4096).is_none(), "1 KiB buffers cannot hold 4 KiB");
        let mut big = BufferRecycler::new(2, 8192);
        big.retire(BytesMut::with_capacity(64 * 1024));
        assert!(big.take(1024).is_none(), "larger than the recycler keeps");
        assert!(big.is_empty());
        let mut none = BufferRecycler::new(0, 8192);
        none.retire(filled(1024, 0));
        assert!(none.is_empty());
    }
}
