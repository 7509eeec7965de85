//! CSV, read straight from the decoded text.
//!
//! The decoder appends UTF-8 text to a `String` buffer (valid by construction, so
//! never validated again) and records are found in it in place: a record without a
//! quote — nearly all of them — is located with two `memchr` scans (its end, then
//! its commas) and its cells are lent as slices of the buffer, with no copy and no
//! allocation. A record with a quote goes through a byte-by-byte state machine that
//! copies its cells into a scratch buffer.
//!
//! The dialect is the `csv` crate's with the settings used before (delimiter `,`,
//! quote `"`, doubled quotes, any of CR, LF, CRLF as terminator, no escape, no
//! comments, empty lines skipped): the first reader, which used that crate, is kept
//! in `csv_reference` and the tests check that both agree record by record, line by
//! line and error by error. Physical lines are counted as they pass (LF, CRLF or a
//! lone CR is one line break), so skipped blank lines become [`Values::Blank`]
//! records and a quote left open at the end names the line where it opened.
//!
//! [`Values::Blank`]: crate::Values::Blank

use crate::decode::DecodeReader;
use crate::IngestError;
use std::io::Read;

/// Decoded text asked for at a time.
const CHUNK: usize = 64 * 1024;

/// Where a record in the quoted state machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// What [`CsvRecords::advance`] found: the record's number and line, and whether
/// it is blank (its cells are then not looked at).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub(crate) number: u64,
    pub(crate) line: u64,
    pub(crate) blank: bool,
}

pub(crate) struct CsvRecords {
    src: DecodeReader<Box<dyn Read + Send>>,
    /// Decoded text; `buf[pos..]` is not parsed yet.
    buf: String,
    pos: usize,
    /// The decoder has nothing more.
    eof: bool,
    /// Text has been read: a BOM is stripped only at the very start, as `csv-core`
    /// does (the decoder has stripped the encoding's own BOM already).
    started: bool,
    /// Decoded text asked for at a time (small in tests, to cut records anywhere).
    chunk: usize,
    /// Physical line at `pos` (1-based).
    line: u64,
    /// The byte before `pos` was a CR (so an LF at `pos` ends no further line).
    after_cr: bool,
    /// The current record's cells: byte ranges in `buf`, or in `scratch` when
    /// `in_scratch` (records with quotes).
    spans: Vec<(usize, usize)>,
    in_scratch: bool,
    scratch: String,
    header: Vec<String>,
    prev_end: u64,
    blank_line: u64,
    blank_remaining: u64,
    /// A record read while blank lines before it are still being handed out: its
    /// line and whether it is blank (its cells stay in `spans`).
    pending: Option<(u64, bool)>,
    number: u64,
}

fn trim_header(cell: &str) -> String {
    cell.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').to_string()
}

impl CsvRecords {
    /// Read up to the header: the first row with any non-blank cell.
    pub(crate) fn open(src: DecodeReader<Box<dyn Read + Send>>) -> Result<CsvRecords, IngestError> {
        Self::open_with_chunk(src, CHUNK)
    }

