//! The encrypted stream after the handshake: frames sealed into Noise transport messages ("chunks").
//!
//! ```text
//!   frames (plaintext) ─► Sealer: cut into runs of at most 65,519 bytes, each encrypted with the next
//!                          nonce ─► [len: u16 BE][ciphertext + 16-byte tag] [len][…] … ─► socket
//!   socket ─► Opener: each complete chunk authenticated and decrypted, in order ─► plaintext frames
//! ```
//!
//! The stream of frames is cut without regard for frame boundaries: many small frames share one chunk
//! (one AEAD call, 18 bytes of overhead), a large run spans several. Nonces count from 0 in each
//! direction and are never sent, so a chunk that is altered, replayed, dropped, reordered or cut short
//! fails authentication (or never completes) and the connection closes: nothing unauthenticated reaches
//! the frame decoder. Each direction has its own nonce counter and key, so the reader and writer tasks
//! share only the immutable key schedule (`snow`'s stateless transport state).

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use snow::StatelessTransportState;

/// Bytes of the length prefix of a chunk.
pub(crate) const CHUNK_HEADER_LEN: usize = 2;
/// Bytes of the authentication tag at the end of every chunk.
pub(crate) const TAG_LEN: usize = 16;
/// Longest chunk: Noise's maximum message length.
pub(crate) const MAX_CHUNK_LEN: usize = u16::MAX as usize;
/// Most plaintext bytes in one chunk.
pub(crate) const MAX_CHUNK_PLAINTEXT: usize = MAX_CHUNK_LEN - TAG_LEN;
/// Slices at least this long are sealed where they are rather than copied together with others first:
/// the copy would cost more than the chunk's extra encryption call and 18 bytes.
pub(crate) const SEAL_IN_PLACE_MIN: usize = 4 * 1024;
/// Most bytes of short slices gathered into one chunk. At 16 KiB the encryption runs at nearly its
/// full speed and the 18 bytes of a chunk are 0.1%; the gathering buffer is memory every connection
/// that sends keeps.
pub(crate) const GATHER_MAX: usize = 16 * 1024;

/// Why a chunk could not be opened. Either way the stream cannot be trusted any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The chunk failed authentication: altered, replayed, reordered, or sealed with another key.
    Unauthentic,
    /// A chunk with no plaintext: never sent by a dotray node.
    Empty,
}

/// The sending half: seals plaintext into chunks with consecutive nonces.
pub(crate) struct Sealer {
    state: Arc<StatelessTransportState>,
    nonce: u64,
    /// Small slices gathered into one chunk.
    stage: Vec<u8>,
}

/// The receiving half: opens chunks with consecutive nonces.
pub(crate) struct Opener {
    state: Arc<StatelessTransportState>,
    nonce: u64,
}

/// Sealed bytes waiting to be written, in a buffer kept from one write to the next: its memory is
/// zeroed only when it grows (a fresh or cleared `BytesMut` would be zeroed before every encryption).
#[derive(Debug, Default)]
pub(crate) struct SealedBytes {
    buf: Vec<u8>,
    len: usize,
}

impl SealedBytes {
    /// The bytes to write.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets the bytes (once written); keeps the memory.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `bytes` as they are (a plaintext handshake frame before the first chunk).
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.room(bytes.len()).copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// The next `n` bytes after those held, growing the buffer if needed; not yet counted as held.
    fn room(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() < self.len + n {
            self.buf.resize(self.len + n, 0);
        }
        &mut self.buf[self.len..self.len + n]
    }
}

/// Both halves of a finished handshake.
pub(crate) fn split(state: StatelessTransportState) -> (Sealer, Opener) {
    let state = Arc::new(state);
    (Sealer { state: state.clone(), nonce: 0, stage: Vec::new() }, Opener { state, nonce: 0 })
}

impl Sealer {
    /// Seals the concatenation of `slices` into chunks appended to `out`: [`Sealer::push`] each, then
    /// [`Sealer::finish`].
    pub(crate) fn seal<S: AsRef<[u8]>>(
        &mut self,
        slices: &[S],
        out: &mut SealedBytes,
    ) -> Result<(), snow::Error> {
        for slice in slices {
            self.push(slice.as_ref(), out)?;
        }
        self.finish(out)
    }

    /// Adds `slice` to the sealed stream. A slice of [`SEAL_IN_PLACE_MIN`] bytes or more is sealed
    /// straight from where it is (after what was gathered before it), cut into as few equal chunks as
    /// fit; a shorter one is gathered (copied) with its neighbours, up to [`GATHER_MAX`] bytes a chunk.
    /// Fails only if the nonce would wrap (after 2^64 chunks).
    pub(crate) fn push(&mut self, slice: &[u8], out: &mut SealedBytes) -> Result<(), snow::Error> {
        if slice.len() >= SEAL_IN_PLACE_MIN {
            self.finish(out)?;
            let size = slice.len().div_ceil(slice.len().div_ceil(MAX_CHUNK_PLAINTEXT));
            for chunk in slice.chunks(size) {
                self.seal_chunk(chunk, out)?;
            }
            return Ok(());
        }
        if self.stage.len() + slice.len() > GATHER_MAX {
            self.finish(out)?;
        }
        self.stage.extend_from_slice(slice);
        Ok(())
    }

