//! Reading department deliveries: a byte stream in, records out.
//!
//! City departments deliver datasets as files exported from their systems, often
//! from Excel and often in GBK. [`open`] turns such a stream into [`Records`], an
//! iterator of [`Record`]s, with precise positions for every problem. This crate
//! knows nothing of schemas or databases: the caller maps columns to fields.
//!
//! * **CSV** and **JSON Lines** are streamed: memory stays constant however large
//!   the file (a 1 MiB sniff buffer and a few small buffers; a single record is
//!   held whole, so one giant field or line is bounded only by `max_bytes`).
//! * **XLSX** is a zip archive that needs `Seek`: the input is spooled to an
//!   anonymous temporary file, so XLSX is bounded by `max_bytes` rather than
//!   streamed, and the selected sheet's non-empty cells are kept in memory.
//!
//! Encodings: a UTF-8 BOM means UTF-8 (it wins over a given encoding, as in the
//! WHATWG encoding standard); otherwise the given encoding is used, or the first
//! MiB decides: valid UTF-8 → UTF-8, else GB18030 (a superset of GBK and GB2312).
//! Decoding never replaces bytes: a malformed sequence anywhere is an
//! [`IngestError::Encoding`] naming its absolute byte offset.
//!
//! ```
//! use govhub_ingest::{open, Format, ReadOptions, Values};
//! let data = "名称,人口\n东城区,708829\n\n西城区,1106214\n";
//! let mut records = open(std::io::Cursor::new(data), ReadOptions::new(Format::Csv, 1 << 20))?;
//! assert_eq!(records.header(), ["名称", "人口"]);
//! let first = records.next().transpose()?;
//! assert_eq!(first.map(|r| r.values), Some(Values::Text(vec!["东城区".into(), "708829".into()])));
//! let blank = records.next().transpose()?;
//! assert_eq!(blank.map(|r| (r.number, r.line, r.values)), Some((2, 3, Values::Blank)));
//! # Ok::<(), govhub_ingest::IngestError>(())
//! ```
//!
//! [`Records::next_row`] is the same iteration without allocating: it lends each
//! record's cells (for CSV, slices of the decoded text) until the next call.

mod csv_reader;
#[cfg(test)]
mod csv_reference;
mod decode;
mod error;
mod jsonl;
mod stage;
mod xlsx;

pub use error::{IngestError, JsonKind, Position};
pub use stage::{stage, Staged};

use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The file formats a delivery may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Csv,
    JsonLines,
    Xlsx,
}

impl Format {
    /// From a `Content-Type` (parameters such as `; charset=gbk` are ignored).
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => Some(Format::Csv),
            "application/x-ndjson" | "application/jsonl" | "application/json-lines" => Some(Format::JsonLines),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// From a file extension (`csv`, `jsonl`, `ndjson`, `xlsx`; case-insensitive, a
    /// leading dot allowed).
    pub fn from_extension(extension: &str) -> Option<Format> {
        let ext = extension.trim().trim_start_matches('.').to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// The canonical content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::JsonLines => "application/x-ndjson",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// `csv`, `jsonl` or `xlsx`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }
}

/// Text encodings of CSV and JSON Lines files.
///
/// GBK (and GB2312, parsed as GBK) are decoded with the GB18030 decoder, which
/// accepts a superset of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Utf8,
    Gbk,
    Gb18030,
}

impl Encoding {
    /// `utf-8`, `utf8`, `gbk`, `gb2312`, `gb18030` (case-insensitive, trimmed).
    pub fn parse(label: &str) -> Option<Encoding> {
        match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "gbk" | "gb2312" => Some(Encoding::Gbk),
            "gb18030" => Some(Encoding::Gb18030),
            _ => None,
        }
    }

    /// `utf-8`, `gbk` or `gb18030` (accepted back by [`Encoding::parse`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Gbk => "gbk",
            Encoding::Gb18030 => "gb18030",
        }
    }

    /// `UTF-8`, `GBK` or `GB18030`, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Gbk => "GBK",
            Encoding::Gb18030 => "GB18030",
        }
    }

    fn encoding_rs(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gbk | Encoding::Gb18030 => encoding_rs::GB18030,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// How to read a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    pub format: Format,
    /// `None`: detect (CSV and JSON Lines; XLSX is always UTF-8 inside).
    pub encoding: Option<Encoding>,
    /// XLSX sheet name; `None`: the first sheet. An exact match is preferred, then
    /// a trimmed case-insensitive one.
    pub sheet: Option<String>,
    /// Reading more bytes than this is [`IngestError::TooLarge`].
    pub max_bytes: u64,
}

