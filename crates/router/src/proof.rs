//! What proves a broadcast message to be its origin's: signed [`Manifest`]s over payload hashes, the
//! signed origin address of a stream declaration, and the [`Signer`] that makes and checks signatures.
//!
//! The scheme, and what it guarantees against a hostile neighbour, is told once in the crate docs
//! (*Only an origin can speak for its stream*). This module holds its pieces: what exactly is signed
//! (fixed-layout messages with a domain tag, so a signature made for one purpose never verifies for
//! another), and the two signers: [`Ed25519Signer`] for real nodes and [`InsecureSigner`] for the
//! simulator and tests, where nobody attacks and real signatures would cost most of the run time.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dotray_codec::{NodeId, SIGNATURE_LEN, SecretKey};

use crate::core::{MAX_SEQ, StreamId};
use crate::key_cache::KeyCache;

/// A signature: 64 bytes (Ed25519's size; [`InsecureSigner`] fills the same shape).
pub type Signature = [u8; SIGNATURE_LEN];

/// Length of one payload hash in a manifest (see [`payload_hash`]). Truncating it would let an origin
/// find two payloads with one hash (equivocation nobody could see) far sooner than a forger finds a
/// second preimage; 32 bytes rule out both.
pub const HASH_LEN: usize = 32;

/// Payloads shorter than this are hashed with SHA-256, longer ones with BLAKE3 (see
/// [`payload_hash`]).
pub const BLAKE3_FROM_LEN: usize = 2_048;

/// Messages per group of a manifest (see [`group_digest`]): the origin digests each run of this many
/// consecutive payloads from the manifest's first (the last run may be shorter), so that a relay
/// receiving them back to back checks them with one BLAKE3 hash over all of them, which hashes many
/// 1 KiB chunks at once, instead of one hash per payload. A group's digest costs each link a byte per
/// message (32 bytes per 32 messages); sixteen 1 KiB payloads already fill the widest SIMD lanes
/// BLAKE3 uses, so a larger group would save wire bytes only, and a smaller one would hash no faster.
/// A relay holds a group's payloads only while they arrive back to back.
pub const GROUP_LEN: usize = 32;

/// The most messages one manifest may cover. Bounds a manifest to 32 KiB of hashes, whatever a peer
/// sends; the origin's own batches are `Config::max_batch_len` (at most this).
pub const MAX_MANIFEST_LEN: usize = 1_024;

/// Domain tags: the first bytes of every signed message, one per kind of statement.
const MANIFEST_TAG: &[u8; 24] = b"dotray manifest v1\0\0\0\0\0\0";
const STREAM_DECL_TAG: &[u8; 24] = b"dotray stream decl v1\0\0\0";
const BEACON_TAG: &[u8; 24] = b"dotray tree beacon v1\0\0\0";

/// The hash of a payload, as a manifest lists it: SHA-256 for payloads shorter than
/// [`BLAKE3_FROM_LEN`], BLAKE3 from there on.
///
/// Every node hashes every payload it receives, so this is on the hot path. BLAKE3 hashes 1 KiB
/// chunks in parallel, but within one chunk it is serial: below two chunks, SHA-256 on the CPU's
/// SHA extensions is faster; from two chunks on BLAKE3 is, and by far on large payloads. Both give
/// 256 bits, and the length picks the function, so a payload has exactly one hash: finding another
/// payload with a listed hash means a second preimage of SHA-256 or BLAKE3.
pub fn payload_hash(payload: &[u8]) -> [u8; HASH_LEN] {
    if payload.len() < BLAKE3_FROM_LEN {
        use sha2::Digest;
        sha2::Sha256::digest(payload).into()
    } else {
        *blake3::hash(payload).as_bytes()
    }
}

/// The digest of one group of a manifest: BLAKE3 over each payload's length (4 bytes, little
/// endian) and bytes, laid end to end, in sequence order. The lengths make the split between
/// payloads part of what is hashed, so no other run of payloads has the same digest unless BLAKE3
/// has a collision. `scratch` is reused between calls (laid end to end, the payloads hash in
/// parallel).
pub fn group_digest<'a>(
    payloads: impl IntoIterator<Item = &'a [u8]>,
    scratch: &mut Vec<u8>,
) -> [u8; HASH_LEN] {
    scratch.clear();
    for payload in payloads {
        // A payload is bounded by the frame limit, far below 4 GiB.
        scratch.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        scratch.extend_from_slice(payload);
    }
    *blake3::hash(scratch).as_bytes()
}

