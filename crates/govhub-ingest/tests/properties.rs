//! Property tests (round trips, no panics) and a streaming test on ~50 MB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_ingest::{open, Encoding, Format, ReadOptions, Values};
use proptest::prelude::*;
use std::io::{Cursor, Read};

fn cell_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'z'),
        2 => Just(','),
        2 => Just('"'),
        1 => Just('\n'),
        1 => Just('\r'),
        1 => Just(' '),
        2 => prop::char::range('一', '龥'),
        1 => Just('𠀀'),
        1 => Just('€'),
        1 => Just('é'),
        2 => any::<char>(),
    ]
}

fn cell() -> impl Strategy<Value = String> {
    prop::collection::vec(cell_char(), 0..8).prop_map(|cs| cs.into_iter().collect())
}

fn header() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z名称人口]{1,6}", 1..5)
}

fn table() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
    (header(), prop::collection::vec(prop::collection::vec(cell(), 1..6), 0..20))
}

/// LF, CRLF and a lone CR are line breaks.
fn line_breaks(bytes: &[u8]) -> u64 {
    let mut n = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' || (b == b'\n' && (i == 0 || bytes[i - 1] != b'\r')) {
            n += 1;
        }
    }
    n
}

/// CSV text and the physical line where each data row starts.
fn write_csv(header: &[String], rows: &[Vec<String>]) -> (String, Vec<u64>) {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    w.write_record(header).unwrap();
    let mut lines = Vec::new();
    for row in rows {
        w.flush().unwrap();
        lines.push(line_breaks(w.get_ref()) + 1);
        w.write_record(row).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    (String::from_utf8(bytes).unwrap(), lines)
}

fn expected(row: &[String]) -> Values {
    if row.iter().all(String::is_empty) {
        Values::Blank
    } else {
        Values::Text(row.to_vec())
    }
}

fn gb18030_round_trips(s: &str) -> bool {
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(s);
    if unmappable {
        return false;
    }
    let (back, malformed) = encoding_rs::GB18030.decode_without_bom_handling(&bytes);
    !malformed && back == s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn csv_tables_read_back_identically((header, rows) in table(), as_gb18030 in any::<bool>()) {
        let (text, lines) = write_csv(&header, &rows);
        let (bytes, encoding) = if as_gb18030 {
            prop_assume!(gb18030_round_trips(&text));
            (encoding_rs::GB18030.encode(&text).0.into_owned(), Some(Encoding::Gb18030))
        } else {
            (text.into_bytes(), None)
        };
        let mut opts = ReadOptions::new(Format::Csv, 1 << 30);
        opts.encoding = encoding;
        let records = open(Cursor::new(bytes), opts).unwrap();
        prop_assert_eq!(records.header(), &header[..]);
        let got: Vec<_> = records.map(|r| r.unwrap()).collect();
        prop_assert_eq!(got.len(), rows.len());
        for (i, (record, row)) in got.iter().zip(&rows).enumerate() {
            prop_assert_eq!(record.number, i as u64 + 1);
            prop_assert_eq!(record.line, lines[i]);
            prop_assert_eq!(&record.values, &expected(row));
        }
    }

    /// Whatever the bytes, the reader ends without panicking, and CSV records
    /// agree with what the csv crate parses.
    #[test]
    fn never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        encoding in prop_oneof![Just(None), Just(Some(Encoding::Utf8)), Just(Some(Encoding::Gbk))],
    ) {
        for format in [Format::Csv, Format::JsonLines, Format::Xlsx] {
            let mut opts = ReadOptions::new(format, 1500);
            opts.encoding = encoding;
            if let Ok(records) = open(Cursor::new(bytes.clone()), opts) {
                for item in records.take(5000) {
                    let _ = item.map(|r| r.values);
                }
            }
        }
    }

    #[test]
    fn csv_like_text_matches_the_csv_crate(
        text in prop::collection::vec(
            prop_oneof![Just(','), Just('"'), Just('\n'), Just('\r'), Just('a'), Just(' '), Just('中')],
            0..300,
        ).prop_map(|cs| cs.into_iter().collect::<String>())
    ) {
        let direct: Vec<Vec<String>> = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        let Ok(records) = open(Cursor::new(text.clone().into_bytes()), ReadOptions::new(Format::Csv, 1 << 20)) else {
            return Ok(());
        };
        let mut numbers = Vec::new();
        let mut lines = Vec::new();
        let mut texts = Vec::new();
        let mut failed = false;
        for item in records {
            match item {
                Ok(r) => {
                    numbers.push(r.number);
                    lines.push(r.line);
                    if let Values::Text(v) = r.values {
                        texts.push(v);
                    }
                }
                Err(e) => {
                    prop_assert_eq!(e.code(), "source-error");
                    failed = true;
                }
            }
        }
        prop_assert_eq!(numbers.clone(), (1..=numbers.len() as u64).collect::<Vec<_>>());
        prop_assert!(lines.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(lines.iter().all(|&l| l <= line_breaks(text.as_bytes()) + 1));
        // Skip the rows before and including the header, and all-empty rows.
        let header_at = direct.iter().position(|r| r.iter().any(|c| !c.trim().is_empty()));
        let expected: Vec<Vec<String>> = match header_at {
            Some(h) => direct[h + 1..].iter().filter(|r| r.iter().any(|c| !c.is_empty())).cloned().collect(),
            None => Vec::new(),
        };
        if failed {
            // The unclosed-quote record (the last one) is replaced by the error.
            prop_assert!(expected.len() >= texts.len());
            prop_assert_eq!(&expected[..texts.len()], &texts[..]);
        } else {
            prop_assert_eq!(expected, texts);
        }
    }
}

/// Produces a CSV on the fly: nothing but the current row is ever in memory.
struct Generated {
    rows_left: u64,
    next: u64,
    buf: Vec<u8>,
    pos: usize,
    produced: u64,
}

impl Generated {
    fn new(rows: u64) -> Generated {
        Generated {
            rows_left: rows, next: 0, buf: "区划代码,名称,说明\n".as_bytes().to_vec(), pos: 0, produced: 0
        }
    }
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.rows_left == 0 {
                return Ok(0);
            }
            self.rows_left -= 1;
            self.next += 1;
            self.buf.clear();
            self.pos = 0;
            let i = self.next;
            self.buf.extend_from_slice(
                format!("{:06},第{i}街道,\"含逗号, 和\"\"引号\"\" {i}\"\n", 110000 + i % 1000).as_bytes(),
            );
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.produced += n as u64;
        Ok(n)
    }
}