    /// Seals what [`Sealer::push`] gathered, if anything.
    pub(crate) fn finish(&mut self, out: &mut SealedBytes) -> Result<(), snow::Error> {
        self.flush_stage(out)
    }

    fn flush_stage(&mut self, out: &mut SealedBytes) -> Result<(), snow::Error> {
        if self.stage.is_empty() {
            return Ok(());
        }
        let stage = std::mem::take(&mut self.stage);
        let sealed = self.seal_chunk(&stage, out);
        self.stage = stage;
        self.stage.clear();
        sealed
    }

    fn seal_chunk(&mut self, plaintext: &[u8], out: &mut SealedBytes) -> Result<(), snow::Error> {
        let len = plaintext.len() + TAG_LEN;
        let chunk = out.room(CHUNK_HEADER_LEN + len);
        // `len` is at most MAX_CHUNK_LEN: callers cut plaintext at MAX_CHUNK_PLAINTEXT.
        chunk[..CHUNK_HEADER_LEN].copy_from_slice(&(len as u16).to_be_bytes());
        self.state.write_message(self.nonce, plaintext, &mut chunk[CHUNK_HEADER_LEN..])?;
        self.nonce += 1;
        out.len += CHUNK_HEADER_LEN + len;
        Ok(())
    }

    /// Gives back the staging buffer's memory (after a burst).
    pub(crate) fn shrink(&mut self) {
        self.stage = Vec::new();
    }
}

impl Opener {
    /// Opens every complete chunk at the front of `sealed` and appends its plaintext to `plain`,
    /// calling `make_room(plain, n)` first so that `plain` has room for `n` more bytes. A partial chunk
    /// stays in `sealed`. Returns how many plaintext bytes were added.
    pub(crate) fn open(
        &mut self,
        sealed: &mut BytesMut,
        plain: &mut BytesMut,
        mut make_room: impl FnMut(&mut BytesMut, usize),
    ) -> Result<usize, OpenError> {
        let mut added = 0;
        while let Some(n) = self.open_one(sealed, plain, &mut make_room)? {
            added += n;
        }
        Ok(added)
    }

    /// Opens the chunk at the front of `sealed`, if all of it is there (see [`Opener::open`]); returns
    /// the number of plaintext bytes it added.
    pub(crate) fn open_one(
        &mut self,
        sealed: &mut BytesMut,
        plain: &mut BytesMut,
        make_room: &mut impl FnMut(&mut BytesMut, usize),
    ) -> Result<Option<usize>, OpenError> {
        let Some(len) = declared_len(sealed).filter(|len| sealed.len() >= CHUNK_HEADER_LEN + len) else {
            return Ok(None);
        };
        if len <= TAG_LEN {
            return Err(OpenError::Empty);
        }
        let ciphertext = &sealed[CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + len];
        make_room(plain, len - TAG_LEN);
        let start = plain.len();
        plain.resize(start + len - TAG_LEN, 0);
        match self.state.read_message(self.nonce, ciphertext, &mut plain[start..]) {
            Ok(n) => plain.truncate(start + n),
            Err(_) => {
                plain.truncate(start);
                return Err(OpenError::Unauthentic);
            }
        }
        self.nonce += 1;
        sealed.advance(CHUNK_HEADER_LEN + len);
        Ok(Some(len - TAG_LEN))
    }
}

/// The ciphertext length that the chunk at the front of `sealed` declares, once its header is there.
pub(crate) fn declared_len(sealed: &[u8]) -> Option<usize> {
    let header = sealed.get(..CHUNK_HEADER_LEN)?;
    Some(usize::from(u16::from_be_bytes([header[0], header[1]])))
}

/// Bytes still missing of the chunk at the front of `sealed` (0 when it is complete or not begun).
pub(crate) fn chunk_rest(sealed: &[u8]) -> usize {
    declared_len(sealed).map_or(0, |len| (CHUNK_HEADER_LEN + len).saturating_sub(sealed.len()))
}

#[cfg(test)]
mod tests {
    use dotray_codec::SecretKey;
    use proptest::prelude::*;

    use super::*;
    use crate::noise::LocalIdentity;

    /// Two connected channel ends: (dialer's sealer, acceptor's opener, acceptor's sealer, dialer's opener).
    fn channel() -> (Sealer, Opener, Sealer, Opener) {
        let (a, b) = (
            LocalIdentity::new(SecretKey::generate(), None).unwrap(),
            LocalIdentity::new(SecretKey::generate(), None).unwrap(),
        );
        let (mut i, mut r) = (a.start(true).unwrap(), b.start(false).unwrap());
        let (mut wire, mut payload) = ([0u8; 1024], [0u8; 1024]);
        let n = i.write_message(&[], &mut wire).unwrap();
        r.read_message(&wire[..n], &mut payload).unwrap();
        let n = r.write_message(&[], &mut wire).unwrap();
        i.read_message(&wire[..n], &mut payload).unwrap();
        let n = i.write_message(&[], &mut wire).unwrap();
        r.read_message(&wire[..n], &mut payload).unwrap();
        let (is, io) = split(i.into_stateless_transport_mode().unwrap());
        let (rs, ro) = split(r.into_stateless_transport_mode().unwrap());
        (is, ro, rs, io)
    }