/// An origin's signed statement: "messages `first`, `first + 1`, … of `stream` have these payload
/// hashes" and, optionally, "these [`group_digest`]s of runs of [`GROUP_LEN`] of them". Shared
/// (`Arc`) by every retained message it covers, so repairs can send it again.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The stream (origin and epoch).
    pub stream: StreamId,
    /// Sequence number of the first message covered, from 1.
    pub first: u64,
    /// The payload hashes, [`HASH_LEN`] bytes each, concatenated: one per message from `first` on.
    pub hashes: Bytes,
    /// The origin's signature over [`Manifest::signed_message`].
    pub signature: Signature,
    /// Empty, or one [`group_digest`] ([`HASH_LEN`] bytes) per group of [`GROUP_LEN`] messages from
    /// `first`, concatenated.
    pub groups: Bytes,
}

/// Why a received manifest is malformed (before any signature is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// `first` is 0.
    #[error("manifest starting at sequence number 0")]
    ZeroFirst,
    /// The hashes are not a whole number of [`HASH_LEN`]-byte hashes, or there are none.
    #[error("manifest hashes of {0} bytes")]
    BadHashes(usize),
    /// More than [`MAX_MANIFEST_LEN`] hashes.
    #[error("manifest of {0} messages exceeds the limit")]
    TooLong(usize),
    /// The covered run reaches past [`MAX_SEQ`].
    #[error("manifest reaching past the largest sequence number")]
    PastMaxSeq,
    /// A signature that is not [`dotray_codec::SIGNATURE_LEN`] bytes.
    #[error("signature of {0} bytes")]
    BadSignatureLen(usize),
    /// Group digests present, but not one per group of [`GROUP_LEN`] messages.
    #[error("manifest group digests of {0} bytes")]
    BadGroups(usize),
}

impl Manifest {
    /// Signs a manifest of `stream` for the payloads `hashes` (concatenated), the first of them
    /// sequence number `first`. `signer` must be the stream's origin.
    pub fn sign(signer: &dyn Signer, stream: StreamId, first: u64, hashes: Bytes) -> Self {
        Self::sign_with_groups(signer, stream, first, hashes, Bytes::new())
    }

    /// Signs a manifest of `stream` for `payloads`, the first of them sequence number `first`: how an
    /// origin signs its batches. It lists their hashes and, when every payload is shorter than
    /// [`BLAKE3_FROM_LEN`], their group digests (longer payloads are hashed with BLAKE3 on their own,
    /// as fast per byte as a group, so receivers never prove them a group at a time).
    pub fn sign_payloads(signer: &dyn Signer, stream: StreamId, first: u64, payloads: &[Bytes]) -> Self {
        let hashes: Vec<u8> = payloads.iter().flat_map(|p| payload_hash(p)).collect();
        let mut groups = Vec::new();
        if payloads.iter().all(|p| p.len() < BLAKE3_FROM_LEN) {
            let mut scratch = Vec::new();
            for group in payloads.chunks(GROUP_LEN) {
                groups.extend_from_slice(&group_digest(group.iter().map(|p| &p[..]), &mut scratch));
            }
        }
        Self::sign_with_groups(signer, stream, first, hashes.into(), groups.into())
    }

    fn sign_with_groups(
        signer: &dyn Signer,
        stream: StreamId,
        first: u64,
        hashes: Bytes,
        groups: Bytes,
    ) -> Self {
        let mut manifest = Self { stream, first, hashes, signature: [0; SIGNATURE_LEN], groups };
        manifest.signature = signer.sign(&manifest.signed_message());
        manifest
    }

