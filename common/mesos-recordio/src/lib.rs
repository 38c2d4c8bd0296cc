//! RecordIO, the framing of Mesos subscription streams: each record is its
//! length in ASCII decimal, a line feed, then exactly that many bytes.
//!
//! [`Decoder`] is incremental: feed it whatever arrived (a whole chunk or a
//! single byte) and take complete records out; "not enough bytes yet" is
//! `Ok(None)`, not an error. A record longer than the configured limit is an
//! error found from its header alone, before any of it is buffered.
//! [`encode`] writes one record. No I/O lives here; [`Decoder`] also
//! implements [`tokio_util::codec::Decoder`] for use over a byte stream.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The default size limit of one record: 64 MiB, ample for OFFERS events of large clusters.
pub const DEFAULT_MAX_RECORD: usize = 64 * 1024 * 1024;

/// A u64 has at most 20 decimal digits; a longer header is garbage.
const MAX_HEADER_DIGITS: usize = 20;

/// Why a stream is not valid RecordIO. Every variant is fatal for the stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A byte other than an ASCII digit appeared in a record header.
    #[error("invalid RecordIO header: unexpected byte 0x{byte:02x} at header position {position}")]
    InvalidHeaderByte {
        /// The offending byte.
        byte: u8,
        /// Its index within the header.
        position: usize,
    },
    /// A header with no digits, or a record of length zero.
    #[error("invalid RecordIO header: empty or zero length")]
    EmptyRecord,
    /// The header has more digits than any u64.
    #[error("invalid RecordIO header: more than {MAX_HEADER_DIGITS} digits")]
    HeaderTooLong,
    /// The announced length exceeds the decoder's limit.
    #[error("RecordIO record of {length} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// The length the header announced.
        length: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The stream ended inside a record (only from [`Decoder::finish`]).
    #[error("RecordIO stream ended inside a record ({buffered} bytes buffered)")]
    Truncated {
        /// How many bytes of the unfinished record were buffered.
        buffered: usize,
    },
    /// Reading the underlying stream failed (only through the tokio codec).
    #[error("I/O error while reading a RecordIO stream: {0}")]
    Io(String),
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(error.to_string())
    }
}

/// Incremental RecordIO decoder with a size limit.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_record: usize,
    buffer: BytesMut,
    /// Length of the record whose header has been consumed.
    pending: Option<usize>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD)
    }
}

impl Decoder {
    /// A decoder that rejects records longer than `max_record` bytes.
    pub fn new(max_record: usize) -> Self {
        Self {
            max_record,
            buffer: BytesMut::new(),
            pending: None,
        }
    }

    /// Appends newly received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Takes the next complete record out of the fed bytes, if there is one.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, Error> {
        let mut buffer = std::mem::take(&mut self.buffer);
        let result = self.decode_from(&mut buffer);
        self.buffer = buffer;
        result
    }

    /// Checks that the stream ended at a record boundary.
    pub fn finish(&self) -> Result<(), Error> {
        if self.buffer.is_empty() && self.pending.is_none() {
            Ok(())
        } else {
            Err(Error::Truncated {
                buffered: self.buffer.len(),
            })
        }
    }

    fn decode_from(&mut self, buffer: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        let length = match self.pending {
            Some(length) => length,
            None => match self.parse_header(buffer)? {
                Some(length) => {
                    self.pending = Some(length);
                    length
                }
                None => return Ok(None),
            },
        };
        if buffer.len() < length {
            // Reserve once so a large record does not regrow the buffer per chunk;
            // the length is already known to be within the limit.
            buffer.reserve(length - buffer.len());
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(buffer.split_to(length).freeze()))
    }

    /// Parses `digits LF` at the front of `buffer`, consuming it when complete.
    fn parse_header(&self, buffer: &mut BytesMut) -> Result<Option<usize>, Error> {
        let mut length: u64 = 0;
        for (position, &byte) in buffer.iter().enumerate() {
            match byte {
                b'\n' => {
                    if position == 0 || length == 0 {
                        return Err(Error::EmptyRecord);
                    }
                    buffer.advance(position + 1);
                    // `length` was checked against `max_record` (a usize) below.
                    return Ok(Some(length as usize));
                }
                b'0'..=b'9' => {
                    if position >= MAX_HEADER_DIGITS {
                        return Err(Error::HeaderTooLong);
                    }
                    length = length
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(u64::from(byte - b'0')))
                        .ok_or(Error::HeaderTooLong)?;
                    if length > self.max_record as u64 {
                        return Err(Error::RecordTooLarge {
                            length,
                            limit: self.max_record,
                        });
                    }
                }
                _ => return Err(Error::InvalidHeaderByte { byte, position }),
            }
        }
        if buffer.len() > MAX_HEADER_DIGITS {
            return Err(Error::HeaderTooLong);
        }
        Ok(None)
    }
}

