//! Known-answer tests for XLSX, on workbooks written with rust_xlsxwriter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_ingest::{open, Encoding, Format, IngestError, Position, ReadOptions, Records, Values};
use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};
use std::io::Cursor;

fn read(bytes: Vec<u8>, sheet: Option<&str>) -> Result<Records, IngestError> {
    let mut opts = ReadOptions::new(Format::Xlsx, 1 << 30);
    opts.sheet = sheet.map(str::to_string);
    open(Cursor::new(bytes), opts)
}

fn text(cells: &[&str]) -> Values {
    Values::Text(cells.iter().map(|c| c.to_string()).collect())
}

fn rows(records: Records) -> Vec<(u64, u64, Values)> {
    records
        .map(|r| {
            let r = r.unwrap();
            (r.number, r.line, r.values)
        })
        .collect()
}

fn sample_workbook() -> Vec<u8> {
    let mut wb = Workbook::new();
    let date = CellFormat::new().set_num_format("yyyy-mm-dd");
    let datetime = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");

    let ws = wb.add_worksheet();
    ws.set_name("人口").unwrap();
    for (col, name) in [" 区划名称 ", "常住人口", "面积", "统计日期", "更新时间", "有效"].iter().enumerate()
    {
        ws.write_string(0, col as u16, *name).unwrap();
    }
    ws.write_string(1, 0, "东城区").unwrap();
    ws.write_number(1, 1, 708829.0).unwrap();
    ws.write_number(1, 2, 41.84).unwrap();
    ws.write_datetime_with_format(1, 3, ExcelDateTime::from_ymd(2024, 3, 1).unwrap(), &date).unwrap();
    ws.write_datetime_with_format(
        1,
        4,
        ExcelDateTime::from_ymd(2024, 3, 1).unwrap().and_hms(8, 30, 0).unwrap(),
        &datetime,
    )
    .unwrap();
    ws.write_boolean(1, 5, true).unwrap();
    // Row 3 (index 2) left blank on purpose.
    ws.write_string(3, 0, "西城区").unwrap();
    ws.write_number(3, 1, -12.5).unwrap();
    ws.write_boolean(3, 5, false).unwrap();
    ws.write_string(3, 6, "多出来的").unwrap();

    let ws = wb.add_worksheet();
    ws.set_name("企业").unwrap();
    ws.write_string(0, 0, "统一社会信用代码").unwrap();
    ws.write_string(0, 1, "身份证号").unwrap();
    ws.write_string(0, 2, "身份证号（数字）").unwrap();
    ws.write_string(1, 0, "91110000100000000X").unwrap();
    ws.write_string(1, 1, "110101199003071234").unwrap();
    ws.write_number(1, 2, 110101199003071234.0).unwrap();
    wb.save_to_buffer().unwrap()
}

#[test]
fn first_sheet_strings_numbers_dates_booleans_blank_rows() {
    let r = read(sample_workbook(), None).unwrap();
    assert_eq!(r.encoding(), Encoding::Utf8);
    assert_eq!(r.header(), ["区划名称", "常住人口", "面积", "统计日期", "更新时间", "有效"]);
    assert_eq!(
        rows(r),
        vec![
            (1, 2, text(&["东城区", "708829", "41.84", "2024-03-01", "2024-03-01T08:30:00", "true"])),
            (2, 3, Values::Blank),
            (3, 4, text(&["西城区", "-12.5", "", "", "", "false", "多出来的"])),
        ]
    );
}

#[test]
fn second_sheet_by_name_and_long_numbers() {
    let r = read(sample_workbook(), Some("企业")).unwrap();
    assert_eq!(r.header(), ["统一社会信用代码", "身份证号", "身份证号（数字）"]);
    let rows = rows(r);
    // Stored as text: exact. Stored as a number: only what a double holds
    // (Excel itself keeps 15 significant digits).
    assert_eq!(rows, vec![(1, 2, text(&["91110000100000000X", "110101199003071234", "110101199003071230"]))]);
}