    /// A manifest as received, with its shape checked (not its signature: see
    /// [`Manifest::verify`]).
    pub fn parse(
        stream: StreamId,
        first: u64,
        hashes: Bytes,
        groups: Bytes,
        signature: &[u8],
    ) -> Result<Self, ManifestError> {
        let signature: Signature =
            signature.try_into().map_err(|_| ManifestError::BadSignatureLen(signature.len()))?;
        if first == 0 {
            return Err(ManifestError::ZeroFirst);
        }
        if hashes.is_empty() || hashes.len() % HASH_LEN != 0 {
            return Err(ManifestError::BadHashes(hashes.len()));
        }
        let count = hashes.len() / HASH_LEN;
        if count > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLong(count));
        }
        if first.checked_add(count as u64 - 1).is_none_or(|last| last > MAX_SEQ) {
            return Err(ManifestError::PastMaxSeq);
        }
        if !groups.is_empty() && groups.len() != count.div_ceil(GROUP_LEN) * HASH_LEN {
            return Err(ManifestError::BadGroups(groups.len()));
        }
        Ok(Self { stream, first, hashes, signature, groups })
    }

    /// Number of messages covered (at least 1 for a parsed or signed manifest).
    pub fn count(&self) -> u64 {
        (self.hashes.len() / HASH_LEN) as u64
    }

    /// Sequence number of the last message covered.
    pub fn last(&self) -> u64 {
        self.first + self.count().saturating_sub(1)
    }

    /// Whether `seq` is one of the messages covered.
    pub fn covers(&self, seq: u64) -> bool {
        self.first <= seq && seq <= self.last()
    }

    /// The hash listed for `seq`, if covered.
    pub fn hash_of(&self, seq: u64) -> Option<&[u8]> {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.hashes.get(index * HASH_LEN..(index + 1) * HASH_LEN)
    }

    /// Whether `payload` is what the origin signed for `seq`.
    pub fn proves(&self, seq: u64, payload: &[u8]) -> bool {
        self.hash_of(seq).is_some_and(|hash| hash == payload_hash(payload))
    }

    /// The group `seq` belongs to, as the sequence numbers of its first and last message, if this
    /// manifest covers `seq` and carries group digests.
    pub fn group_of(&self, seq: u64) -> Option<(u64, u64)> {
        if self.groups.is_empty() || !self.covers(seq) {
            return None;
        }
        let start = self.first + (seq - self.first) / GROUP_LEN as u64 * GROUP_LEN as u64;
        Some((start, (start + GROUP_LEN as u64 - 1).min(self.last())))
    }

    /// Whether `payloads` are what the origin signed for the whole group that begins at `start` (see
    /// [`Manifest::group_of`]): one [`group_digest`] instead of a hash per payload.
    pub fn proves_group<'a>(
        &self,
        start: u64,
        payloads: impl IntoIterator<Item = &'a [u8]>,
        scratch: &mut Vec<u8>,
    ) -> bool {
        let Some((first, last)) = self.group_of(start).filter(|(first, _)| *first == start) else {
            return false;
        };
        let index = ((first - self.first) / GROUP_LEN as u64) as usize;
        let Some(listed) = self.groups.get(index * HASH_LEN..(index + 1) * HASH_LEN) else { return false };
        let mut count = 0u64;
        let digest = group_digest(payloads.into_iter().inspect(|_| count += 1), scratch);
        count == last - first + 1 && digest == listed
    }

    /// The bytes the origin signs: a domain tag, the stream, the first sequence number, the count, and
    /// the BLAKE3 hash of the concatenated payload hashes followed by the group digests (so a
    /// signature costs the same however many messages it covers; the count fixes where the hashes
    /// end, so none can pass for a group digest or the other way round).
    pub fn signed_message(&self) -> [u8; 24 + 32 + 8 + 8 + 8 + 32] {
        let mut out = [0u8; 24 + 32 + 8 + 8 + 8 + 32];
        out[..24].copy_from_slice(MANIFEST_TAG);
        out[24..56].copy_from_slice(&self.stream.origin.to_bytes());
        out[56..64].copy_from_slice(&self.stream.epoch.to_be_bytes());
        out[64..72].copy_from_slice(&self.first.to_be_bytes());
        out[72..80].copy_from_slice(&self.count().to_be_bytes());
        let mut lists = blake3::Hasher::new();
        lists.update(&self.hashes);
        lists.update(&self.groups);
        out[80..].copy_from_slice(lists.finalize().as_bytes());
        out
    }

    /// Whether the stream's origin signed this manifest.
    pub fn verify(&self, signer: &dyn Signer) -> bool {
        signer.verify(&self.stream.origin, &self.signed_message(), &self.signature)
    }

    /// Bytes this manifest occupies, for memory bounds.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.hashes.len() + self.groups.len()
    }
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Manifest({:?}/{} {}..={})", self.stream.origin, self.stream.epoch, self.first, self.last())
    }
}

