//! Known-answer tests for CSV and JSON Lines: encodings, quoting, blank rows,
//! positions of errors, size limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_ingest::{open, Encoding, Format, IngestError, JsonKind, Position, ReadOptions, Record, Records, Values};
use std::io::Cursor;

const BIG: u64 = 1 << 30;

fn opts(format: Format) -> ReadOptions {
    ReadOptions::new(format, BIG)
}

fn open_bytes(bytes: impl Into<Vec<u8>>, opts: ReadOptions) -> Result<Records, IngestError> {
    open(Cursor::new(bytes.into()), opts)
}

/// Everything the reader produces: an `open` error is the only item.
fn items(bytes: impl Into<Vec<u8>>, opts: ReadOptions) -> Vec<Result<Record, IngestError>> {
    match open_bytes(bytes, opts) {
        Ok(records) => records.collect(),
        Err(e) => vec![Err(e)],
    }
}

fn text(cells: &[&str]) -> Values {
    Values::Text(cells.iter().map(|c| c.to_string()).collect())
}

fn ok_rows(records: Records) -> Vec<(u64, u64, Values)> {
    records
        .map(|r| {
            let r = r.unwrap();
            (r.number, r.line, r.values)
        })
        .collect()
}

fn gbk(s: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(s);
    assert!(!unmappable);
    bytes.into_owned()
}

// ---------------------------------------------------------------- encodings

#[test]
fn utf8_without_bom() {
    let r = open_bytes("名称,人口\n东城区,708829\n", opts(Format::Csv)).unwrap();
    assert_eq!(r.encoding(), Encoding::Utf8);
    assert_eq!(r.header(), ["名称", "人口"]);
    assert_eq!(ok_rows(r), vec![(1, 2, text(&["东城区", "708829"]))]);
}

#[test]
fn utf8_with_bom_is_removed_and_header_trimmed() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(" 名称 , 人口\r\n东城区, 708829 \r\n".as_bytes());
    let r = open_bytes(bytes, opts(Format::Csv)).unwrap();
    assert_eq!(r.encoding(), Encoding::Utf8);
    assert_eq!(r.header(), ["名称", "人口"]);
    // Data cells are not trimmed: that is the caller's business.
    assert_eq!(ok_rows(r), vec![(1, 2, text(&["东城区", " 708829 "]))]);
}

#[test]
fn gbk_is_detected_and_decoded() {
    let bytes = gbk("统一社会信用代码,企业名称\r\n91110000100000000X,北京某某科技有限公司\r\n");
    let r = open_bytes(bytes.clone(), opts(Format::Csv)).unwrap();
    assert_eq!(r.encoding(), Encoding::Gb18030);
    assert_eq!(r.header(), ["统一社会信用代码", "企业名称"]);
    assert_eq!(ok_rows(r), vec![(1, 2, text(&["91110000100000000X", "北京某某科技有限公司"]))]);

    let mut given = opts(Format::Csv);
    given.encoding = Encoding::parse("GBK");
    let r = open_bytes(bytes, given).unwrap();
    assert_eq!(r.encoding(), Encoding::Gbk);
    assert_eq!(r.header(), ["统一社会信用代码", "企业名称"]);
}

#[test]
fn gb18030_four_byte_characters_and_euro() {
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode("姓名,备注\n𠀀𠀁,€100\n");
    assert!(!unmappable);
    // 𠀀 (U+20000) is a four-byte GB18030 sequence.
    assert_eq!(&bytes[10..14], &[0x95, 0x32, 0x82, 0x36]);
    let r = open_bytes(bytes.into_owned(), opts(Format::Csv)).unwrap();
    assert_eq!(r.encoding(), Encoding::Gb18030);
    assert_eq!(ok_rows(r), vec![(1, 2, text(&["𠀀𠀁", "€100"]))]);

    // GBK's single-byte euro (0x80) decodes too, with the GBK label.
    let mut bytes = gbk("名称,价格\n");
    bytes.extend_from_slice(&[0x80, b'5', b',', b'1', b'\n']);
    let mut given = opts(Format::Csv);
    given.encoding = Some(Encoding::Gbk);
    let r = open_bytes(bytes, given).unwrap();
    assert_eq!(ok_rows(r), vec![(1, 2, text(&["€5", "1"]))]);
}

