//! The AEAD under the Noise channel: `snow` runs the protocol, and this module hands it AWS-LC's
//! AES-256-GCM (through `aws-lc-rs`) instead of its default backend (`ring`), for speed.
//!
//! On x86-64 with VAES and AVX-512, AWS-LC seals and opens with 512-bit vectors, where ring's AES-GCM
//! stops at 256-bit ones (measured in `docs/PERFORMANCE.md`), and `aws-lc-rs`
//! encrypts and decrypts out of place, where snow's ring adapter first copies the input. Nothing here is
//! cryptography: the cipher is AWS-LC's, and the nonce is Noise's AESGCM nonce (4 zero bytes, then the
//! 64-bit counter, big-endian; Noise spec section 12.4), so the wire is identical to snow's own
//! AESGCM: a test checks each seals what the other opens. Every other primitive (X25519, SHA-256, the
//! random generator) stays snow's default. Built only with the `aws-lc` feature (on by default).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// Bytes of an AES-GCM tag.
const TAG_LEN: usize = 16;

/// snow's default resolver, but for AES-GCM, which is [`AesGcm`].
#[derive(Debug, Default)]
pub(crate) struct Resolver;

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match choice {
            CipherChoice::AESGCM => AesGcm::new().map(|c| Box::new(c) as Box<dyn Cipher>),
            other => DefaultResolver.resolve_cipher(other),
        }
    }
}

/// AES-256-GCM from AWS-LC, as a snow cipher.
struct AesGcm {
    key: LessSafeKey,
}

impl AesGcm {
    /// A cipher with an all-zero key, as snow creates them before `set`.
    fn new() -> Option<Self> {
        Some(Self { key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0; 32]).ok()?) })
    }
}

/// Noise's AESGCM nonce for counter `n`.
fn nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

impl Cipher for AesGcm {
    fn name(&self) -> &'static str {
        "AESGCM"
    }

    fn set(&mut self, key: &[u8; 32]) {
        // A 32-byte key is always a valid AES-256 key.
        if let Ok(key) = UnboundKey::new(&AES_256_GCM, key) {
            self.key = LessSafeKey::new(key);
        }
    }

    fn encrypt(&self, n: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let len = plaintext.len();
        let (ciphertext, rest) = out.split_at_mut(len);
        let sealed = self.key.seal_out_of_place_scatter(
            nonce(n),
            Aad::from(authtext),
            plaintext,
            ciphertext,
            &[],
            &mut rest[..TAG_LEN],
        );
        // snow sizes `out` for the plaintext and the tag before calling; a failure leaves nothing
        // that would authenticate.
        match sealed {
            Ok(()) => len + TAG_LEN,
            Err(_) => 0,
        }
    }

    fn decrypt(
        &self,
        n: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let len = ciphertext.len().checked_sub(TAG_LEN).ok_or(snow::Error::Decrypt)?;
        let (body, tag) = ciphertext.split_at(len);
        let out = out.get_mut(..len).ok_or(snow::Error::Decrypt)?;
        self.key
            .open_separate_gather(nonce(n), Aad::from(authtext), body, tag, out)
            .map_err(|_| snow::Error::Decrypt)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &[u8; 32]) -> (Box<dyn Cipher>, Box<dyn Cipher>) {
        let mut ours = Resolver.resolve_cipher(&CipherChoice::AESGCM).unwrap();
        let mut snows = DefaultResolver.resolve_cipher(&CipherChoice::AESGCM).unwrap();
        ours.set(key);
        snows.set(key);
        (ours, snows)
    }

    #[test]
    fn seals_exactly_what_snows_own_aesgcm_seals_and_each_opens_the_other() {
        let (ours, snows) = pair(&[42; 32]);
        for (n, len) in [(0u64, 0usize), (1, 1), (7, 1024), (u64::MAX - 1, 65_519)] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (mut a, mut b) = (vec![0u8; len + TAG_LEN], vec![0u8; len + TAG_LEN]);
            assert_eq!(ours.encrypt(n, b"ad", &plaintext, &mut a), len + TAG_LEN);
            assert_eq!(snows.encrypt(n, b"ad", &plaintext, &mut b), len + TAG_LEN);
            assert_eq!(a, b, "nonce {n}, {len} bytes");
            let mut opened = vec![0u8; len];
            assert_eq!(ours.decrypt(n, b"ad", &b, &mut opened).unwrap(), len);
            assert_eq!(opened, plaintext);
            let mut opened = vec![0u8; len + TAG_LEN];
            assert_eq!(snows.decrypt(n, b"ad", &a, &mut opened).unwrap(), len);
        }
    }

    #[test]
    fn refuses_what_does_not_authenticate() {
        let (ours, _) = pair(&[1; 32]);
        let mut sealed = vec![0u8; 10 + TAG_LEN];
        ours.encrypt(5, &[], b"0123456789", &mut sealed);
        let mut out = vec![0u8; 10];
        assert!(ours.decrypt(6, &[], &sealed, &mut out).is_err(), "another nonce");
        assert!(ours.decrypt(5, b"x", &sealed, &mut out).is_err(), "other associated data");
        sealed[3] ^= 0x80;
        assert!(ours.decrypt(5, &[], &sealed, &mut out).is_err(), "a flipped bit");
        assert!(ours.decrypt(5, &[], &sealed[..TAG_LEN - 1], &mut out).is_err(), "shorter than a tag");
        let (other, _) = pair(&[2; 32]);
        sealed[3] ^= 0x80;
        assert!(other.decrypt(5, &[], &sealed, &mut out).is_err(), "another key");
        assert!(ours.decrypt(5, &[], &sealed, &mut out[..9]).is_err(), "no room for the plaintext");
        assert!(ours.decrypt(5, &[], &sealed, &mut out).is_ok());
    }
}
