//! The cryptographic side of the handshake: which Noise protocol runs, this node's static key and the
//! proof that binds it to the node id, and the check of a peer's proof.
//!
//! Noise (the `snow` crate) gives an encrypted channel between two static X25519 keys, each side
//! proving that it holds its own. A dotray node id is an Ed25519 key, so each side also sends, inside
//! the encrypted handshake, an `IdentityProof`: its node id and that id's signature of its Noise static
//! public key. A peer that passes both has shown that it holds the static key (Noise) and that the
//! node id vouches for that static key (the signature); this is how rust-libp2p's noise transport binds
//! peer ids. The static key is made fresh for each transport, so the signature is made once per start
//! and checked once per handshake.
//!
//! XX is the pattern because it hides both identities from a passive observer and needs no prior
//! knowledge of the peer; a dial that expects a certain node id checks the proven id against it as
//! soon as the acceptor's proof arrives (`handshake` module). With a network key the pattern is
//! `XXpsk0`: the key is mixed in before the first message, so the acceptor can tell an outsider from
//! the first message alone and answer nothing.

use std::fmt;

use dotray_codec::proto::IdentityProof;
use dotray_codec::{NodeId, SecretKey};
use prost::Message;
use snow::params::NoiseParams;

use crate::{HandshakeError, NetworkKey};

/// Bound into every handshake (Noise's prologue): peers that speak another protocol or version fail
/// the handshake instead of agreeing on keys for the wrong conversation.
const PROLOGUE: &[u8] = b"dotray/2";
/// The protocol of an open network.
const OPEN_NETWORK: &str = "Noise_XX_25519_AESGCM_SHA256";
/// The protocol of a network with a [`NetworkKey`].
const PRIVATE_NETWORK: &str = "Noise_XXpsk0_25519_AESGCM_SHA256";
/// Prefixed to the static key before signing, so that the signature means only this.
const PROOF_CONTEXT: &[u8] = b"dotray-noise-static-key:";

/// Longest frame accepted before the channel is up: a Noise handshake message in an envelope (about
/// 50 to 250 bytes), or the goodbye that refuses one. The `Hello` inside the channel fits too.
pub(crate) const MAX_HANDSHAKE_FRAME_LEN: usize = 1024;

/// This node's long-lived handshake material, made once per transport.
pub(crate) struct LocalIdentity {
    key: SecretKey,
    params: NoiseParams,
    static_keypair: snow::Keypair,
    /// The encoded `IdentityProof` this node sends.
    proof: Vec<u8>,
    network_key: Option<NetworkKey>,
}

impl LocalIdentity {
    /// Makes a static key for this transport and signs it with `key`.
    pub(crate) fn new(key: SecretKey, network_key: Option<NetworkKey>) -> Result<Self, snow::Error> {
        let name = if network_key.is_some() { PRIVATE_NETWORK } else { OPEN_NETWORK };
        let params: NoiseParams = name.parse()?;
        let static_keypair = builder(params.clone()).generate_keypair()?;
        let signature = key.sign(&signed_text(&static_keypair.public));
        let proof = IdentityProof {
            node_id: key.node_id().to_bytes(),
            signature: bytes::Bytes::copy_from_slice(&signature),
        }
        .encode_to_vec();
        Ok(Self { key, params, static_keypair, proof, network_key })
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// The encoded proof this node sends in its handshake message.
    pub(crate) fn proof(&self) -> &[u8] {
        &self.proof
    }

    /// A fresh handshake, as the dialer (`initiator`) or the acceptor.
    pub(crate) fn start(&self, initiator: bool) -> Result<snow::HandshakeState, snow::Error> {
        let mut builder = builder(self.params.clone())
            .local_private_key(&self.static_keypair.private)?
            .prologue(PROLOGUE)?;
        if let Some(key) = &self.network_key {
            builder = builder.psk(0, key.as_bytes())?;
        }
        if initiator { builder.build_initiator() } else { builder.build_responder() }
    }
}

impl fmt::Debug for LocalIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIdentity")
            .field("node_id", &self.key.node_id())
            .field("protocol", &self.params.name)
            .finish_non_exhaustive()
    }
}

