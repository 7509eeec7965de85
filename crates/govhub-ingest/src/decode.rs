//! Byte counting and size limit, encoding detection and streaming decoding to UTF-8.

use crate::{Encoding, IngestError};
use encoding_rs::DecoderResult;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How much of the input is looked at to detect its encoding.
pub(crate) const SNIFF_LEN: usize = 1 << 20;
const OUT_LEN: usize = 64 * 1024;
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Counts the bytes read (shared with [`crate::Records::bytes_read`]) and refuses
/// to read more than `limit` bytes.
pub(crate) struct Limited<R> {
    inner: R,
    counter: Arc<AtomicU64>,
    total: u64,
    limit: u64,
}

impl<R: Read> Limited<R> {
    pub(crate) fn new(inner: R, limit: u64, counter: Arc<AtomicU64>) -> Self {
        Limited { inner, counter, total: 0, limit }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past the limit is enough to know the file is too large.
        let allowed = self.limit.saturating_sub(self.total).saturating_add(1);
        let want = usize::try_from(allowed).map_or(buf.len(), |a| a.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        self.total = self.total.saturating_add(n as u64);
        self.counter.store(self.total, Ordering::Relaxed);
        if self.total > self.limit {
            return Err(IngestError::TooLarge { limit: self.limit }.into_io());
        }
        Ok(n)
    }
}

/// Is this prefix UTF-8? An incomplete sequence at its very end is allowed (it may
/// be cut by the sniff boundary; if it is really truncated, decoding reports it).
fn looks_utf8(prefix: &[u8]) -> bool {
    match std::str::from_utf8(prefix) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fn read_full<R: Read>(src: &mut R, buf: &mut [u8]) -> Result<(usize, bool), IngestError> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => return Ok((filled, true)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IngestError::from_io(e)),
        }
    }
    Ok((filled, false))
}

/// A `Read` that yields the input decoded to UTF-8, failing on the first
/// malformed byte sequence with its absolute byte offset.
pub(crate) struct DecodeReader<R> {
    src: R,
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// Absolute offset of `inbuf[in_start]`.
    consumed: u64,
    src_eof: bool,
    decoder: encoding_rs::Decoder,
    encoding: Encoding,
    detected: bool,
    out: Vec<u8>,
    out_start: usize,
    out_end: usize,
    finished: bool,
    at_start: bool,
    pending_error: Option<IngestError>,
}

