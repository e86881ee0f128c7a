//! Content codings of responses from destinations with a bound secret.
//!
//! The host asks those destinations for `Accept-Encoding: identity`; a server that compresses
//! anyway must not hand a compressed (so unscrubbable) reflection of the secret to the
//! component. The body is decoded here, never past the response cap (a small compressed body
//! can stand for gigabytes), and a coding the host cannot decode is refused.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

/// Why a body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DecodeError {
    /// A coding other than gzip, deflate or identity (cut short, printable characters only).
    Unsupported(String),
    /// The decoded body is larger than the cap.
    TooLarge,
    /// The data is not valid in its coding.
    Corrupt(&'static str),
}

/// Decodes `body` as `headers` say it is encoded, removing `Content-Encoding`. A body without
/// one is returned as it is.
pub(super) fn decode(
    headers: &mut HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    let mut codings: Vec<String> = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = value
            .to_str()
            .map_err(|_| DecodeError::Unsupported(printable(value.as_bytes())))?;
        codings.extend(
            text.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty()),
        );
    }
    headers.remove(CONTENT_ENCODING);
    // A HEAD answer or a 204/304 labelled with a coding has nothing to decode.
    if body.is_empty() {
        return Ok(body);
    }
    let mut body = body;
    // Codings are listed in the order they were applied: undo the last first.
    for coding in codings.iter().rev() {
        body = match coding.as_str() {
            "identity" => body,
            "gzip" | "x-gzip" => read_bounded(flate2::read::MultiGzDecoder::new(&body[..]), limit)
                .map_err(|e| e.unwrap_or(DecodeError::Corrupt("gzip")))?,
            // `deflate` is zlib-wrapped by the standard; some servers send it raw.
            "deflate" => read_bounded(flate2::read::ZlibDecoder::new(&body[..]), limit)
                .or_else(|e| match e {
                    Some(too_large) => Err(Some(too_large)),
                    None => read_bounded(flate2::read::DeflateDecoder::new(&body[..]), limit),
                })
                .map_err(|e| e.unwrap_or(DecodeError::Corrupt("deflate")))?,
            other => return Err(DecodeError::Unsupported(printable(other.as_bytes()))),
        };
    }
    Ok(body)
}

/// Reads `reader` to the end, failing with `Some(TooLarge)` past `limit` bytes, `None` on bad
/// data.
fn read_bounded(reader: impl Read, limit: usize) -> Result<Bytes, Option<DecodeError>> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| None)?;
    if out.len() > limit {
        return Err(Some(DecodeError::TooLarge));
    }
    Ok(Bytes::from(out))
}

/// At most 40 printable ASCII characters of a server-given name.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .filter(|b| b.is_ascii_graphic())
        .take(40)
        .map(|&b| char::from(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings_are_decoded_or_refused() {
        let text = b"echo: /bot123:secret/getMe".to_vec();
        // (Content-Encoding values, body, result)
        type Case<'a> = (Vec<&'a str>, Vec<u8>, Result<Vec<u8>, DecodeError>);
        let cases: Vec<Case> = vec![
            (vec![], text.clone(), Ok(text.clone())),
            (vec!["identity"], text.clone(), Ok(text.clone())),
            (vec!["gzip"], gzip(&text), Ok(text.clone())),
            (vec!["GZip"], gzip(&text), Ok(text.clone())),
            (vec!["x-gzip"], gzip(&text), Ok(text.clone())),
            (vec!["deflate"], zlib(&text), Ok(text.clone())),
            (vec!["deflate"], raw_deflate(&text), Ok(text.clone())),
            (vec!["deflate, gzip"], gzip(&zlib(&text)), Ok(text.clone())),
            (
                vec!["deflate", "gzip"],
                gzip(&zlib(&text)),
                Ok(text.clone()),
            ),
            (
                vec!["br"],
                text.clone(),
                Err(DecodeError::Unsupported("br".into())),
            ),
            (
                vec!["gzip, zstd"],
                text.clone(),
                Err(DecodeError::Unsupported("zstd".into())),
            ),
            (
                vec!["gzip"],
                text.clone(),
                Err(DecodeError::Corrupt("gzip")),
            ),
            (vec!["gzip"], Vec::new(), Ok(Vec::new())),
        ];
        for (codings, body, expected) in cases {
            let mut headers = HeaderMap::new();
            for c in &codings {
                headers.append(CONTENT_ENCODING, c.parse().unwrap());
            }
            let got = decode(&mut headers, Bytes::from(body), 1024).map(|b| b.to_vec());
            assert_eq!(got, expected, "{codings:?}");
            assert!(headers.get(CONTENT_ENCODING).is_none());
        }
    }

    #[test]
    fn a_compression_bomb_stops_at_the_cap() {
        // 64 MiB of zeros compress to about 64 KiB.
        let big = vec![0u8; 64 << 20];
        let bomb = gzip(&big);
        drop(big);
        assert!(bomb.len() < 1 << 20);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
        let got = decode(&mut headers, Bytes::from(bomb), 1 << 20);
        assert_eq!(got, Err(DecodeError::TooLarge));
    }
}
