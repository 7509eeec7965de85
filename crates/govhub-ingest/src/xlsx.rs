//! XLSX with calamine. A workbook is a zip archive that needs `Seek`, so the input
//! is spooled to an anonymous temporary file (bounded by `max_bytes`), the sheet is
//! checked (no merged cells, no formulas) and its non-empty cells are kept: memory
//! grows with the sheet's content, which the size limit bounds.

use crate::{IngestError, Record, Values};
use calamine::{DataRef, Dimensions, ExcelDateTime, Reader, Xlsx};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

const OLE_MAGIC: [u8; 4] = [0xD0, 0xCF, 0x11, 0xE0];

/// `(0, 0)` → `A1`.
pub(crate) fn cell_name(row: u32, col: u32) -> String {
    let mut letters = Vec::new();
    let mut c = u64::from(col) + 1;
    while c > 0 {
        let rem = ((c - 1) % 26) as u8;
        letters.push(char::from(b'A' + rem));
        c = (c - 1) / 26;
    }
    letters.iter().rev().collect::<String>() + &(u64::from(row) + 1).to_string()
}

fn range_name(d: &Dimensions) -> String {
    format!("{}:{}", cell_name(d.start.0, d.start.1), cell_name(d.end.0, d.end.1))
}

fn format_float(f: f64) -> String {
    if f == 0.0 {
        // Also turns -0 into 0.
        "0".to_string()
    } else {
        // Rust prints the shortest text that reads back as the same f64, without
        // a spurious ".0" for integral values.
        f.to_string()
    }
}

fn format_datetime(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if dt.is_duration() {
        let total_ms = (serial * 86_400_000.0).round();
        let negative = total_ms < 0.0;
        let total_ms = total_ms.abs() as u64;
        let (h, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        let sign = if negative { "-" } else { "" };
        return if ms == 0 { format!("{sign}PT{h}H{m}M{s}S") } else { format!("{sign}PT{h}H{m}M{s}.{ms:03}S") };
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    let time = if ms == 0 { format!("{h:02}:{mi:02}:{s:02}") } else { format!("{h:02}:{mi:02}:{s:02}.{ms:03}") };
    if (0.0..1.0).contains(&serial) {
        time
    } else if h == 0 && mi == 0 && s == 0 && ms == 0 {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{time}")
    }
}

fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => format_float(*f),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => format_datetime(dt),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => e.to_string(),
        DataRef::Empty => String::new(),
    }
}

fn not_xlsx(detail: impl ToString) -> IngestError {
    IngestError::NotXlsx { legacy_xls: false, detail: detail.to_string() }
}

pub(crate) struct XlsxRecords {
    header: Vec<String>,
    /// Non-empty cells after the header row, sorted by (row, column).
    cells: std::vec::IntoIter<(u32, u32, String)>,
    peeked: Option<(u32, u32, String)>,
    header_row: u32,
    next_row: u32,
    last_row: u32,
    first_col: u32,
}

/// Copy the input to an anonymous temporary file (deleted when closed).
fn spool(mut input: impl Read) -> Result<File, IngestError> {
    let mut file = tempfile::tempfile().map_err(IngestError::Io)?;
    io::copy(&mut input, &mut file).map_err(IngestError::from_io)?;
    file.seek(SeekFrom::Start(0)).map_err(IngestError::Io)?;
    Ok(file)
}

fn choose_sheet(names: &[String], wanted: Option<&str>) -> Result<String, IngestError> {
    match wanted {
        None => names.first().cloned().ok_or_else(|| not_xlsx("the workbook has no sheet")),
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .or_else(|| names.iter().find(|n| n.trim().to_lowercase() == wanted.trim().to_lowercase()))
            .cloned()
            .ok_or_else(|| IngestError::SheetNotFound { name: wanted.to_string(), available: names.to_vec() }),
    }
}

impl XlsxRecords {
    pub(crate) fn open(input: impl Read, sheet: Option<&str>) -> Result<XlsxRecords, IngestError> {
        let mut file = spool(input)?;
        let mut magic = [0u8; 4];
        let got = file.read(&mut magic).map_err(IngestError::Io)?;
        if got == 0 {
            return Err(IngestError::EmptyFile);
        }
        file.seek(SeekFrom::Start(0)).map_err(IngestError::Io)?;
        let mut workbook: Xlsx<BufReader<File>> = Xlsx::new(BufReader::new(file))
            .map_err(|e| IngestError::NotXlsx { legacy_xls: got == 4 && magic == OLE_MAGIC, detail: e.to_string() })?;
        let name = choose_sheet(&workbook.sheet_names(), sheet)?;

        let mut merged = workbook.merge_cells_by_sheet_name(&name).map_err(not_xlsx)?;
        merged.sort_by_key(|d| (d.start, d.end));
        if let Some(first) = merged.first() {
            return Err(IngestError::MergedCells { sheet: name, range: range_name(first) });
        }

        let mut cells = Vec::new();
        {
            let mut reader = workbook.worksheet_cells_reader(&name).map_err(not_xlsx)?;
            while let Some(cell) = reader.next_cell_with_formula_metadata().map_err(not_xlsx)? {
                if let Some(formula) = cell.formula {
                    let text = match formula {
                        calamine::XlsxFormulaMetadata::Normal { formula }
                        | calamine::XlsxFormulaMetadata::Shared { formula, .. } => Some(formula),
                        _ => None,
                    };
                    return Err(IngestError::Formula {
                        sheet: name,
                        cell: cell_name(cell.pos.0, cell.pos.1),
                        formula: text.filter(|f| !f.is_empty()),
                    });
                }
                let text = cell_text(&cell.value);
                if !text.is_empty() {
                    cells.push((cell.pos.0, cell.pos.1, text));
                }
            }
        }
        if !cells.windows(2).all(|w| (w[0].0, w[0].1) <= (w[1].0, w[1].1)) {
            cells.sort_by_key(|c| (c.0, c.1));
        }
        Self::from_cells(cells)
    }