impl ReadOptions {
    /// Detected encoding, first sheet.
    pub fn new(format: Format, max_bytes: u64) -> ReadOptions {
        ReadOptions { format, encoding: None, sheet: None, max_bytes }
    }
}

/// The cells of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// CSV and XLSX: as many cells as the row has, which may be fewer or more than
    /// the header (the caller reports missing or extra cells). XLSX rows are
    /// padded with `""` up to the header's width, as empty cells are in Excel.
    Text(Vec<String>),
    /// JSON Lines: the line's object.
    Json(serde_json::Map<String, serde_json::Value>),
    /// A row with no content at all (Frictionless `blank-row`).
    Blank,
}

impl Values {
    pub fn is_blank(&self) -> bool {
        matches!(self, Values::Blank)
    }
}

/// The cells of a CSV or XLSX record, lent by [`Records::next_row`].
#[derive(Debug, Clone, Copy)]
pub struct Cells<'a>(CellsRepr<'a>);

#[derive(Debug, Clone, Copy)]
enum CellsRepr<'a> {
    /// Byte ranges of one text.
    Spans {
        text: &'a str,
        spans: &'a [(usize, usize)],
    },
    Owned(&'a [String]),
}

impl<'a> Cells<'a> {
    pub(crate) fn spans(text: &'a str, spans: &'a [(usize, usize)]) -> Cells<'a> {
        Cells(CellsRepr::Spans { text, spans })
    }

    /// How many cells the record has (which may differ from the header's width).
    pub fn len(&self) -> usize {
        match self.0 {
            CellsRepr::Spans { spans, .. } => spans.len(),
            CellsRepr::Owned(cells) => cells.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell `i` (0-based).
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self.0 {
            CellsRepr::Spans { text, spans } => spans.get(i).map(|&(a, b)| text.get(a..b).unwrap_or_default()),
            CellsRepr::Owned(cells) => cells.get(i).map(String::as_str),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let this = *self;
        (0..this.len()).filter_map(move |i| this.get(i))
    }

    /// The cells as owned strings (what [`Values::Text`] holds).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

/// The cells of a record lent by [`Records::next_row`] (see [`Values`]).
#[derive(Debug, Clone, Copy)]
pub enum RowValues<'a> {
    Text(Cells<'a>),
    Json(&'a serde_json::Map<String, serde_json::Value>),
    Blank,
}

/// A record lent by [`Records::next_row`]: valid until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// As [`Record::number`].
    pub number: u64,
    /// As [`Record::line`].
    pub line: u64,
    pub values: RowValues<'a>,
}

impl Row<'_> {
    /// The record as [`Records`]' iterator hands it out.
    pub fn to_record(&self) -> Record {
        let values = match self.values {
            RowValues::Text(cells) => Values::Text(cells.to_vec()),
            RowValues::Json(obj) => Values::Json(obj.clone()),
            RowValues::Blank => Values::Blank,
        };
        Record { number: self.number, line: self.line, values }
    }
}

/// One record of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1 = the first data row after the header; blank rows are counted.
    pub number: u64,
    /// Physical line (CSV, JSON Lines) where the record starts, or sheet row (XLSX); 1-based.
    /// In CSV a line break is LF, CRLF or a lone CR; JSON Lines are split on LF.
    pub line: u64,
    pub values: Values,
}

enum Inner {
    Csv(Box<csv_reader::CsvRecords>),
    Json(Box<jsonl::JsonRecords>),
    Xlsx(Box<xlsx::XlsxRecords>),
}

/// The records of a delivery: an iterator of `Result<Record, IngestError>`.
///
/// After a fatal error (see [`IngestError::is_fatal`]) the iteration ends; per-line
/// JSON errors are not fatal: the next item is the next line.
pub struct Records {
    inner: Inner,
    format: Format,
    encoding: Encoding,
    bytes: Arc<AtomicU64>,
    done: bool,
    /// The JSON or XLSX record last lent by `next_row`.
    current: Option<Record>,
}

impl Records {
    /// Column names: the first row with content for CSV and XLSX (cells trimmed, BOM
    /// removed); for JSON Lines the union of the keys seen so far, in first-seen
    /// order (at least the first object's keys).
    pub fn header(&self) -> &[String] {
        match &self.inner {
            Inner::Csv(r) => r.header(),
            Inner::Json(r) => r.header(),
            Inner::Xlsx(r) => r.header(),
        }
    }