impl<R: Read> DecodeReader<R> {
    /// Sniff the start of `src`, choose the encoding and get ready to decode.
    ///
    /// A UTF-8 BOM always means UTF-8 (as in the WHATWG encoding standard, the BOM
    /// wins over a given encoding); otherwise the given encoding is used, or the
    /// first [`SNIFF_LEN`] bytes decide between UTF-8 and GB18030.
    pub(crate) fn new(mut src: R, requested: Option<Encoding>) -> Result<Self, IngestError> {
        let mut inbuf = vec![0u8; SNIFF_LEN];
        let (filled, eof) = read_full(&mut src, &mut inbuf)?;
        let prefix = &inbuf[..filled];
        let bom = prefix.starts_with(&UTF8_BOM);
        let (encoding, detected) = if bom {
            (Encoding::Utf8, requested.is_none())
        } else if let Some(given) = requested {
            (given, false)
        } else if looks_utf8(prefix) {
            (Encoding::Utf8, true)
        } else {
            (Encoding::Gb18030, true)
        };
        let skip = if bom { UTF8_BOM.len() } else { 0 };
        Ok(DecodeReader {
            src,
            inbuf,
            in_start: skip,
            in_end: filled,
            consumed: skip as u64,
            src_eof: eof,
            decoder: encoding.encoding_rs().new_decoder_without_bom_handling(),
            encoding,
            detected,
            out: vec![0u8; OUT_LEN],
            out_start: 0,
            out_end: 0,
            finished: false,
            at_start: true,
            pending_error: None,
        })
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Decode the next chunk into `out`; leaves `out` empty only at the end.
    fn fill(&mut self) -> io::Result<()> {
        loop {
            if let Some(e) = self.pending_error.take() {
                self.finished = true;
                return Err(e.into_io());
            }
            if self.finished {
                return Ok(());
            }
            if self.in_start == self.in_end && !self.src_eof {
                match self.src.read(&mut self.inbuf) {
                    Ok(0) => self.src_eof = true,
                    Ok(n) => {
                        self.in_start = 0;
                        self.in_end = n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.finished = true;
                        return Err(e);
                    }
                }
            }
            let last = self.src_eof;
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.inbuf[self.in_start..self.in_end],
                &mut self.out,
                last,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            match result {
                DecoderResult::InputEmpty => {
                    self.consumed += read as u64;
                    if last {
                        self.finished = true;
                    }
                }
                DecoderResult::OutputFull => self.consumed += read as u64,
                DecoderResult::Malformed(bad, after) => {
                    let end = (self.consumed + read as u64).saturating_sub(u64::from(after));
                    self.consumed += read as u64;
                    self.pending_error = Some(IngestError::Encoding {
                        offset: end.saturating_sub(u64::from(bad)),
                        encoding: self.encoding,
                        detected: self.detected,
                    });
                }
            }
            if self.at_start && written > 0 {
                self.at_start = false;
                // A BOM in the decoded text (e.g. GB18030's 84 31 95 33) is not content.
                if self.out[..written].starts_with(&UTF8_BOM) {
                    self.out_start = UTF8_BOM.len();
                }
            }
            if self.out_start < self.out_end {
                return Ok(());
            }
        }
    }
}

impl<R: Read> DecodeReader<R> {
    /// Decode the next piece of input straight into `dst` (appended; at least
    /// `room` bytes are made free for it): the text is valid UTF-8 by construction
    /// and is not copied or checked again. `Ok(0)` only at the end. Errors and the
    /// BOM are as with `read`; the two ways of reading are not to be mixed.
    pub(crate) fn read_str(&mut self, dst: &mut String, room: usize) -> io::Result<usize> {
        loop {
            if let Some(e) = self.pending_error.take() {
                self.finished = true;
                return Err(e.into_io());
            }
            if self.finished {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.src_eof {
                match self.src.read(&mut self.inbuf) {
                    Ok(0) => self.src_eof = true,
                    Ok(n) => {
                        self.in_start = 0;
                        self.in_end = n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.finished = true;
                        return Err(e);
                    }
                }
            }
            let last = self.src_eof;
            dst.reserve(room.max(16));
            let before = dst.len();
            let (result, read) =
                self.decoder.decode_to_string_without_replacement(&self.inbuf[self.in_start..self.in_end], dst, last);
            self.in_start += read;
            match result {
                DecoderResult::InputEmpty => {
                    self.consumed += read as u64;
                    if last {
                        self.finished = true;
                    }
                }
                DecoderResult::OutputFull => self.consumed += read as u64,
                DecoderResult::Malformed(bad, after) => {
                    let end = (self.consumed + read as u64).saturating_sub(u64::from(after));
                    self.consumed += read as u64;
                    self.pending_error = Some(IngestError::Encoding {
                        offset: end.saturating_sub(u64::from(bad)),
                        encoding: self.encoding,
                        detected: self.detected,
                    });
                }
            }
            if self.at_start && dst.len() > before {
                self.at_start = false;
                // A BOM in the decoded text (e.g. GB18030's 84 31 95 33) is not content.
                if dst.get(before..).is_some_and(|t| t.starts_with('\u{feff}')) {
                    dst.replace_range(before..before + '\u{feff}'.len_utf8(), "");
                }
            }
            if dst.len() > before {
                return Ok(dst.len() - before);
            }
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.out_start == self.out_end {
            self.fill()?;
        }
        let n = (self.out_end - self.out_start).min(buf.len());
        buf[..n].copy_from_slice(&self.out[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: Vec<u8>, enc: Option<Encoding>) -> Result<(String, Encoding), IngestError> {
        let mut r = DecodeReader::new(io::Cursor::new(bytes), enc)?;
        let mut s = String::new();
        r.read_to_string(&mut s).map_err(IngestError::from_io)?;
        Ok((s, r.encoding()))
    }

    #[test]
    fn detects_utf8_gb18030_and_bom() -> Result<(), IngestError> {
        assert_eq!(decode_all("名称".as_bytes().to_vec(), None)?, ("名称".to_string(), Encoding::Utf8));
        let (gbk, _, _) = encoding_rs::GBK.encode("名称,人口");
        assert_eq!(decode_all(gbk.into_owned(), None)?, ("名称,人口".to_string(), Encoding::Gb18030));
        let mut bom = UTF8_BOM.to_vec();
        bom.extend_from_slice("a,b".as_bytes());
        assert_eq!(decode_all(bom.clone(), Some(Encoding::Gbk))?, ("a,b".to_string(), Encoding::Utf8));
        Ok(())
    }

    #[test]
    fn truncated_utf8_tail_is_an_error_at_its_offset() {
        let mut bytes = "ab名".as_bytes().to_vec();
        bytes.pop();
        match decode_all(bytes, None) {
            Err(IngestError::Encoding { offset, encoding, .. }) => {
                assert_eq!(offset, 2);
                assert_eq!(encoding, Encoding::Utf8);
            }
            other => unreachable!("unexpected {other:?}"),
        }
    }

    /// Hands out one byte per read, so sequences straddle reads.
    struct Trickle(io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn offsets_are_absolute_when_sequences_straddle_reads() {
        // Sniff reads everything here, so make the sniff see valid text only.
        let mut bytes = "名".repeat(SNIFF_LEN / 3 + 1).into_bytes();
        let head = bytes.len() as u64;
        bytes.extend_from_slice(&[0xE4, 0xB8, b'x']);
        let mut r = DecodeReader::new(Trickle(io::Cursor::new(bytes)), None).unwrap();
        assert_eq!(r.encoding(), Encoding::Utf8);
        let mut sink = Vec::new();
        let e = IngestError::from_io(r.read_to_end(&mut sink).unwrap_err());
        assert_eq!(e.position(), Some(crate::Position::Byte(head)));
        assert_eq!(sink.len() as u64, head);

        let (gb, _, _) = encoding_rs::GB18030.encode("𠀀€名");
        let mut gb = gb.into_owned();
        let mut prefix = vec![b'a'; SNIFF_LEN - 1];
        prefix.append(&mut gb);
        let mut r = DecodeReader::new(Trickle(io::Cursor::new(prefix)), Some(Encoding::Gb18030)).unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert!(out.ends_with("a𠀀€名"));
    }

    /// Everything `read_str` decodes, `room` bytes at a time, and how it ends.
    fn decode_str(bytes: Vec<u8>, enc: Option<Encoding>, room: usize) -> (String, Option<String>) {
        let mut out = String::new();
        let mut r = match DecodeReader::new(Trickle(io::Cursor::new(bytes)), enc) {
            Ok(r) => r,
            Err(e) => return (out, Some(format!("{e:?}"))),
        };
        loop {
            match r.read_str(&mut out, room) {
                Ok(0) => return (out, None),
                Ok(_) => {}
                Err(e) => return (out, Some(format!("{:?}", IngestError::from_io(e)))),
            }
        }
    }

    fn decode_read(bytes: Vec<u8>, enc: Option<Encoding>) -> (String, Option<String>) {
        let mut out = Vec::new();
        let end = DecodeReader::new(Trickle(io::Cursor::new(bytes)), enc)
            .and_then(|mut r| r.read_to_end(&mut out).map_err(IngestError::from_io))
            .err()
            .map(|e| format!("{e:?}"));
        (String::from_utf8(out).unwrap(), end)
    }

    #[test]
    fn read_str_gives_what_read_gives() {
        let (gb, _, _) = encoding_rs::GB18030.encode("\u{feff}名称,𠀀€\n");
        let cases: Vec<(Vec<u8>, Option<Encoding>)> = vec![
            ("名称,人口\n东城区,1".as_bytes().to_vec(), None),
            ([&UTF8_BOM[..], &UTF8_BOM[..], "a,b".as_bytes()].concat(), None),
            (gb.into_owned(), Some(Encoding::Gb18030)),
            (b"a,b\n1,\xFF\n2,3\n".to_vec(), None),
            (b"a,b\n1,\xFF\n2,3\n".to_vec(), Some(Encoding::Gbk)),
            ("ab名".as_bytes()[..4].to_vec(), Some(Encoding::Utf8)),
            (Vec::new(), None),
        ];
        for (bytes, enc) in cases {
            let want = decode_read(bytes.clone(), enc);
            for room in [1, 16, 1 << 16] {
                assert_eq!(decode_str(bytes.clone(), enc, room), want, "{bytes:?} {enc:?} {room}");
            }
        }
    }

    #[test]
    fn limited_refuses_past_the_limit() {
        let counter = Arc::new(AtomicU64::new(0));
        let mut r = Limited::new(io::Cursor::new(vec![1u8; 100]), 10, counter.clone());
        let mut sink = Vec::new();
        let e = r.read_to_end(&mut sink).map_err(IngestError::from_io);
        assert!(matches!(e, Err(IngestError::TooLarge { limit: 10 })));
        assert_eq!(counter.load(Ordering::Relaxed), 11);
        let mut ok = Limited::new(io::Cursor::new(vec![1u8; 10]), 10, counter);
        let mut sink = Vec::new();
        assert!(ok.read_to_end(&mut sink).is_ok());
    }
}