#[test]
fn streams_a_50_mb_csv_with_growing_progress() {
    let rows = 1_000_000u64;
    let mut records = open(Generated::new(rows), ReadOptions::new(Format::Csv, 1 << 30)).unwrap();
    assert_eq!(records.header(), ["区划代码", "名称", "说明"]);
    // Only the sniff buffer (1 MiB) and small read-ahead buffers are read so far.
    let at_start = records.bytes_read();
    assert!(at_start <= (1 << 20) + (64 << 10), "{at_start}");
    let mut count = 0u64;
    let mut last_progress = at_start;
    let mut increases = 0;
    while let Some(item) = records.next() {
        let r = item.unwrap();
        count += 1;
        if count == 1 {
            assert_eq!(r.values, Values::Text(vec!["110001".into(), "第1街道".into(), "含逗号, 和\"引号\" 1".into()]));
        }
        if count.is_multiple_of(100_000) {
            let now = records.bytes_read();
            assert!(now >= last_progress);
            if now > last_progress {
                increases += 1;
            }
            // Never far ahead of what has been handed out.
            assert!(now <= r.line * 60 + (2 << 20), "{now} at line {}", r.line);
            last_progress = now;
            assert_eq!(r.number, count);
            assert_eq!(r.line, count + 1);
        }
    }
    assert_eq!(count, rows);
    assert!(increases >= 9, "{increases}");
    let total = records.bytes_read();
    assert!(total > 50_000_000, "{total}");
}

#[test]
fn streams_json_lines_without_reading_ahead() {
    struct Lines(u64, Vec<u8>, usize);
    impl Read for Lines {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.2 == self.1.len() {
                if self.0 == 0 {
                    return Ok(0);
                }
                self.0 -= 1;
                self.1 = format!("{{\"id\":{},\"名称\":\"东城区\"}}\n", self.0).into_bytes();
                self.2 = 0;
            }
            let n = (self.1.len() - self.2).min(out.len());
            out[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
            self.2 += n;
            Ok(n)
        }
    }
    let mut records = open(Lines(300_000, Vec::new(), 0), ReadOptions::new(Format::JsonLines, 1 << 30)).unwrap();
    assert_eq!(records.header(), ["id", "名称"]);
    assert!(records.bytes_read() <= (1 << 20) + (64 << 10));
    let mut n = 0;
    for item in records.by_ref() {
        item.unwrap();
        n += 1;
    }
    assert_eq!(n, 300_000);
    assert!(records.bytes_read() > 8_000_000);
}