#[test]
fn mixed_encodings_fail_at_the_exact_byte_offset() {
    let mut bytes = "区划代码,名称\n".as_bytes().to_vec();
    let mut rows = 1u64;
    while bytes.len() < 2 * 1024 * 1024 + 17 {
        bytes.extend_from_slice("110101,东城区\n".as_bytes());
        rows += 1;
    }
    let offset = bytes.len() as u64;
    bytes.extend_from_slice(&gbk("110102,西城区\n110105,朝阳区\n"));
    let bad = offset + "110102,".len() as u64;

    let all = items(bytes, opts(Format::Csv));
    let (last, good) = all.split_last().unwrap();
    assert_eq!(good.len() as u64, rows - 1);
    assert!(good.iter().all(|r| r.is_ok()));
    let e = last.as_ref().unwrap_err();
    assert_eq!(e.code(), "encoding-error");
    assert_eq!(e.position(), Some(Position::Byte(bad)));
    match e {
        IngestError::Encoding { offset, encoding, detected } => {
            assert_eq!(*offset, bad);
            assert_eq!(*encoding, Encoding::Utf8);
            assert!(detected);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.message_en().contains(&bad.to_string()));
    assert!(e.message_en().contains("?encoding=gbk"));
    assert!(e.message_zh().contains(&bad.to_string()));
    assert!(e.message_zh().contains("?encoding=gbk"));
    assert!(e.message_zh().contains("UTF-8"));
}

#[test]
fn invalid_byte_names_its_offset_whatever_the_encoding() {
    let bytes = b"a,b\n1,\xFF\n2,3\n".to_vec();
    for encoding in [None, Some(Encoding::Utf8), Some(Encoding::Gbk)] {
        let mut o = opts(Format::Csv);
        o.encoding = encoding;
        let all = items(bytes.clone(), o);
        let e = all.last().unwrap().as_ref().unwrap_err();
        assert_eq!(e.position(), Some(Position::Byte(6)), "{encoding:?}");
        assert_eq!(e.code(), "encoding-error");
        // Fatal: nothing after it.
        assert!(all.iter().filter(|r| r.is_err()).count() == 1);
    }
    let mut o = opts(Format::Csv);
    o.encoding = Some(Encoding::Utf8);
    // Valid GBK but not UTF-8, with UTF-8 forced.
    let e = items(gbk("名称\n"), o).pop().unwrap().unwrap_err();
    assert_eq!(e.position(), Some(Position::Byte(0)));
}

// ---------------------------------------------------------------------- CSV

#[test]
fn quoted_fields_with_commas_newlines_and_quotes() {
    let data = "a,b,c\n\"x, y\",\"line1\nline2\",\"he said \"\"hi\"\"\"\n2,\"\",4\n";
    let r = open_bytes(data, opts(Format::Csv)).unwrap();
    assert_eq!(
        ok_rows(r),
        vec![(1, 2, text(&["x, y", "line1\nline2", "he said \"hi\""])), (2, 4, text(&["2", "", "4"])),]
    );
}

#[test]
fn ragged_rows_keep_their_length() {
    let r = open_bytes("a,b,c\n1\n1,2,3,4\n1,2,\n", opts(Format::Csv)).unwrap();
    assert_eq!(
        ok_rows(r),
        vec![(1, 2, text(&["1"])), (2, 3, text(&["1", "2", "3", "4"])), (3, 4, text(&["1", "2", ""])),]
    );
}

#[test]
fn unclosed_quote_names_the_line_where_it_started() {
    let data = "a,b\n1,2\n3,4\n5,\"oops\n6,7\n8,9\n";
    let all = items(data, opts(Format::Csv));
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].as_ref().unwrap().line, 3);
    let e = all[2].as_ref().unwrap_err();
    assert_eq!(e.code(), "source-error");
    assert_eq!(e.line(), Some(4));
    assert!(matches!(e, IngestError::UnclosedQuote { line: 4 }));
    assert!(e.message_zh().contains("第 4 行"));
    assert!(e.message_en().contains("line 4"));

    // In the header.
    let e = open_bytes("a,\"b\n1,2\n", opts(Format::Csv)).unwrap_err();
    assert!(matches!(e, IngestError::UnclosedQuote { line: 1 }));

    // A quoted field spanning lines before it does not confuse the count, and
    // a quote in the middle of an unquoted field is a literal.
    let data = "a,b\n\"x\ny\",2\n3 \"inch\",4\n5,\"open\n";
    let all = items(data, opts(Format::Csv));
    assert_eq!(all[1].as_ref().unwrap().values, text(&["3 \"inch\"", "4"]));
    assert!(matches!(all[2].as_ref().unwrap_err(), IngestError::UnclosedQuote { line: 5 }));
}

