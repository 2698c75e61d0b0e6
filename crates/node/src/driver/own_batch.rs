//! How a signed batch of the node's own messages is written in its data directory (and read back
//! after a restart): the manifest's hashes and signature, then each payload with its length.
//!
//! ```text
//! count u32 LE | hashes (32 × count) | signature (64) | count × (len u32 LE | payload)
//! ```
//!
//! The store keeps the bytes as they are; a file damaged on disk reads back as an error, never as a
//! panic or an oversized allocation (every length is checked against the bytes that remain).

use std::sync::Arc;

use bytes::{Buf, Bytes};
use dotray_codec::SIGNATURE_LEN;
use dotray_router::core::StreamId;
use dotray_router::proof::{HASH_LEN, MAX_MANIFEST_LEN, Manifest};

/// The bytes of the batch `proof` covers, with its `payloads`.
pub(super) fn encode(proof: &Manifest, payloads: &[Bytes]) -> Vec<u8> {
    let body: usize = payloads.iter().map(|p| 4 + p.len()).sum();
    let mut out = Vec::with_capacity(4 + proof.hashes.len() + SIGNATURE_LEN + body);
    out.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    out.extend_from_slice(&proof.hashes);
    out.extend_from_slice(&proof.signature);
    for payload in payloads {
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// The manifest (of `stream`, from `first`) and payloads of a stored batch.
pub(super) fn decode(
    stream: StreamId,
    first: u64,
    bytes: &[u8],
) -> Result<(Arc<Manifest>, Vec<Bytes>), String> {
    let mut rest = bytes;
    let take_u32 = |rest: &mut &[u8]| -> Result<usize, String> {
        if rest.len() < 4 {
            return Err("a stored batch ends inside a length".to_owned());
        }
        Ok(rest.get_u32_le() as usize)
    };
    let count = take_u32(&mut rest)?;
    if count == 0 || count > MAX_MANIFEST_LEN {
        return Err(format!("a stored batch of {count} messages"));
    }
    if rest.len() < count * HASH_LEN + SIGNATURE_LEN {
        return Err("a stored batch ends inside its manifest".to_owned());
    }
    let hashes = Bytes::copy_from_slice(&rest[..count * HASH_LEN]);
    rest.advance(count * HASH_LEN);
    let signature = &rest[..SIGNATURE_LEN];
    let proof = Manifest::parse(stream, first, hashes, signature).map_err(|e| e.to_string())?;
    rest.advance(SIGNATURE_LEN);
    let mut payloads = Vec::with_capacity(count);
    for _ in 0..count {
        let len = take_u32(&mut rest)?;
        if rest.len() < len {
            return Err("a stored batch ends inside a payload".to_owned());
        }
        payloads.push(Bytes::copy_from_slice(&rest[..len]));
        rest.advance(len);
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after a stored batch", rest.len()));
    }
    Ok((Arc::new(proof), payloads))
}

#[cfg(test)]
mod tests {
    use dotray_codec::NodeId;
    use dotray_router::proof::{InsecureSigner, payload_hash};

    use super::*;

    fn batch() -> (Manifest, Vec<Bytes>) {
        let stream = StreamId { origin: NodeId::from_bytes([4; 32]), epoch: 9 };
        let payloads = vec![Bytes::from_static(b"one"), Bytes::new(), Bytes::from(vec![7; 3000])];
        let hashes: Vec<u8> = payloads.iter().flat_map(|p| payload_hash(p)).collect();
        (Manifest::sign(&*InsecureSigner::new(stream.origin), stream, 5, hashes.into()), payloads)
    }

    #[test]
    fn a_batch_reads_back_as_it_was_written() {
        let (proof, payloads) = batch();
        let (read, back) = decode(proof.stream, 5, &encode(&proof, &payloads)).unwrap();
        assert_eq!((*read).clone(), proof);
        assert_eq!(back, payloads);
    }

    #[test]
    fn every_cut_or_damaged_length_is_an_error() {
        let (proof, payloads) = batch();
        let bytes = encode(&proof, &payloads);
        for cut in 0..bytes.len() {
            assert!(decode(proof.stream, 5, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(proof.stream, 5, &long).is_err());
        let mut huge = bytes;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(proof.stream, 5, &huge).is_err());
    }
}
