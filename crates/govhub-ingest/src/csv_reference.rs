//! The first CSV reader, kept as the reference the fast one is tested against: the
//! `csv` crate does the parsing; a tracker watching the same decoded bytes knows the
//! physical line where each record starts and ends (so skipped blank lines become
//! [`Values::Blank`] records) and catches a quote left open at EOF.

use crate::{IngestError, Record, Values};
use std::collections::VecDeque;
use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: Option<u64>,
}

/// Mirrors `csv_core`'s state machine for the settings used here (delimiter `,`,
/// quote `"`, doubled quotes, any of CR, LF, CRLF as terminator, no escape, no
/// comments) over the bytes as they flow into the CSV reader.
struct Tracker<R> {
    inner: R,
    state: State,
    line: u64,
    after_cr: bool,
    quote_line: u64,
    started: u64,
    spans: VecDeque<Span>,
    /// (index of the record, line where its open quote started).
    unclosed: Option<(u64, u64)>,
    eof: bool,
    /// Bytes have been read: `csv_core` drops a UTF-8 BOM when it is whole in its first
    /// input, so the tracker does not step over one there either.
    read_any: bool,
}

impl<R: Read> Tracker<R> {
    fn new(inner: R) -> Self {
        Tracker {
            inner,
            state: State::StartRecord,
            line: 1,
            after_cr: false,
            quote_line: 1,
            started: 0,
            spans: VecDeque::new(),
            unclosed: None,
            eof: false,
            read_any: false,
        }
    }

    fn end_record(&mut self) {
        if let Some(span) = self.spans.back_mut() {
            span.end = Some(self.line);
        }
        self.state = State::StartRecord;
    }

    fn step(&mut self, b: u8) {
        let term = b == b'\n' || b == b'\r';
        if self.state == State::StartRecord {
            if term {
                self.count_line_break(b);
                return;
            }
            self.spans.push_back(Span { start: self.line, end: None });
            self.started += 1;
            self.state = State::StartField;
        }
        match self.state {
            State::StartRecord => {}
            State::StartField => {
                if b == b'"' {
                    self.quote_line = self.line;
                    self.state = State::InQuoted;
                } else if term {
                    self.end_record();
                } else if b != b',' {
                    self.state = State::InField;
                }
            }
            State::InField => {
                if b == b',' {
                    self.state = State::StartField;
                } else if term {
                    self.end_record();
                }
            }
            State::InQuoted => {
                if b == b'"' {
                    self.state = State::QuoteInQuoted;
                }
            }
            State::QuoteInQuoted => {
                if b == b'"' {
                    self.state = State::InQuoted;
                } else if b == b',' {
                    self.state = State::StartField;
                } else if term {
                    self.end_record();
                } else {
                    self.state = State::InField;
                }
            }
        }
        self.count_line_break(b);
    }

    /// A line break is LF, CRLF or a lone CR (old Mac files).
    fn count_line_break(&mut self, b: u8) {
        if b == b'\r' || (b == b'\n' && !self.after_cr) {
            self.line += 1;
        }
        self.after_cr = b == b'\r';
    }

    fn at_eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        if self.state == State::InQuoted {
            self.unclosed = Some((self.started.saturating_sub(1), self.quote_line));
        }
        if self.state != State::StartRecord {
            self.end_record();
        }
    }
}

impl<R: Read> Read for Tracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_eof();
        }
        let mut from = 0;
        if !self.read_any && n > 0 {
            self.read_any = true;
            if buf[..n].starts_with(b"\xef\xbb\xbf") {
                from = 3;
            }
        }
        for &b in &buf[from..n] {
            self.step(b);
        }
        Ok(n)
    }
}

pub(crate) struct CsvRecords {
    reader: csv::Reader<Tracker<Box<dyn Read + Send>>>,
    record: csv::StringRecord,
    header: Vec<String>,
    next_index: u64,
    prev_end: u64,
    blank_line: u64,
    blank_remaining: u64,
    pending: Option<(u64, Values)>,
    number: u64,
}