    fn sealed(sealer: &mut Sealer, slices: &[&[u8]]) -> BytesMut {
        let mut out = SealedBytes::default();
        sealer.seal(slices, &mut out).unwrap();
        BytesMut::from(out.as_slice())
    }

    fn open_all(opener: &mut Opener, sealed: &mut BytesMut) -> Result<BytesMut, OpenError> {
        let mut plain = BytesMut::new();
        opener.open(sealed, &mut plain, |p, n| p.reserve(n))?;
        Ok(plain)
    }

    #[test]
    fn small_slices_share_a_chunk_and_large_ones_are_sealed_in_place() {
        let (mut sealer, mut opener, _, _) = channel();
        let big = vec![7u8; 2 * MAX_CHUNK_PLAINTEXT + 10];
        let slices: Vec<&[u8]> = vec![b"ab", b"cde", &big, b"f"];
        let sealed = sealed(&mut sealer, &slices);
        // "abcde", then `big` in three equal chunks (not two full ones and a 10-byte one), then "f".
        let mut lens = Vec::new();
        let mut rest = &sealed[..];
        while let Some(len) = declared_len(rest) {
            lens.push(len - TAG_LEN);
            rest = &rest[CHUNK_HEADER_LEN + len..];
        }
        let third = big.len().div_ceil(3);
        assert_eq!(lens, vec![5, third, third, big.len() - 2 * third, 1]);
        let mut sealed = sealed;
        let plain = open_all(&mut opener, &mut sealed).unwrap();
        assert_eq!(&plain[..], &slices.concat()[..]);
        assert!(sealed.is_empty());
    }

    #[test]
    fn a_partial_chunk_waits_for_the_rest() {
        let (mut sealer, mut opener, _, _) = channel();
        let wire = sealed(&mut sealer, &[b"hello world"]);
        let mut sealed = BytesMut::from(&wire[..5]);
        assert_eq!(chunk_rest(&sealed), wire.len() - 5);
        assert_eq!(open_all(&mut opener, &mut sealed).unwrap().len(), 0);
        sealed.extend_from_slice(&wire[5..]);
        assert_eq!(&open_all(&mut opener, &mut sealed).unwrap()[..], b"hello world");
    }

    #[test]
    fn altered_replayed_reordered_and_foreign_chunks_fail() {
        let (mut sealer, mut opener, mut other_sealer, _) = channel();
        let first = sealed(&mut sealer, &[b"first"]);
        let mut second = sealed(&mut sealer, &[b"second"]);

        let mut flipped = first.clone();
        flipped[4] ^= 0x01;
        assert_eq!(open_all(&mut opener, &mut flipped), Err(OpenError::Unauthentic), "one bit flipped");
        assert_eq!(open_all(&mut opener, &mut second.clone()), Err(OpenError::Unauthentic), "reordered");
        assert_eq!(&open_all(&mut opener, &mut first.clone()).unwrap()[..], b"first");
        assert_eq!(open_all(&mut opener, &mut first.clone()), Err(OpenError::Unauthentic), "replayed");
        let mut foreign = sealed(&mut other_sealer, &[b"second"]);
        assert_eq!(
            open_all(&mut opener, &mut foreign),
            Err(OpenError::Unauthentic),
            "the other direction's key"
        );
        assert_eq!(
            &open_all(&mut opener, &mut second).unwrap()[..],
            b"second",
            "the stream resumes in order"
        );

        let mut empty = BytesMut::from(&[0u8, 16][..]);
        empty.extend_from_slice(&[0; 16]);
        assert_eq!(open_all(&mut opener, &mut empty), Err(OpenError::Empty));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn any_cut_of_the_stream_opens_to_the_same_bytes(
            lens in proptest::collection::vec(0usize..70_000, 1..6),
            cuts in proptest::collection::vec(1usize..100_000, 1..8),
        ) {
            let (mut sealer, mut opener, _, _) = channel();
            let slices: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
            let parts: Vec<&[u8]> = slices.iter().map(Vec::as_slice).collect();
            let mut wire = sealed(&mut sealer, &parts);
            let (mut sealed, mut plain) = (BytesMut::new(), BytesMut::new());
            let mut cuts = cuts.into_iter().cycle();
            while !wire.is_empty() {
                let take = cuts.next().unwrap().min(wire.len());
                sealed.extend_from_slice(&wire.split_to(take));
                opener.open(&mut sealed, &mut plain, |p, n| p.reserve(n)).unwrap();
            }
            prop_assert!(sealed.is_empty());
            prop_assert_eq!(&plain[..], &slices.concat()[..]);
        }
    }
}