#[test]
fn unknown_sheet_lists_the_sheets() {
    let e = read(sample_workbook(), Some("法人")).unwrap_err();
    assert_eq!(e.code(), "format-error");
    match &e {
        IngestError::SheetNotFound { name, available } => {
            assert_eq!(name, "法人");
            assert_eq!(available, &["人口".to_string(), "企业".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.message_zh().contains("“人口”、“企业”"));
    assert!(e.message_en().contains("\"人口\", \"企业\""));
}

#[test]
fn formula_is_refused_naming_the_cell() {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "名称").unwrap();
    ws.write_string(0, 1, "人口").unwrap();
    for row in 1..6 {
        ws.write_string(row, 0, "x").unwrap();
        ws.write_number(row, 1, f64::from(row)).unwrap();
    }
    ws.write_formula(6, 1, "=SUM(B2:B6)").unwrap();
    let e = read(wb.save_to_buffer().unwrap(), None).unwrap_err();
    assert_eq!(e.code(), "format-error");
    assert_eq!(e.position(), Some(Position::Cell { sheet: "Sheet1".into(), cell: "B7".into() }));
    assert!(e.message_en().contains("B7"), "{}", e.message_en());
    assert!(e.message_en().contains("SUM(B2:B6)"), "{}", e.message_en());
    assert!(e.message_zh().contains("单元格 B7 含有公式"), "{}", e.message_zh());
}

#[test]
fn merged_cells_are_refused_naming_the_range() {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.merge_range(0, 0, 0, 2, "2024年人口统计", &CellFormat::new()).unwrap();
    ws.write_string(1, 0, "名称").unwrap();
    ws.write_string(2, 0, "东城区").unwrap();
    ws.merge_range(4, 1, 6, 1, "合并", &CellFormat::new()).unwrap();
    let e = read(wb.save_to_buffer().unwrap(), None).unwrap_err();
    assert_eq!(e.code(), "format-error");
    assert!(matches!(&e, IngestError::MergedCells { range, .. } if range == "A1:C1"));
    assert!(e.message_zh().contains("A1:C1"));
}

#[test]
fn garbage_legacy_and_empty_inputs() {
    let e = read(b"this is not a zip archive at all".to_vec(), None).unwrap_err();
    assert_eq!(e.code(), "format-error");
    assert!(matches!(e, IngestError::NotXlsx { legacy_xls: false, .. }));

    let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    ole.resize(4096, 0);
    let e = read(ole, None).unwrap_err();
    assert!(matches!(e, IngestError::NotXlsx { legacy_xls: true, .. }));
    assert!(e.message_zh().contains(".xls"));

    assert_eq!(read(Vec::new(), None).unwrap_err().code(), "empty-file");

    let mut wb = Workbook::new();
    wb.add_worksheet();
    let e = read(wb.save_to_buffer().unwrap(), None).unwrap_err();
    assert_eq!(e.code(), "empty-file");
}

#[test]
fn header_only_sheet_and_too_large() {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(2, 1, "名称").unwrap();
    ws.write_string(2, 2, "人口").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let mut r = read(bytes.clone(), None).unwrap();
    assert_eq!(r.header(), ["名称", "人口"]);
    assert!(r.next().is_none());
    assert_eq!(r.bytes_read(), bytes.len() as u64);

    let e = open(Cursor::new(bytes), ReadOptions::new(Format::Xlsx, 100)).unwrap_err();
    assert!(matches!(e, IngestError::TooLarge { limit: 100 }));
}

#[test]
fn records_keep_sheet_rows_when_the_table_does_not_start_at_a1() {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(3, 2, "名称").unwrap();
    ws.write_string(3, 3, "人口").unwrap();
    ws.write_string(4, 2, "东城区").unwrap();
    ws.write_number(6, 3, 5.0).unwrap();
    let r = read(wb.save_to_buffer().unwrap(), None).unwrap();
    assert_eq!(r.header(), ["名称", "人口"]);
    assert_eq!(rows(r), vec![(1, 5, text(&["东城区", ""])), (2, 6, Values::Blank), (3, 7, text(&["", "5"])),]);
}
