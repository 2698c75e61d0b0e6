//! How messages are written in a data directory with the manifest that proves them, and read back:
//! a node's own signed batches (stored before they leave) and the runs of its history.
//!
//! ```text
//! hash count u32 LE | hashes (32 × count) | signature (64) | groups length u32 LE | groups
//!   | offset u32 LE | payload count u32 LE | payload count × (len u32 LE | payload)
//! ```
//!
//! The payloads are sequence numbers `first, first + 1, …`, and `first` is `offset` after the
//! manifest's first: a run of a history may begin inside its manifest (an own batch never does).
//! The store keeps the bytes as they are; a file damaged on disk reads back as an error, never as a
//! panic or an oversized allocation (every length is checked against the bytes that remain). Nor is
//! anything read back trusted further: what is sent from it is checked against its manifest first.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use dotray_codec::SIGNATURE_LEN;
use dotray_router::core::StreamId;
use dotray_router::proof::{GROUP_LEN, HASH_LEN, MAX_MANIFEST_LEN, Manifest};

/// The bytes of `payloads`, sequence numbers `first…` of the manifest `proof` (which must cover
/// them: `proof.first <= first` and `first + payloads.len() - 1 <= proof.last()`).
pub fn encode(proof: &Manifest, first: u64, payloads: &[Bytes]) -> Vec<u8> {
    let body: usize = payloads.iter().map(|p| 4 + p.len()).sum();
    let mut out = Vec::with_capacity(16 + proof.hashes.len() + proof.groups.len() + SIGNATURE_LEN + body);
    out.extend_from_slice(&(proof.count() as u32).to_le_bytes());
    out.extend_from_slice(&proof.hashes);
    out.extend_from_slice(&proof.signature);
    // Within one manifest's groups, so far below 4 GiB.
    out.extend_from_slice(&(proof.groups.len() as u32).to_le_bytes());
    out.extend_from_slice(&proof.groups);
    // Within one manifest, so below `MAX_MANIFEST_LEN`.
    out.extend_from_slice(&((first - proof.first) as u32).to_le_bytes());
    out.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    for payload in payloads {
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// The manifest (of `stream`) and payloads of stored messages whose first is sequence number
/// `first`; an error (never a panic) for bytes [`encode`] did not make.
pub fn decode(stream: StreamId, first: u64, bytes: &[u8]) -> Result<(Arc<Manifest>, Vec<Bytes>), String> {
    let mut rest = bytes;
    let take_u32 = |rest: &mut &[u8]| -> Result<usize, String> {
        if rest.len() < 4 {
            return Err("stored messages end inside a length".to_owned());
        }
        Ok(rest.get_u32_le() as usize)
    };
    let count = take_u32(&mut rest)?;
    if count == 0 || count > MAX_MANIFEST_LEN {
        return Err(format!("a stored manifest of {count} messages"));
    }
    if rest.len() < count * HASH_LEN + SIGNATURE_LEN {
        return Err("stored messages end inside their manifest".to_owned());
    }
    let hashes = Bytes::copy_from_slice(&rest[..count * HASH_LEN]);
    rest.advance(count * HASH_LEN);
    let signature = &rest[..SIGNATURE_LEN];
    rest.advance(SIGNATURE_LEN);
    let groups_len = take_u32(&mut rest)?;
    if groups_len > count.div_ceil(GROUP_LEN) * HASH_LEN || rest.len() < groups_len {
        return Err(format!("stored group digests of {groups_len} bytes"));
    }
    let groups = Bytes::copy_from_slice(&rest[..groups_len]);
    rest.advance(groups_len);
    let offset = take_u32(&mut rest)?;
    let payload_count = take_u32(&mut rest)?;
    if payload_count == 0 || offset + payload_count > count {
        return Err(format!("{payload_count} stored messages from {offset} in a manifest of {count}"));
    }
    let manifest_first = first.checked_sub(offset as u64).filter(|f| *f > 0);
    let manifest_first = manifest_first.ok_or_else(|| format!("stored messages {offset} before 1"))?;
    let proof =
        Manifest::parse(stream, manifest_first, hashes, groups, signature).map_err(|e| e.to_string())?;
    let mut payloads = Vec::with_capacity(payload_count);
    for _ in 0..payload_count {
        let len = take_u32(&mut rest)?;
        if rest.len() < len {
            return Err("stored messages end inside a payload".to_owned());
        }
        payloads.push(Bytes::copy_from_slice(&rest[..len]));
        rest.advance(len);
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after stored messages", rest.len()));
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
    fn a_batch_and_a_run_inside_it_read_back_as_they_were_written() {
        let (proof, payloads) = batch();
        let (read, back) = decode(proof.stream, 5, &encode(&proof, 5, &payloads)).unwrap();
        assert_eq!(((*read).clone(), back), (proof.clone(), payloads.clone()));
        let (read, back) = decode(proof.stream, 6, &encode(&proof, 6, &payloads[1..])).unwrap();
        assert_eq!(((*read).clone(), back), (proof, payloads[1..].to_vec()));
    }

    #[test]
    fn every_cut_or_damaged_length_is_an_error() {
        let (proof, payloads) = batch();
        let bytes = encode(&proof, 5, &payloads);
        for cut in 0..bytes.len() {
            assert!(decode(proof.stream, 5, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(proof.stream, 5, &long).is_err());
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(proof.stream, 5, &huge).is_err());
        // More payloads than the manifest covers from the offset, or an offset before message 1.
        let at = 4 + 3 * HASH_LEN + SIGNATURE_LEN;
        let mut past = bytes.clone();
        past[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        assert!(decode(proof.stream, 6, &past).is_err());
        assert!(decode(proof.stream, 0, &bytes).is_err());
    }
}