/// The bytes an origin signs to bind its listen address to its stream (carried by every
/// `StreamDecl`): a domain tag, the stream, and the address text.
pub fn stream_decl_message(stream: StreamId, origin_addr: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + 32 + 8 + origin_addr.len());
    out.extend_from_slice(STREAM_DECL_TAG);
    out.extend_from_slice(&stream.origin.to_bytes());
    out.extend_from_slice(&stream.epoch.to_be_bytes());
    out.extend_from_slice(origin_addr.as_bytes());
    out
}

/// The bytes a tree root signs for one round of its beacon (see the crate docs, *The tree beacon*):
/// a domain tag, the root's stream (its id and epoch), the round and whether the root is a
/// publisher. The hop count and the link flag change at every hop and are not signed.
pub fn beacon_message(root: StreamId, round: u64, publisher: bool) -> [u8; 24 + 32 + 8 + 8 + 1] {
    let mut out = [0u8; 24 + 32 + 8 + 8 + 1];
    out[..24].copy_from_slice(BEACON_TAG);
    out[24..56].copy_from_slice(&root.origin.to_bytes());
    out[56..64].copy_from_slice(&root.epoch.to_be_bytes());
    out[64..72].copy_from_slice(&round.to_be_bytes());
    out[72] = u8::from(publisher);
    out
}

/// Makes this node's signatures and checks other nodes'. The router signs its own manifests with it
/// and verifies every manifest it relays or delivers.
pub trait Signer: fmt::Debug + Send + Sync {
    /// The node whose key signs: the origin of this node's stream.
    fn node_id(&self) -> NodeId;
    /// Signs `message` with this node's key.
    fn sign(&self, message: &[u8]) -> Signature;
    /// Whether `signature` is `signer`'s signature of `message`.
    fn verify(&self, signer: &NodeId, message: &[u8], signature: &Signature) -> bool;
}

/// The signer of real nodes: Ed25519 with the node's secret key (its public key is the node id).
/// It checks signatures with each origin's key parsed once ([`dotray_codec::PublicKey::verify`],
/// which accepts what only the key's holder can sign, as the strict check does).
#[derive(Debug)]
pub struct Ed25519Signer {
    key: SecretKey,
    /// Origins' parsed keys; a lock because the trait's methods take `&self` (one node uses it).
    keys: Mutex<KeyCache>,
}

impl Ed25519Signer {
    /// A signer with `key`; wrap it in an `Arc` to hand to the router.
    pub fn new(key: SecretKey) -> Arc<Self> {
        Arc::new(Self { key, keys: Mutex::new(KeyCache::new()) })
    }
}

impl Signer for Ed25519Signer {
    fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }

    fn verify(&self, signer: &NodeId, message: &[u8], signature: &Signature) -> bool {
        let key = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(signer);
        key.is_some_and(|key| key.verify(message, signature))
    }
}

/// A stand-in signer for the simulator and tests: a "signature" is a keyless BLAKE3 hash of the
/// signer's id and the message, so **anyone can forge one**. It keeps every manifest, batch and repair
/// step of the protocol running as in production (and tells a tampered manifest or payload from a
/// good one), at a small fraction of Ed25519's cost. Never use it on a network.
#[derive(Debug, Clone)]
pub struct InsecureSigner {
    id: NodeId,
}

impl InsecureSigner {
    /// A stand-in signer for node `id`.
    pub fn new(id: NodeId) -> Arc<Self> {
        Arc::new(Self { id })
    }

    fn signature(signer: &NodeId, message: &[u8]) -> Signature {
        let mut hasher = blake3::Hasher::new_derive_key("dotray insecure test signature");
        hasher.update(&signer.to_bytes());
        hasher.update(message);
        let mut out = [0u8; SIGNATURE_LEN];
        hasher.finalize_xof().fill(&mut out);
        out
    }
}

impl Signer for InsecureSigner {
    fn node_id(&self) -> NodeId {
        self.id
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Self::signature(&self.id, message)
    }