#[test]
fn unclosed_quote_far_into_a_large_file() {
    let mut data = String::from("id,name\n");
    for i in 0..200_000 {
        data.push_str(&format!("{i},\"name {i}, with comma\"\n"));
    }
    data.push_str("x,\"never closed\n");
    for i in 0..1000 {
        data.push_str(&format!("{i},tail\n"));
    }
    let all = items(data, opts(Format::Csv));
    assert_eq!(all.len(), 200_001);
    assert_eq!(all[199_999].as_ref().unwrap().line, 200_001);
    assert!(matches!(all[200_000].as_ref().unwrap_err(), IngestError::UnclosedQuote { line: 200_002 }));
}

#[test]
fn blank_rows_are_counted_and_trailing_ones_dropped() {
    for eol in ["\n", "\r\n"] {
        let data = ["a,b", "1,2", "", ",", "", "3,4", "", ""].join(eol);
        let r = open_bytes(data, opts(Format::Csv)).unwrap();
        assert_eq!(
            ok_rows(r),
            vec![
                (1, 2, text(&["1", "2"])),
                (2, 3, Values::Blank),
                (3, 4, Values::Blank),
                (4, 5, Values::Blank),
                (5, 6, text(&["3", "4"])),
            ],
            "{eol:?}"
        );
    }
}

#[test]
fn leading_blank_lines_before_the_header_are_skipped() {
    let r = open_bytes("\n\n  \n名称,人口\n\n东城区,1", opts(Format::Csv)).unwrap();
    assert_eq!(r.header(), ["名称", "人口"]);
    assert_eq!(ok_rows(r), vec![(1, 5, Values::Blank), (2, 6, text(&["东城区", "1"]))]);
}

#[test]
fn empty_and_whitespace_only_files() {
    for data in [&b""[..], b"  \n\t\r\n", b"\xEF\xBB\xBF", b"\n\n"] {
        let e = open_bytes(data.to_vec(), opts(Format::Csv)).unwrap_err();
        assert_eq!(e.code(), "empty-file", "{data:?}");
        let e = open_bytes(data.to_vec(), opts(Format::JsonLines)).unwrap_err();
        assert_eq!(e.code(), "empty-file", "{data:?}");
    }
}

#[test]
fn header_only_yields_no_records() {
    let mut r = open_bytes("名称,人口\n", opts(Format::Csv)).unwrap();
    assert_eq!(r.header(), ["名称", "人口"]);
    assert!(r.next().is_none());
    let mut r = open_bytes("名称,人口", opts(Format::Csv)).unwrap();
    assert!(r.next().is_none());
}

#[test]
fn too_large_is_refused() {
    let e = open_bytes(vec![b'a'; 100], ReadOptions::new(Format::Csv, 10)).unwrap_err();
    assert_eq!(e.code(), "too-large");
    assert!(matches!(e, IngestError::TooLarge { limit: 10 }));
    assert!(e.message_zh().contains("10 字节"));

    // Past the sniff buffer: records first, then the fatal error.
    let mut data = String::from("a,b\n");
    while data.len() < 3 * 1024 * 1024 {
        data.push_str("1,2\n");
    }
    let all = items(data, ReadOptions::new(Format::Csv, 2 * 1024 * 1024));
    let (last, good) = all.split_last().unwrap();
    assert!(good.len() > 1000);
    assert!(good.iter().all(|r| r.is_ok()));
    assert!(matches!(
        last.as_ref().unwrap_err(),
        IngestError::TooLarge { limit } if *limit == 2 * 1024 * 1024
    ));

    // Exactly at the limit is fine.
    let data = "a,b\n1,2\n";
    let r = open_bytes(data, ReadOptions::new(Format::Csv, data.len() as u64)).unwrap();
    assert_eq!(r.count(), 1);
}