    fn from_cells(mut cells: Vec<(u32, u32, String)>) -> Result<XlsxRecords, IngestError> {
        let header_row = cells.iter().find(|c| !c.2.trim().is_empty()).map(|c| c.0).ok_or(IngestError::EmptyFile)?;
        cells.retain(|c| c.0 >= header_row);
        let first_col = cells.iter().map(|c| c.1).min().unwrap_or(0);
        let last_row = cells.last().map_or(header_row, |c| c.0);
        let split = cells.partition_point(|c| c.0 == header_row);
        let data = cells.split_off(split);
        let header_width = cells.last().map_or(0, |c| (c.1 - first_col) as usize + 1);
        let mut header = vec![String::new(); header_width];
        for (_, col, text) in cells {
            if let Some(slot) = header.get_mut((col - first_col) as usize) {
                *slot = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').to_string();
            }
        }
        Ok(XlsxRecords {
            header,
            cells: data.into_iter(),
            peeked: None,
            header_row,
            next_row: header_row.saturating_add(1),
            last_row,
            first_col,
        })
    }

    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    pub(crate) fn next_record(&mut self) -> Option<Record> {
        if self.next_row > self.last_row || self.next_row == self.header_row {
            return None;
        }
        let row = self.next_row;
        self.next_row = self.next_row.wrapping_add(1);
        let mut values: Vec<String> = Vec::new();
        loop {
            let cell = match self.peeked.take() {
                Some(c) => c,
                None => match self.cells.next() {
                    Some(c) => c,
                    None => break,
                },
            };
            if cell.0 != row {
                self.peeked = Some(cell);
                break;
            }
            let index = (cell.1 - self.first_col) as usize;
            if values.len() <= index {
                values.resize(index + 1, String::new());
            }
            values[index] = cell.2;
        }
        let values = if values.is_empty() {
            Values::Blank
        } else {
            // Empty cells up to the header's width are present (as ""), as in Excel.
            if values.len() < self.header.len() {
                values.resize(self.header.len(), String::new());
            }
            Values::Text(values)
        };
        Some(Record { number: u64::from(row - self.header_row), line: u64::from(row) + 1, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    #[test]
    fn cell_names() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(6, 1), "B7");
        assert_eq!(cell_name(0, 25), "Z1");
        assert_eq!(cell_name(9, 26), "AA10");
        assert_eq!(cell_name(0, 16383), "XFD1");
    }

    #[test]
    fn numbers_and_dates() {
        assert_eq!(format_float(42.0), "42");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(3.25), "3.25");
        assert_eq!(format_float(110101199003071234.0), "110101199003071230");
        let date = ExcelDateTime::new(45352.0, ExcelDateTimeType::DateTime, false);
        assert_eq!(format_datetime(&date), "2024-03-01");
        let dt = ExcelDateTime::new(45352.0 + 8.5 / 24.0, ExcelDateTimeType::DateTime, false);
        assert_eq!(format_datetime(&dt), "2024-03-01T08:30:00");
        let time = ExcelDateTime::new(0.75, ExcelDateTimeType::DateTime, false);
        assert_eq!(format_datetime(&time), "18:00:00");
        let dur = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(format_datetime(&dur), "PT36H0M0S");
    }

    #[test]
    fn rows_from_sparse_cells() {
        let cells = vec![
            (1, 1, "名称".to_string()),
            (1, 3, "人口".to_string()),
            (2, 1, "a".to_string()),
            (4, 4, "extra".to_string()),
        ];
        let mut r = XlsxRecords::from_cells(cells).unwrap();
        assert_eq!(r.header(), ["名称", "", "人口"]);
        let first = r.next_record().unwrap();
        assert_eq!((first.number, first.line), (1, 3));
        assert_eq!(first.values, Values::Text(vec!["a".into(), "".into(), "".into()]));
        assert_eq!(r.next_record().unwrap().values, Values::Blank);
        let last = r.next_record().unwrap();
        assert_eq!((last.number, last.line), (3, 5));
        assert_eq!(last.values, Values::Text(vec!["".into(), "".into(), "".into(), "extra".into()]));
        assert!(r.next_record().is_none());
    }
}