    fn verify(&self, signer: &NodeId, message: &[u8], signature: &Signature) -> bool {
        Self::signature(signer, message) == *signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(key: &SecretKey) -> StreamId {
        StreamId { origin: key.node_id(), epoch: 9 }
    }

    fn hashes(payloads: &[&[u8]]) -> Bytes {
        payloads.iter().flat_map(|p| payload_hash(p)).collect::<Vec<u8>>().into()
    }

    #[test]
    fn the_payload_hash_is_sha256_below_two_kib_and_blake3_from_there() {
        use sha2::Digest;
        let short = vec![5u8; BLAKE3_FROM_LEN - 1];
        let long = vec![5u8; BLAKE3_FROM_LEN];
        assert_eq!(payload_hash(&short), <[u8; 32]>::from(sha2::Sha256::digest(&short)));
        assert_eq!(payload_hash(&long), *blake3::hash(&long).as_bytes());
        assert_ne!(payload_hash(b""), [0; 32]);
    }

    #[test]
    fn a_signed_manifest_proves_exactly_its_payloads() {
        let key = SecretKey::generate();
        let signer = Ed25519Signer::new(key.clone());
        let m = Manifest::sign(&*signer, stream(&key), 5, hashes(&[b"a", b"b", b"c"]));
        assert!(m.verify(&*signer));
        assert_eq!((m.first, m.last(), m.count()), (5, 7, 3));
        assert!(m.proves(5, b"a") && m.proves(6, b"b") && m.proves(7, b"c"));
        assert!(!m.proves(6, b"a"), "right payload, wrong seq");
        assert!(!m.proves(8, b"c") && !m.proves(4, b"a"), "outside the run");
        assert!(!m.proves(5, b"a "), "altered payload");
    }

    #[test]
    fn any_change_to_a_manifest_breaks_its_signature() {
        let key = SecretKey::generate();
        let signer = Ed25519Signer::new(key.clone());
        let m = Manifest::sign(&*signer, stream(&key), 5, hashes(&[b"a", b"b"]));
        let other = SecretKey::generate();
        let variants = [
            Manifest { first: 6, ..m.clone() },
            Manifest { stream: StreamId { epoch: 10, ..m.stream }, ..m.clone() },
            Manifest { stream: StreamId { origin: other.node_id(), ..m.stream }, ..m.clone() },
            Manifest { hashes: hashes(&[b"a", b"x"]), ..m.clone() },
            Manifest { hashes: hashes(&[b"a"]), ..m.clone() },
        ];
        for forged in variants {
            assert!(!forged.verify(&*signer), "{forged:?} verified");
        }
        // Signed by someone else for the origin's stream.
        let by_other = Manifest::sign(&*Ed25519Signer::new(other), stream(&key), 5, hashes(&[b"a", b"b"]));
        assert!(!by_other.verify(&*signer));
    }

    #[test]
    fn parse_checks_the_shape_before_anything_is_verified() {
        let s = stream(&SecretKey::generate());
        let sig = [0u8; 64];
        assert_eq!(Manifest::parse(s, 0, hashes(&[b"a"]), Bytes::new(), &sig), Err(ManifestError::ZeroFirst));
        assert_eq!(Manifest::parse(s, 1, Bytes::new(), Bytes::new(), &sig), Err(ManifestError::BadHashes(0)));
        assert_eq!(
            Manifest::parse(s, 1, Bytes::from_static(&[0; 33]), Bytes::new(), &sig),
            Err(ManifestError::BadHashes(33))
        );
        let too_many = Bytes::from(vec![0u8; HASH_LEN * (MAX_MANIFEST_LEN + 1)]);
        assert_eq!(
            Manifest::parse(s, 1, too_many, Bytes::new(), &sig),
            Err(ManifestError::TooLong(MAX_MANIFEST_LEN + 1))
        );
        assert_eq!(
            Manifest::parse(s, MAX_SEQ, hashes(&[b"a", b"b"]), Bytes::new(), &sig),
            Err(ManifestError::PastMaxSeq)
        );
        assert_eq!(
            Manifest::parse(s, 1, hashes(&[b"a"]), Bytes::new(), &sig[..63]),
            Err(ManifestError::BadSignatureLen(63))
        );
        assert!(Manifest::parse(s, MAX_SEQ, hashes(&[b"a"]), Bytes::new(), &sig).is_ok());
        // Group digests: none, or exactly one per group of `GROUP_LEN`.
        let seventeen: Vec<&[u8]> = vec![b"p"; GROUP_LEN + 1];
        let two_groups = Bytes::from(vec![0u8; 2 * HASH_LEN]);
        assert!(Manifest::parse(s, 1, hashes(&seventeen), two_groups.clone(), &sig).is_ok());
        assert_eq!(
            Manifest::parse(s, 1, hashes(&seventeen), two_groups.slice(..HASH_LEN), &sig),
            Err(ManifestError::BadGroups(HASH_LEN))
        );
        assert_eq!(
            Manifest::parse(s, 1, hashes(&[b"a"]), two_groups, &sig),
            Err(ManifestError::BadGroups(2 * HASH_LEN))
        );
    }

    #[test]
    fn a_whole_group_is_proven_by_its_digest_and_nothing_else_is() {
        let key = SecretKey::generate();
        let signer = Ed25519Signer::new(key.clone());
        let payloads: Vec<Bytes> = (0..GROUP_LEN + 3).map(|i| Bytes::from(vec![i as u8; 10 + i])).collect();
        let m = Manifest::sign_payloads(&*signer, stream(&key), 5, &payloads);
        assert!(m.verify(&*signer), "the group digests are signed with the rest");
        assert!((5..5 + payloads.len() as u64).all(|seq| m.proves(seq, &payloads[(seq - 5) as usize])));
        let group = GROUP_LEN as u64;
        let last = 5 + group + 2;
        assert_eq!(m.group_of(5), Some((5, 4 + group)));
        assert_eq!(m.group_of(4 + group), Some((5, 4 + group)));
        assert_eq!(m.group_of(last), Some((5 + group, last)), "the last group is shorter");
        assert_eq!(m.group_of(last + 1), None);
        let mut scratch = Vec::new();
        let bytes =
            |range: std::ops::Range<usize>| payloads[range].iter().map(|p| &p[..]).collect::<Vec<_>>();
        assert!(m.proves_group(5, bytes(0..GROUP_LEN), &mut scratch));
        assert!(m.proves_group(5 + group, bytes(GROUP_LEN..GROUP_LEN + 3), &mut scratch));
        assert!(!m.proves_group(5, bytes(0..GROUP_LEN - 1), &mut scratch), "a group cut short");
        assert!(!m.proves_group(6, bytes(1..GROUP_LEN + 1), &mut scratch), "not a group's start");
        let mut altered = bytes(0..GROUP_LEN);
        altered[3] = b"other";
        assert!(!m.proves_group(5, altered, &mut scratch), "one payload changed");
        // The same bytes split differently between two payloads.
        let (a, b) = (Bytes::from_static(b"abc"), Bytes::from_static(b"de"));
        let m2 = Manifest::sign_payloads(&*signer, stream(&key), 1, &[a, b]);
        assert!(m2.proves_group(1, [&b"abc"[..], &b"de"[..]], &mut scratch));
        assert!(!m2.proves_group(1, [&b"ab"[..], &b"cde"[..]], &mut scratch));
        // Groups are signed: changing one breaks the signature, and so does dropping them.
        let mut groups = m.groups.to_vec();
        groups[0] ^= 1;
        assert!(!Manifest { groups: groups.into(), ..m.clone() }.verify(&*signer));
        assert!(!Manifest { groups: Bytes::new(), ..m.clone() }.verify(&*signer));
        // A batch with a long payload gets no group digests.
        let long =
            Manifest::sign_payloads(&*signer, stream(&key), 1, &[Bytes::from(vec![0; BLAKE3_FROM_LEN])]);
        assert!(long.groups.is_empty() && long.verify(&*signer));
        // A manifest without groups proves payloads one at a time only.
        let plain = Manifest::sign(&*signer, stream(&key), 5, m.hashes.clone());
        assert_eq!(plain.group_of(5), None);
        assert!(!plain.proves_group(5, bytes(0..GROUP_LEN), &mut scratch));
    }

    #[test]
    fn the_insecure_signer_still_tells_a_changed_message() {
        let a = InsecureSigner::new(NodeId::from_bytes([1; 32]));
        let sig = a.sign(b"m");
        assert!(a.verify(&NodeId::from_bytes([1; 32]), b"m", &sig));
        assert!(!a.verify(&NodeId::from_bytes([2; 32]), b"m", &sig));
        assert!(!a.verify(&NodeId::from_bytes([1; 32]), b"n", &sig));
    }

    #[test]
    fn a_stream_declaration_binds_the_address() {
        let key = SecretKey::generate();
        let s = stream(&key);
        let sig = key.sign(&stream_decl_message(s, "127.0.0.1:9000"));
        assert!(key.node_id().verify(&stream_decl_message(s, "127.0.0.1:9000"), &sig));
        assert!(!key.node_id().verify(&stream_decl_message(s, "127.0.0.1:9001"), &sig));
        assert!(
            !key.node_id().verify(&stream_decl_message(StreamId { epoch: 1, ..s }, "127.0.0.1:9000"), &sig)
        );
    }
}