fn trim_header(cell: &str) -> String {
    cell.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').to_string()
}

impl CsvRecords {
    /// Read up to the header: the first row with any non-blank cell.
    pub(crate) fn open(decoded: Box<dyn Read + Send>) -> Result<CsvRecords, IngestError> {
        let reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(Tracker::new(decoded));
        let mut this = CsvRecords {
            reader,
            record: csv::StringRecord::new(),
            header: Vec::new(),
            next_index: 0,
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
                    if this.record.iter().all(|f| trim_header(f).is_empty()) {
                        continue;
                    }
                    this.header = this.record.iter().map(trim_header).collect();
                    this.prev_end = end;
                    return Ok(this);
                }
            }
        }
    }

    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    /// The next record of the CSV reader, with its first and last physical line.
    fn read_raw(&mut self) -> Result<Option<(u64, u64)>, IngestError> {
        let guess = self.prev_end + 1;
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let index = self.next_index;
                self.next_index += 1;
                let tracker = self.reader.get_mut();
                if let Some((unclosed, line)) = tracker.unclosed {
                    if unclosed == index {
                        return Err(IngestError::UnclosedQuote { line });
                    }
                }
                let span = tracker.spans.pop_front().unwrap_or(Span { start: guess, end: None });
                Ok(Some((span.start, span.end.unwrap_or(span.start))))
            }
            Err(e) => Err(map_csv_error(e, guess)),
        }
    }

    fn emit(&mut self, line: u64, values: Values) -> Record {
        self.number += 1;
        Record { number: self.number, line, values }
    }

    /// `Ok(None)` at the end; an `Err` is fatal.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record>, IngestError> {
        if self.blank_remaining > 0 {
            self.blank_remaining -= 1;
            let line = self.blank_line;
            self.blank_line += 1;
            return Ok(Some(self.emit(line, Values::Blank)));
        }
        if let Some((line, values)) = self.pending.take() {
            return Ok(Some(self.emit(line, values)));
        }
        let Some((start, end)) = self.read_raw()? else {
            return Ok(None);
        };
        let values = if self.record.iter().all(str::is_empty) {
            Values::Blank
        } else {
            Values::Text(self.record.iter().map(str::to_string).collect())
        };
        let first_blank = self.prev_end + 1;
        self.prev_end = end;
        if start > first_blank {
            self.blank_line = first_blank + 1;
            self.blank_remaining = start - first_blank - 1;
            self.pending = Some((start, values));
            return Ok(Some(self.emit(first_blank, Values::Blank)));
        }
        Ok(Some(self.emit(start, values)))
    }
}

fn map_csv_error(e: csv::Error, line: u64) -> IngestError {
    let line = e.position().map_or(line, |p| p.line().max(line));
    if e.is_io_error() {
        if let csv::ErrorKind::Io(io) = e.into_kind() {
            return IngestError::from_io(io);
        }
        return IngestError::MalformedCsv { line, detail: "read error".to_string() };
    }
    IngestError::MalformedCsv { line, detail: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Tracked = (Vec<(u64, Option<u64>)>, Option<(u64, u64)>);

    fn spans(text: &str) -> Tracked {
        let mut t = Tracker::new(io::Cursor::new(text.as_bytes().to_vec()));
        let mut sink = Vec::new();
        t.read_to_end(&mut sink).unwrap_or_default();
        (t.spans.iter().map(|s| (s.start, s.end)).collect(), t.unclosed)
    }

    #[test]
    fn tracker_finds_record_lines() {
        assert_eq!(spans("a,b\r\n\r\n\"x\ny\",2\n3"), (vec![(1, Some(1)), (3, Some(4)), (5, Some(5))], None));
        assert_eq!(spans("a\n\"open\n\nmore"), (vec![(1, Some(1)), (2, Some(4))], Some((1, 2))));
        assert_eq!(spans("a,\"b\"\"c\"d\n"), (vec![(1, Some(1))], None));
    }
}