#[test]
fn bytes_read_reports_progress() {
    let data = "a,b\n1,2\n";
    let mut r = open_bytes(data, opts(Format::Csv)).unwrap();
    while r.next().is_some() {}
    assert_eq!(r.bytes_read(), data.len() as u64);
}

// --------------------------------------------------------------- JSON Lines

#[test]
fn json_lines_bad_line_is_an_item_and_reading_continues() {
    let data = concat!(
        "{\"名称\":\"东城区\",\"人口\":708829}\n",
        "{\"名称\":\"西城区\",\"人口\":1106214,\"面积\":50.7}\r\n",
        "{\"名称\": oops}\n",
        "\n",
        "[1,2]\n",
        "{\"名称\":\"朝阳区\"}\n",
        "\n",
        "  \n",
    );
    let mut r = open_bytes(data, opts(Format::JsonLines)).unwrap();
    assert_eq!(r.header(), ["名称", "人口"]);
    let first = r.next().unwrap().unwrap();
    assert_eq!((first.number, first.line), (1, 1));
    let Values::Json(obj) = &first.values else { panic!("{first:?}") };
    assert_eq!(obj["人口"], serde_json::json!(708829));
    let second = r.next().unwrap().unwrap();
    assert_eq!((second.number, second.line), (2, 2));
    assert_eq!(r.header(), ["名称", "人口", "面积"]);

    let bad = r.next().unwrap().unwrap_err();
    assert_eq!(bad.code(), "json-error");
    assert!(!bad.is_fatal());
    assert_eq!(bad.position(), Some(Position::LineColumn { line: 3, column: 8 }));
    assert!(bad.message_zh().contains("第 3 行"));

    let blank = r.next().unwrap().unwrap();
    assert_eq!((blank.number, blank.line, blank.values), (4, 4, Values::Blank));

    let not_object = r.next().unwrap().unwrap_err();
    assert!(matches!(not_object, IngestError::NotAnObject { line: 5, found: JsonKind::Array }));

    let last = r.next().unwrap().unwrap();
    assert_eq!((last.number, last.line), (6, 6));
    // Trailing blank lines are not records.
    assert!(r.next().is_none());
    assert!(r.next().is_none());
}

#[test]
fn json_lines_first_line_bad_and_leading_blank_lines() {
    let mut r = open_bytes("\n{bad\n{\"a\":1}\n", opts(Format::JsonLines)).unwrap();
    let blank = r.next().unwrap().unwrap();
    assert_eq!((blank.number, blank.line), (1, 1));
    assert!(blank.values.is_blank());
    assert_eq!(r.next().unwrap().unwrap_err().line(), Some(2));
    assert_eq!(r.next().unwrap().unwrap().line, 3);
    assert_eq!(r.header(), ["a"]);
    assert!(r.next().is_none());
}

#[test]
fn json_lines_in_gbk_and_encoding_errors_are_fatal() {
    let bytes = gbk("{\"名称\":\"东城区\"}\n{\"名称\":\"西城区\"}\n");
    let r = open_bytes(bytes, opts(Format::JsonLines)).unwrap();
    assert_eq!(r.encoding(), Encoding::Gb18030);
    let rows = ok_rows(r);
    assert_eq!(rows.len(), 2);
    let Values::Json(obj) = &rows[1].2 else { panic!() };
    assert_eq!(obj["名称"], "西城区");

    let mut bytes = b"{\"a\":1}\n{\"a\":\"".to_vec();
    bytes.push(0xFF);
    bytes.extend_from_slice(b"\"}\n{\"a\":3}\n");
    let mut o = opts(Format::JsonLines);
    o.encoding = Some(Encoding::Utf8);
    let all = items(bytes, o);
    assert_eq!(all.len(), 2);
    let e = all[1].as_ref().unwrap_err();
    assert!(e.is_fatal());
    assert_eq!(e.position(), Some(Position::Byte(14)));
}

#[test]
fn json_lines_too_large() {
    let data = "{\"a\":1}\n".repeat(10);
    let e = open_bytes(data, ReadOptions::new(Format::JsonLines, 20)).unwrap_err();
    assert_eq!(e.code(), "too-large");
}