/// Checks a peer's `IdentityProof` (the decrypted payload of its handshake message) against the static
/// key that Noise authenticated; returns the node id it proves.
pub(crate) fn verify_proof(payload: &[u8], remote_static: Option<&[u8]>) -> Result<NodeId, HandshakeError> {
    let proof = IdentityProof::decode(payload).map_err(|_| HandshakeError::InvalidProof("not a proof"))?;
    let id =
        NodeId::from_slice(&proof.node_id).ok_or(HandshakeError::InvalidProof("node id is not 32 bytes"))?;
    let remote_static = remote_static.ok_or(HandshakeError::InvalidProof("no static key"))?;
    if !id.verify(&signed_text(remote_static), &proof.signature) {
        return Err(HandshakeError::InvalidProof("the signature does not match the node id"));
    }
    Ok(id)
}

/// A snow builder with AWS-LC's AES-GCM (see the `aead` module).
#[cfg(feature = "aws-lc")]
fn builder<'a>(params: NoiseParams) -> snow::Builder<'a> {
    snow::Builder::with_resolver(params, Box::new(crate::aead::Resolver))
}

/// A snow builder with snow's default backends.
#[cfg(not(feature = "aws-lc"))]
fn builder<'a>(params: NoiseParams) -> snow::Builder<'a> {
    snow::Builder::new(params)
}

fn signed_text(static_public: &[u8]) -> Vec<u8> {
    [PROOF_CONTEXT, static_public].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the three XX messages between two identities; returns what each side proved of the other.
    fn run(
        dialer: &LocalIdentity,
        acceptor: &LocalIdentity,
    ) -> Result<(NodeId, NodeId), Box<dyn std::error::Error>> {
        let (mut i, mut r) = (dialer.start(true)?, acceptor.start(false)?);
        let (mut wire, mut payload) = ([0u8; 1024], [0u8; 1024]);
        let n = i.write_message(&[], &mut wire)?;
        r.read_message(&wire[..n], &mut payload)?;
        let n = r.write_message(acceptor.proof(), &mut wire)?;
        let len = i.read_message(&wire[..n], &mut payload)?;
        let acceptor_id = verify_proof(&payload[..len], i.get_remote_static())?;
        let n = i.write_message(dialer.proof(), &mut wire)?;
        let len = r.read_message(&wire[..n], &mut payload)?;
        let dialer_id = verify_proof(&payload[..len], r.get_remote_static())?;
        Ok((acceptor_id, dialer_id))
    }

    #[test]
    fn each_side_proves_its_node_id() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        let dialer = LocalIdentity::new(a.clone(), None).unwrap();
        let acceptor = LocalIdentity::new(b.clone(), None).unwrap();
        assert_eq!(run(&dialer, &acceptor).unwrap(), (b.node_id(), a.node_id()));
    }

    #[test]
    fn a_proof_for_another_static_key_is_refused() {
        // An impostor replays the honest node's proof over its own static key.
        let honest = LocalIdentity::new(SecretKey::generate(), None).unwrap();
        let mut impostor = LocalIdentity::new(SecretKey::generate(), None).unwrap();
        impostor.proof = honest.proof.clone();
        let dialer = LocalIdentity::new(SecretKey::generate(), None).unwrap();
        let error = run(&dialer, &impostor).unwrap_err();
        assert!(error.to_string().contains("signature"), "{error}");
    }

    #[test]
    fn network_keys_must_match() {
        let key = NetworkKey::from_bytes([9; 32]);
        let member = |k: Option<NetworkKey>| LocalIdentity::new(SecretKey::generate(), k).unwrap();
        assert!(run(&member(Some(key.clone())), &member(Some(key.clone()))).is_ok());
        assert!(run(&member(Some(key.clone())), &member(Some(NetworkKey::from_bytes([8; 32])))).is_err());
        assert!(run(&member(None), &member(Some(key.clone()))).is_err());
        assert!(run(&member(Some(key)), &member(None)).is_err());
    }

    #[test]
    fn garbage_is_not_a_proof() {
        for payload in [&b""[..], b"\xff\xff\xff", &[0u8; 200]] {
            assert!(verify_proof(payload, Some(&[1; 32])).is_err());
        }
    }
}