impl tokio_util::codec::Decoder for Decoder {
    type Item = Bytes;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        self.decode_from(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        match self.decode_from(src)? {
            Some(record) => Ok(Some(record)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => Err(Error::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

/// Appends one record holding `payload` to `out`.
pub fn encode_into(payload: &[u8], out: &mut impl BufMut) {
    out.put_slice(payload.len().to_string().as_bytes());
    out.put_u8(b'\n');
    out.put_slice(payload);
}

/// Returns one record holding `payload`.
pub fn encode(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 21);
    encode_into(payload, &mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut Decoder) -> Result<Vec<Bytes>, Error> {
        let mut records = Vec::new();
        while let Some(record) = decoder.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    #[test]
    fn round_trips_records_containing_line_feeds() {
        let payloads: [&[u8]; 3] = [b"a\nb", b"{\"type\":\"HEARTBEAT\"}", &[0x0a; 300]];
        let mut stream = BytesMut::new();
        for payload in payloads {
            encode_into(payload, &mut stream);
        }
        let mut decoder = Decoder::default();
        decoder.feed(&stream);
        let records = decode_all(&mut decoder).expect("valid stream");
        assert_eq!(records.len(), 3);
        for (record, payload) in records.iter().zip(payloads) {
            assert_eq!(record.as_ref(), payload);
        }
        decoder.finish().expect("ends at a boundary");
    }

    #[test]
    fn decodes_one_byte_at_a_time() {
        let stream = [encode(b"first"), encode(b"second\n")].concat();
        let mut decoder = Decoder::default();
        let mut records = Vec::new();
        for byte in stream {
            decoder.feed(&[byte]);
            records.extend(decode_all(&mut decoder).expect("valid stream"));
        }
        assert_eq!(records, vec![Bytes::from("first"), Bytes::from("second\n")]);
    }

    #[test]
    fn rejects_oversized_record_from_its_header() {
        let mut decoder = Decoder::new(10);
        decoder.feed(b"11\n");
        assert_eq!(
            decoder.next_record(),
            Err(Error::RecordTooLarge {
                length: 11,
                limit: 10
            })
        );
        // The header alone is enough: nothing of the body was needed.
        let mut decoder = Decoder::new(10);
        decoder.feed(b"99999999999");
        assert!(matches!(
            decoder.next_record(),
            Err(Error::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn rejects_malformed_headers() {
        for (input, expected) in [
            (&b"\n"[..], Error::EmptyRecord),
            (b"0\n", Error::EmptyRecord),
            (
                b"1a\n",
                Error::InvalidHeaderByte {
                    byte: b'a',
                    position: 1,
                },
            ),
            (b"123456789012345678901", Error::HeaderTooLong),
        ] {
            let mut decoder = Decoder::new(usize::MAX);
            decoder.feed(input);
            assert_eq!(decoder.next_record(), Err(expected), "input {input:?}");
        }
    }

    #[test]
    fn finish_reports_a_truncated_record() {
        let mut decoder = Decoder::default();
        decoder.feed(b"10\nabc");
        assert_eq!(decoder.next_record(), Ok(None));
        assert_eq!(decoder.finish(), Err(Error::Truncated { buffered: 3 }));
    }
}
