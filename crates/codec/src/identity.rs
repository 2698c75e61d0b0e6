//! [`SecretKey`]: the Ed25519 key pair whose public half is a node's [`NodeId`], and the signatures
//! made and checked with it.
//!
//! The cryptography is `ed25519-dalek`'s; this module only names it in dotray's terms.
//! [`NodeId::verify`] checks a signature with `verify_strict`, which refuses the malleable and
//! small-order encodings that plain Ed25519 verification lets through. [`PublicKey`] is a key parsed
//! once for checking many signatures of one node; it refuses the same forgeries at less cost (see its
//! docs).

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::NodeId;

/// Length of a secret key (an Ed25519 seed) in bytes.
pub const SECRET_KEY_LEN: usize = 32;
/// Length of a signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// A node's secret key. Its public key is the node's [`NodeId`].
///
/// Keep it to stay the same node across restarts (the facade's `NodeBuilder::key_file` stores it in a
/// file only its owner can read). The secret bytes are wiped from memory when the key is dropped, and
/// `{:?}` shows only the node id.
///
/// ```
/// use dotray_codec::SecretKey;
/// let key = SecretKey::generate();
/// let signature = key.sign(b"hello");
/// assert!(key.node_id().verify(b"hello", &signature));
/// assert!(!key.node_id().verify(b"hullo", &signature));
/// let same = SecretKey::from_bytes(key.to_bytes());
/// assert_eq!(same.node_id(), key.node_id());
/// ```
#[derive(Clone)]
pub struct SecretKey {
    signing: SigningKey,
    id: NodeId,
}

impl SecretKey {
    /// A fresh key from the thread's cryptographically secure generator (seeded by the operating
    /// system).
    pub fn generate() -> Self {
        let mut seed = [0u8; SECRET_KEY_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut seed);
        Self::from_bytes(seed)
    }

    /// The key with this 32-byte seed (as [`SecretKey::to_bytes`] gave it).
    pub fn from_bytes(seed: [u8; SECRET_KEY_LEN]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let id = NodeId::from_bytes(signing.verifying_key().to_bytes());
        Self { signing, id }
    }

    /// The 32-byte seed, to store. Anyone who has it can be this node.
    pub fn to_bytes(&self) -> [u8; SECRET_KEY_LEN] {
        self.signing.to_bytes()
    }

    /// The node id: this key's public half.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:?})", self.id)
    }
}

impl NodeId {
    /// True when `signature` is this node's signature of `message`. False for a malformed signature,
    /// and for an id that is not a valid Ed25519 public key (no key can sign for it).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else { return false };
        let Ok(key) = VerifyingKey::from_bytes(self.as_bytes()) else { return false };
        key.verify_strict(message, &signature).is_ok()
    }

    /// This id parsed into a [`PublicKey`], to check many signatures of one node without parsing
    /// the key each time. `None` when the id is not a valid Ed25519 public key, or is a key of small
    /// order (a "weak" key, for which signatures can be made without the secret).
    pub fn public_key(&self) -> Option<PublicKey> {
        let key = VerifyingKey::from_bytes(self.as_bytes()).ok()?;
        (!key.is_weak()).then_some(PublicKey(key))
    }
}

/// A node's public key, parsed once (a point decompression) for checking many of its signatures:
/// the router keeps one per origin it verifies manifests of.
///
/// [`PublicKey::verify`] accepts exactly the signatures that only the secret key's holder can make,
/// like [`NodeId::verify`], at four fifths of its cost: the key was refused at parsing if weak, and the
/// signature's `R` is compared as bytes with the one recomputed from the key, so no encoding of `R`
/// but the canonical one verifies and the check needs no second decompression. (The strict check's
/// one further refusal, an `R` of small order, concerns only signatures that the key's holder made
/// that way on purpose: making one needs the secret key.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// True when `signature` is this key's signature of `message`; false for a malformed signature
    /// (including a scalar `s` that is not reduced, the classic malleability).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else { return false };
        ed25519_dalek::Verifier::verify(&self.0, message, &signature).is_ok()
    }

    /// The node id this key is.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_bytes(self.0.to_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?})", self.node_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_and_message() {
        let key = SecretKey::from_bytes([7; SECRET_KEY_LEN]);
        let other = SecretKey::from_bytes([8; SECRET_KEY_LEN]);
        let signature = key.sign(b"message");
        assert!(key.node_id().verify(b"message", &signature));
        assert!(!other.node_id().verify(b"message", &signature), "another key");
        assert!(!key.node_id().verify(b"messagE", &signature), "another message");
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert!(!key.node_id().verify(b"message", &flipped), "a flipped bit");
        assert!(!key.node_id().verify(b"message", &signature[..63]), "a short signature");
    }

    #[test]
    fn keys_are_stable_and_debug_hides_the_secret() {
        let key = SecretKey::from_bytes([1; SECRET_KEY_LEN]);
        assert_eq!(SecretKey::from_bytes(key.to_bytes()).node_id(), key.node_id());
        assert_ne!(SecretKey::generate().node_id(), SecretKey::generate().node_id());
        let shown = format!("{key:?}");
        assert_eq!(shown, format!("SecretKey({:?})", key.node_id()));
        assert!(!shown.contains("0101"), "no secret bytes in {shown}");
    }

    #[test]
    fn a_parsed_key_accepts_and_refuses_what_its_id_does() {
        let key = SecretKey::from_bytes([7; SECRET_KEY_LEN]);
        let public = key.node_id().public_key().expect("a real key parses");
        assert_eq!(public.node_id(), key.node_id());
        let signature = key.sign(b"message");
        let mut flipped = signature;
        flipped[40] ^= 1;
        let other = SecretKey::from_bytes([8; SECRET_KEY_LEN]).sign(b"message");
        for (message, signature, good) in [
            (&b"message"[..], &signature[..], true),
            (b"messagE", &signature[..], false),
            (b"message", &flipped[..], false),
            (b"message", &other[..], false),
            (b"message", &signature[..63], false),
        ] {
            assert_eq!(public.verify(message, signature), good, "{message:?}");
            assert_eq!(key.node_id().verify(message, signature), good, "{message:?}");
        }
    }

    #[test]
    fn a_signature_with_an_unreduced_scalar_is_refused() {
        // The group order l, little-endian: s + l is the same scalar mod l in another encoding.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = SecretKey::from_bytes([7; SECRET_KEY_LEN]);
        let mut signature = key.sign(b"message");
        let mut carry = 0u16;
        for (byte, l) in signature[32..].iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!key.node_id().public_key().unwrap().verify(b"message", &signature));
        assert!(!key.node_id().verify(b"message", &signature));
    }

    #[test]
    fn weak_and_invalid_ids_have_no_public_key() {
        // The identity point (small order: anyone can "sign" for it), and bytes that are no point.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(NodeId::from_bytes(identity).public_key().is_none());
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(NodeId::from_bytes(off_curve).public_key().is_none());
    }

    #[test]
    fn an_id_that_is_no_public_key_verifies_nothing() {
        // Not a point on the curve: no secret key exists for it.
        let bogus = NodeId::from_bytes([0xff; 32]);
        assert!(!bogus.verify(b"message", &[0; SIGNATURE_LEN]));
    }
}