    /// The encoding used (given or detected); `Utf8` for XLSX.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next record, lent until the next call: the same records, in the same
    /// order, with the same errors, as the iterator, without allocating the cells.
    pub fn next_row(&mut self) -> Option<Result<Row<'_>, IngestError>> {
        if self.done {
            return None;
        }
        let head = match &mut self.inner {
            Inner::Csv(r) => r.advance(),
            Inner::Json(_) | Inner::Xlsx(_) => {
                return match self.next_owned()? {
                    Ok(rec) => {
                        let rec = self.current.insert(rec);
                        let values = match &rec.values {
                            Values::Text(cells) => RowValues::Text(Cells(CellsRepr::Owned(cells))),
                            Values::Json(obj) => RowValues::Json(obj),
                            Values::Blank => RowValues::Blank,
                        };
                        Some(Ok(Row { number: rec.number, line: rec.line, values }))
                    }
                    Err(e) => Some(Err(e)),
                };
            }
        };
        match head {
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                if e.is_fatal() {
                    self.done = true;
                }
                Some(Err(e))
            }
            Ok(Some(h)) => {
                let Inner::Csv(r) = &self.inner else { return None };
                let values = if h.blank { RowValues::Blank } else { RowValues::Text(r.lend()) };
                Some(Ok(Row { number: h.number, line: h.line, values }))
            }
        }
    }

    /// The next JSON or XLSX record, owned (CSV records are read by `next_row`).
    fn next_owned(&mut self) -> Option<Result<Record, IngestError>> {
        if self.done {
            return None;
        }
        let item = match &mut self.inner {
            Inner::Csv(_) => return self.next_row().map(|r| r.map(|row| row.to_record())),
            Inner::Json(r) => r.next_item(),
            Inner::Xlsx(r) => r.next_record().map(Ok),
        };
        match &item {
            None => self.done = true,
            Some(Err(e)) if e.is_fatal() => self.done = true,
            Some(_) => {}
        }
        item
    }

    /// Bytes read from the input so far (for progress bars). CSV and JSON Lines
    /// read ahead a little (up to 1 MiB at the start); XLSX is read whole at `open`.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("format", &self.format)
            .field("encoding", &self.encoding)
            .field("header", &self.header())
            .field("bytes_read", &self.bytes_read())
            .field("done", &self.done)
            .finish()
    }
}

impl Iterator for Records {
    type Item = Result<Record, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_owned()
    }
}

/// Open a delivery. Errors found before the first record (empty file, encoding
/// or syntax errors in the header, anything wrong with an XLSX workbook) are
/// returned here; later ones are items of the iteration.
pub fn open(reader: impl Read + Send + 'static, opts: ReadOptions) -> Result<Records, IngestError> {
    let bytes = Arc::new(AtomicU64::new(0));
    let limited = decode::Limited::new(reader, opts.max_bytes, bytes.clone());
    let (inner, encoding) = match opts.format {
        Format::Xlsx => {
            (Inner::Xlsx(Box::new(xlsx::XlsxRecords::open(limited, opts.sheet.as_deref())?)), Encoding::Utf8)
        }
        Format::Csv => {
            let source: Box<dyn Read + Send> = Box::new(limited);
            let decoded = decode::DecodeReader::new(source, opts.encoding)?;
            let encoding = decoded.encoding();
            (Inner::Csv(Box::new(csv_reader::CsvRecords::open(decoded)?)), encoding)
        }
        Format::JsonLines => {
            let decoded = decode::DecodeReader::new(limited, opts.encoding)?;
            let encoding = decoded.encoding();
            let boxed: Box<dyn Read + Send> = Box::new(decoded);
            (Inner::Json(Box::new(jsonl::JsonRecords::open(boxed)?)), encoding)
        }
    };
    Ok(Records { inner, format: opts.format, encoding, bytes, done: false, current: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_encodings_parse() {
        assert_eq!(Format::from_content_type("text/csv; charset=GBK"), Some(Format::Csv));
        assert_eq!(Format::from_content_type("application/jsonl"), Some(Format::JsonLines));
        assert_eq!(Format::from_content_type(Format::Xlsx.content_type()), Some(Format::Xlsx));
        assert_eq!(Format::from_content_type("application/json"), None);
        assert_eq!(Format::from_extension(".NDJSON"), Some(Format::JsonLines));
        assert_eq!(Format::from_extension("xls"), None);
        assert_eq!(Encoding::parse("GB2312"), Some(Encoding::Gbk));
        assert_eq!(Encoding::parse(" UTF8 "), Some(Encoding::Utf8));
        assert_eq!(Encoding::parse("latin1"), None);
        for e in [Encoding::Utf8, Encoding::Gbk, Encoding::Gb18030] {
            assert_eq!(Encoding::parse(e.as_str()), Some(e));
        }
    }

    #[test]
    fn records_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Records>();
        assert_send::<IngestError>();
    }
}