    pub(crate) fn open_with_chunk(
        src: DecodeReader<Box<dyn Read + Send>>,
        chunk: usize,
    ) -> Result<CsvRecords, IngestError> {
        let mut this = CsvRecords {
            src,
            buf: String::new(),
            pos: 0,
            eof: false,
            started: false,
            chunk: chunk.max(16),
            line: 1,
            after_cr: false,
            spans: Vec::new(),
            in_scratch: false,
            scratch: String::new(),
            header: Vec::new(),
            prev_end: 0,
            blank_line: 0,
            blank_remaining: 0,
            pending: None,
            number: 0,
        };
        loop {
            match this.read_raw()? {
                None => return Err(IngestError::EmptyFile),
                Some((_, end)) => {
                    if this.cells().all(|f| trim_header(f).is_empty()) {
                        continue;
                    }
                    this.header = this.cells().map(trim_header).collect();
                    this.prev_end = end;
                    return Ok(this);
                }
            }
        }
    }

    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    /// The current record's cells.
    pub(crate) fn cells(&self) -> impl Iterator<Item = &str> + '_ {
        let text = if self.in_scratch { &self.scratch } else { &self.buf };
        self.spans.iter().map(move |&(a, b)| text.get(a..b).unwrap_or_default())
    }

    /// The current record's cells as lent to callers.
    pub(crate) fn lend(&self) -> crate::Cells<'_> {
        let text = if self.in_scratch { &self.scratch } else { &self.buf };
        crate::Cells::spans(text, &self.spans)
    }

    /// More decoded text at the end of `buf` (what was parsed is dropped first);
    /// `false` at the end of the input.
    fn fill(&mut self) -> Result<bool, IngestError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut n = self.src.read_str(&mut self.buf, self.chunk).map_err(IngestError::from_io)?;
        if !self.started && n > 0 {
            self.started = true;
            if self.buf.starts_with('\u{feff}') {
                self.buf.drain(..'\u{feff}'.len_utf8());
                n -= '\u{feff}'.len_utf8();
                if n == 0 {
                    // The BOM was all this read gave: read on.
                    return self.fill();
                }
            }
        }
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    fn count(&mut self, b: u8) {
        if b == b'\r' || (b == b'\n' && !self.after_cr) {
            self.line += 1;
        }
        self.after_cr = b == b'\r';
    }

    /// The next record, with its first and last physical line.
    fn read_raw(&mut self) -> Result<Option<(u64, u64)>, IngestError> {
        // Line breaks between records (blank lines) are skipped, and counted.
        loop {
            match self.buf.as_bytes().get(self.pos) {
                None => {
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
                Some(&b) if b == b'\n' || b == b'\r' => {
                    self.count(b);
                    self.pos += 1;
                }
                Some(_) => break,
            }
        }
        self.after_cr = false;
        let start = self.line;
        // Where the record's end, or a quote, may first be (bytes before it were
        // looked at already, before more text came in).
        let mut from = self.pos;
        loop {
            let bytes = self.buf.as_bytes();
            match memchr::memchr3(b'"', b'\n', b'\r', bytes.get(from..).unwrap_or_default()) {
                Some(i) if bytes[from + i] == b'"' => return self.read_quoted(start),
                Some(i) => {
                    self.split(self.pos, from + i);
                    self.pos = from + i;
                    return Ok(Some((start, start)));
                }
                None if self.eof => {
                    let end = bytes.len();
                    self.split(self.pos, end);
                    self.pos = end;
                    return Ok(Some((start, start)));
                }
                None => {
                    let seen = bytes.len() - self.pos;
                    self.fill()?;
                    from = self.pos + seen;
                }
            }
        }
    }

    /// Cells of the quote-free record `buf[start..end]`, split at its commas.
    fn split(&mut self, start: usize, end: usize) {
        self.spans.clear();
        self.in_scratch = false;
        let mut a = start;
        let record = self.buf.as_bytes().get(start..end).unwrap_or_default();
        for i in memchr::memchr_iter(b',', record) {
            self.spans.push((a, start + i));
            a = start + i + 1;
        }
        self.spans.push((a, end));
    }

    /// A record with a quote somewhere, from `pos` (its first byte): the `csv`
    /// crate's state machine, copying cells into `scratch`.
    fn read_quoted(&mut self, start: u64) -> Result<Option<(u64, u64)>, IngestError> {
        self.spans.clear();
        self.scratch.clear();
        self.in_scratch = true;
        let mut state = State::StartField;
        let mut cell_start = 0;
        // Start in `buf` of the text being copied (in `InField` and `InQuoted`).
        let mut run = self.pos;
        let mut quote_line = start;
        loop {
            let Some(&b) = self.buf.as_bytes().get(self.pos) else {
                if matches!(state, State::InField | State::InQuoted) {
                    self.scratch.push_str(self.buf.get(run..self.pos).unwrap_or_default());
                }
                if !self.fill()? {
                    if state == State::InQuoted {
                        return Err(IngestError::UnclosedQuote { line: quote_line });
                    }
                    self.spans.push((cell_start, self.scratch.len()));
                    return Ok(Some((start, self.line)));
                }
                run = self.pos;
                continue;
            };
            let term = b == b'\n' || b == b'\r';
            match state {
                State::StartField | State::QuoteInQuoted if b == b',' || term => {
                    self.spans.push((cell_start, self.scratch.len()));
                    cell_start = self.scratch.len();
                    if term {
                        return Ok(Some((start, self.line)));
                    }
                    state = State::StartField;
                }
                State::StartField if b == b'"' => {
                    quote_line = self.line;
                    state = State::InQuoted;
                    run = self.pos + 1;
                }
                State::StartField => {
                    state = State::InField;
                    run = self.pos;
                }
                State::QuoteInQuoted if b == b'"' => {
                    self.scratch.push('"');
                    state = State::InQuoted;
                    run = self.pos + 1;
                }
                State::QuoteInQuoted => {
                    state = State::InField;
                    run = self.pos;
                }
                State::InField if b == b',' || term => {
                    self.scratch.push_str(self.buf.get(run..self.pos).unwrap_or_default());
                    self.spans.push((cell_start, self.scratch.len()));
                    cell_start = self.scratch.len();
                    if term {
                        return Ok(Some((start, self.line)));
                    }
                    state = State::StartField;
                }
                State::InField => {}
                State::InQuoted if b == b'"' => {
                    self.scratch.push_str(self.buf.get(run..self.pos).unwrap_or_default());
                    state = State::QuoteInQuoted;
                }
                State::InQuoted => {}
            }
            self.count(b);
            self.pos += 1;
        }
    }

    fn emit(&mut self, line: u64, blank: bool) -> Head {
        self.number += 1;
        Head { number: self.number, line, blank }
    }

    /// Move to the next record; its cells are then [`CsvRecords::lend`]. `Ok(None)`
    /// at the end; an `Err` is fatal.
    pub(crate) fn advance(&mut self) -> Result<Option<Head>, IngestError> {
        if self.blank_remaining > 0 {
            self.blank_remaining -= 1;
            let line = self.blank_line;
            self.blank_line += 1;
            return Ok(Some(self.emit(line, true)));
        }
        if let Some((line, blank)) = self.pending.take() {
            return Ok(Some(self.emit(line, blank)));
        }
        let Some((start, end)) = self.read_raw()? else {
            return Ok(None);
        };
        let blank = self.spans.iter().all(|&(a, b)| a == b);
        let first_blank = self.prev_end + 1;
        self.prev_end = end;
        if start > first_blank {
            self.blank_line = first_blank + 1;
            self.blank_remaining = start - first_blank - 1;
            self.pending = Some((start, blank));
            return Ok(Some(self.emit(first_blank, true)));
        }
        Ok(Some(self.emit(start, blank)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{csv_reference, Encoding, Values};
    use proptest::prelude::*;
    use std::io;

    /// Hands out at most `n` bytes per read, so text arrives in pieces.
    struct Trickle(io::Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    fn decoder(bytes: &[u8], piece: usize) -> Result<DecodeReader<Box<dyn Read + Send>>, IngestError> {
        let src: Box<dyn Read + Send> = Box::new(Trickle(io::Cursor::new(bytes.to_vec()), piece));
        DecodeReader::new(src, Some(Encoding::Utf8))
    }

    type Outcome = (Vec<String>, Vec<(u64, u64, Values)>, Option<String>);

    fn outcome_of(e: &IngestError) -> Outcome {
        (Vec::new(), Vec::new(), Some(format!("{e:?}")))
    }

    /// Everything the fast reader makes of `bytes`: header, records, final error.
    fn fast(bytes: &[u8], piece: usize, chunk: usize) -> Outcome {
        let mut r = match decoder(bytes, piece).and_then(|d| CsvRecords::open_with_chunk(d, chunk)) {
            Ok(r) => r,
            Err(e) => return outcome_of(&e),
        };
        let mut rows = Vec::new();
        loop {
            match r.advance() {
                Ok(Some(h)) => {
                    let values = if h.blank { Values::Blank } else { Values::Text(r.lend().to_vec()) };
                    rows.push((h.number, h.line, values));
                }
                Ok(None) => return (r.header().to_vec(), rows, None),
                Err(e) => return (r.header().to_vec(), rows, Some(format!("{e:?}"))),
            }
        }
    }

    /// The same with the first reader (the `csv` crate and its tracker).
    fn reference(bytes: &[u8]) -> Outcome {
        let d = match decoder(bytes, usize::MAX) {
            Ok(d) => d,
            Err(e) => return outcome_of(&e),
        };
        let mut r = match csv_reference::CsvRecords::open(Box::new(d)) {
            Ok(r) => r,
            Err(e) => return outcome_of(&e),
        };
        let mut rows = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => rows.push((rec.number, rec.line, rec.values)),
                Ok(None) => return (r.header().to_vec(), rows, None),
                Err(e) => return (r.header().to_vec(), rows, Some(format!("{e:?}"))),
            }
        }
    }

    #[test]
    fn agrees_with_the_reference_on_known_cases() {
        let cases = [
            "a,b\r\n\r\n\"x\ny\",2\n3",
            "a\n\"open\n\nmore",
            "a,\"b\"\"c\"d\n",
            "a,b,c\n\"x, y\",\"line1\nline2\",\"he said \"\"hi\"\"\"\n2,\"\",4\n",
            "a,b\n1,2\n\n,\n\n3,4\n\n\n",
            "a,b\r1,2\r\r3,4\r",
            "\n\n  \n名称,人口\n\n东城区,1",
            "a,b\n1,2\n3,4\n5,\"oops\n6,7\n8,9\n",
            "a,\"b\n1,2\n",
            "a,b\n\"x\ny\",2\n3 \"inch\",4\n5,\"open\n",
            "a\n\"\"\n\"\",\"\"\n\"a\"\"\"\n\"\"\"\"\n",
            "a\n\"x\"y\"z\",w\n\"q\r\n\"\r\n",
            "a,b\n1,\"2\r\n",
            "\u{feff}a,b\n1,2",
            "\u{feff}\u{feff}\u{feff}\",\"\"",
            "",
            "  \n\t\r\n",
            "a",
            "a\n,,,\n",
        ];
        for case in cases {
            let want = reference(case.as_bytes());
            for (piece, chunk) in [(usize::MAX, CHUNK), (1, 16), (3, 17), (7, 64)] {
                assert_eq!(fast(case.as_bytes(), piece, chunk), want, "{case:?} piece {piece} chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_quote_free_record_is_lent_from_the_buffer() {
        let mut r = CsvRecords::open(decoder("h1,h2\n东城区,708829\n\"a\",b\n".as_bytes(), 1 << 20).unwrap()).unwrap();
        assert!(r.advance().unwrap().is_some());
        assert!(!r.in_scratch);
        assert_eq!(r.lend().to_vec(), ["东城区", "708829"]);
        assert!(r.advance().unwrap().is_some());
        assert!(r.in_scratch);
        assert_eq!(r.lend().to_vec(), ["a", "b"]);
    }

    /// CSV-ish text made of the bytes that matter (delimiters, quotes, every line
    /// break, spaces) and a little content, ASCII and not.
    fn csvish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => Just(",".to_string()),
            3 => Just("\"".to_string()),
            2 => Just("\n".to_string()),
            1 => Just("\r\n".to_string()),
            1 => Just("\r".to_string()),
            1 => Just(" ".to_string()),
            1 => Just("\u{feff}".to_string()),
            4 => "[a-c1-3]{1,4}",
            2 => "[名称区]{1,2}",
        ];
        proptest::collection::vec(piece, 0..60).prop_map(|v| v.concat())
    }

    /// Records of well-formed CSV: cells quoted or not, with the line break chosen
    /// per file, blank lines here and there.
    fn wellformed() -> impl Strategy<Value = String> {
        let cell = prop_oneof![
            3 => "[a-z0-9 名称]{0,6}",
            1 => "[a-z,\"\n\r 名]{0,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        ];
        let row = proptest::collection::vec(cell, 1..5).prop_map(|c| c.join(","));
        let eol = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        (proptest::collection::vec(prop_oneof![5 => row, 1 => Just(String::new())], 1..12), eol, any::<bool>())
            .prop_map(|(rows, eol, last)| {
                let mut s = rows.join(eol);
                if last {
                    s.push_str(eol);
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn agrees_with_the_reference_on_random_bytes(text in csvish(), piece in 1usize..9, chunk in 16usize..40) {
            let want = reference(text.as_bytes());
            prop_assert_eq!(fast(text.as_bytes(), usize::MAX, CHUNK), want.clone());
            prop_assert_eq!(fast(text.as_bytes(), piece, chunk), want);
        }

        #[test]
        fn agrees_with_the_reference_on_wellformed_csv(text in wellformed(), piece in 1usize..9, chunk in 16usize..40) {
            let want = reference(text.as_bytes());
            prop_assert_eq!(fast(text.as_bytes(), usize::MAX, CHUNK), want.clone());
            prop_assert_eq!(fast(text.as_bytes(), piece, chunk), want);
        }
    }
}
