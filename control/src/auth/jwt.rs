//! Compact JWS (JWT) with ES256: encode with the service account signing
//! key, verify with its public key.
//!
//! Owns only the token format (base64url parts, the `alg`/`kid` header, the
//! raw `r||s` signature JWS wants over the DER one the crypto library
//! speaks). Must not: look at the claims (see [`super::claims`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rcgen::{KeyPair, SigningKey};
use serde_json::{json, Value};
use tokio_rustls::rustls::pki_types::alg_id;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    #[error("token is not a compact JWS")]
    Malformed,
    #[error("unsupported token algorithm {0:?}")]
    Algorithm(String),
    #[error("token signature is invalid")]
    Signature,
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Length of one P-256 coordinate / signature half.
const HALF: usize = 32;

/// Sign `claims` as an ES256 JWT with header `{"alg":"ES256","kid":KID}`.
pub fn encode(key: &KeyPair, kid: &str, claims: &Value) -> Result<String, JwtError> {
    let header = json!({"alg": "ES256", "kid": kid});
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let der = key.sign(signing_input.as_bytes()).map_err(|e| JwtError::Sign(e.to_string()))?;
    let raw = der_to_raw(&der).ok_or_else(|| JwtError::Sign("unexpected signature encoding".into()))?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(raw)))
}

/// The header and claims of a token, not verified.
pub fn parts(token: &str) -> Result<(Value, Value), JwtError> {
    let mut it = token.split('.');
    let (Some(h), Some(c), Some(_), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwtError::Malformed);
    };
    let decode = |s: &str| -> Result<Value, JwtError> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(JwtError::Malformed)
        }
    };
    Ok((decode(h)?, decode(c)?))
}

/// Verify `token`'s ES256 signature with `public_key` (the uncompressed
/// P-256 point) and return its claims.
pub fn verify(public_key: &[u8], token: &str) -> Result<Value, JwtError> {
    let (header, claims) = parts(token)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "ES256" {
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    let Some((signing_input, sig)) = token.rsplit_once('.') else { return Err(JwtError::Malformed) };
    let raw = URL_SAFE_NO_PAD.decode(sig).map_err(|_| JwtError::Malformed)?;
    if raw.len() != 2 * HALF {
        return Err(JwtError::Signature);
    }
    let der = raw_to_der(&raw);
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    let algorithm = provider
        .signature_verification_algorithms
        .all
        .iter()
        .find(|a| a.public_key_alg_id() == alg_id::ECDSA_P256 && a.signature_alg_id() == alg_id::ECDSA_SHA256)
        .ok_or_else(|| JwtError::Algorithm("ES256".into()))?;
    algorithm.verify_signature(public_key, signing_input.as_bytes(), &der).map_err(|_| JwtError::Signature)?;
    Ok(claims)
}

/// `SEQUENCE { INTEGER r, INTEGER s }` → `r||s`, each left-padded to 32 bytes.
fn der_to_raw(der: &[u8]) -> Option<Vec<u8>> {
    let (tag, body, rest) = der_item(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (rt, r, rest) = der_item(body)?;
    let (st, s, rest) = der_item(rest)?;
    if rt != 0x02 || st != 0x02 || !rest.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * HALF);
    for int in [r, s] {
        let int = strip_zeros(int);
        if int.len() > HALF {
            return None;
        }
        out.extend(std::iter::repeat_n(0u8, HALF - int.len()));
        out.extend_from_slice(int);
    }
    Some(out)
}

/// `r||s` → the DER `SEQUENCE` of two positive INTEGERs.
fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    let int = |b: &[u8]| -> Vec<u8> {
        let b = strip_zeros(b);
        let mut v = vec![0x02];
        let pad = b.first().is_none_or(|f| f & 0x80 != 0);
        v.push((b.len() + usize::from(pad)) as u8);
        if pad {
            v.push(0);
        }
        v.extend_from_slice(b);
        v
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body: Vec<u8> = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

/// One DER item: (tag, contents, what follows). Short and one-byte long
/// lengths only (all an ECDSA P-256 signature needs).
fn der_item(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let (len, hdr): (usize, usize) = match *b.get(1)? {
        l if l < 0x80 => (l as usize, 2),
        0x81 => (*b.get(2)? as usize, 3),
        _ => return None,
    };
    let end = hdr.checked_add(len)?;
    let body = b.get(hdr..end)?;
    Some((tag, body, &b[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyPair {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key")
    }

    #[test]
    fn signs_and_verifies() {
        let k = key();
        let claims = json!({"sub": "system:serviceaccount:default:default", "n": 1});
        for _ in 0..20 {
            // Signatures vary (random nonce, short r or s): all must round-trip.
            let token = encode(&k, "kid1", &claims).expect("encode");
            assert_eq!(verify(k.public_key_raw(), &token), Ok(claims.clone()));
            let (header, _) = parts(&token).expect("parts");
            assert_eq!(header, json!({"alg": "ES256", "kid": "kid1"}));
        }
    }

    #[test]
    fn refuses_tampered_tokens() {
        let k = key();
        let token = encode(&k, "k", &json!({"sub": "a"})).expect("encode");
        let (h, rest) = token.split_once('.').expect("dot");
        let (_, sig) = rest.split_once('.').expect("dot");
        let forged = format!("{h}.{}.{sig}", URL_SAFE_NO_PAD.encode(r#"{"sub":"b"}"#));
        assert_eq!(verify(k.public_key_raw(), &forged), Err(JwtError::Signature));
        let mut bad_sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
        bad_sig[5] ^= 1;
        let tampered = format!("{}.{}", token.rsplit_once('.').expect("dot").0, URL_SAFE_NO_PAD.encode(&bad_sig));
        assert_eq!(verify(k.public_key_raw(), &tampered), Err(JwtError::Signature));
        let other = key();
        assert_eq!(verify(other.public_key_raw(), &token), Err(JwtError::Signature));
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#));
        assert_eq!(verify(k.public_key_raw(), &none), Err(JwtError::Algorithm("none".into())));
        assert_eq!(verify(k.public_key_raw(), "abc"), Err(JwtError::Malformed));
        assert_eq!(verify(k.public_key_raw(), "a.b.c.d"), Err(JwtError::Malformed));
    }

    #[test]
    fn der_conversion_round_trips() {
        let mut raw = vec![0u8; 64];
        raw[1] = 0x80; // r with a leading zero byte, high bit set after it
        raw[63] = 7;
        let der = raw_to_der(&raw);
        assert_eq!(der_to_raw(&der), Some(raw));
    }
}
