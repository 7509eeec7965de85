//! Errors, with a stable code, a position and messages for department clerks.

use crate::Encoding;
use std::fmt;
use std::io;

/// Where in the file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Byte offset from the start of the file, counting from 0 (a BOM included).
    Byte(u64),
    /// Physical line, 1-based.
    Line(u64),
    /// Physical line and character column, both 1-based.
    LineColumn { line: u64, column: u64 },
    /// A cell of a sheet, e.g. `B7`.
    Cell { sheet: String, cell: String },
    /// A range of cells of a sheet, e.g. `A1:C1`.
    Range { sheet: String, range: String },
}

/// What a line of a JSON Lines file held instead of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Array,
    String,
    Number,
    Boolean,
    Null,
}

impl JsonKind {
    pub(crate) fn of(value: &serde_json::Value) -> Option<JsonKind> {
        match value {
            serde_json::Value::Array(_) => Some(JsonKind::Array),
            serde_json::Value::String(_) => Some(JsonKind::String),
            serde_json::Value::Number(_) => Some(JsonKind::Number),
            serde_json::Value::Bool(_) => Some(JsonKind::Boolean),
            serde_json::Value::Null => Some(JsonKind::Null),
            serde_json::Value::Object(_) => None,
        }
    }

    fn en(self) -> &'static str {
        match self {
            JsonKind::Array => "an array […]",
            JsonKind::String => "a string",
            JsonKind::Number => "a number",
            JsonKind::Boolean => "a boolean",
            JsonKind::Null => "null",
        }
    }

    fn zh(self) -> &'static str {
        match self {
            JsonKind::Array => "数组 […]",
            JsonKind::String => "字符串",
            JsonKind::Number => "数字",
            JsonKind::Boolean => "布尔值",
            JsonKind::Null => "null",
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.en())
    }
}

/// Everything that can go wrong while reading a delivery.
///
/// [`IngestError::code`] is stable (it is stored in delivery reports);
/// `Display` is the English message ([`IngestError::message_en`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// Bytes that are not valid in the encoding used (given or detected).
    #[error(
        "The file is not valid {encoding} text: the bytes at byte offset {offset} cannot be decoded{}. \
         If the file was saved by Excel or WPS on Chinese Windows, upload it again with ?encoding=gbk, \
         or re-save it as \"CSV UTF-8\" and upload it again.",
        if *.detected { " (the encoding was detected from the start of the file; the file may mix encodings)" } else { "" }
    )]
    Encoding {
        offset: u64,
        encoding: Encoding,
        /// True when the encoding was detected rather than given by the caller.
        detected: bool,
    },

    /// A quoted CSV field that is never closed.
    #[error(
        "The quoted field starting on line {line} is never closed: everything after it would be read as one cell. \
         Check the double quotes on that line (a double quote inside a cell must be written twice: \"\")."
    )]
    UnclosedQuote { line: u64 },

    /// Any other CSV syntax problem.
    #[error("The CSV is malformed near line {line}: {detail}")]
    MalformedCsv { line: u64, detail: String },

    /// A JSON Lines line that is not valid JSON. Not fatal: iteration continues.
    #[error("Line {line} is not valid JSON (column {column}): {detail}")]
    InvalidJson { line: u64, column: u64, detail: String },

    /// A JSON Lines line that is valid JSON but not an object. Not fatal.
    #[error("Line {line} must be a JSON object {{…}}, but it is {found}.")]
    NotAnObject { line: u64, found: JsonKind },

    /// The bytes are not an XLSX workbook.
    #[error(
        "The file is not a valid Excel workbook (.xlsx){}: {detail}",
        if *.legacy_xls { "; it is an old Excel 97-2003 (.xls) file: open it in Excel or WPS, save it as .xlsx and upload it again" } else { "" }
    )]
    NotXlsx { legacy_xls: bool, detail: String },

    /// The requested sheet does not exist.
    #[error("The workbook has no sheet named \"{name}\"; its sheets are: {}.", quoted_list(.available))]
    SheetNotFound { name: String, available: Vec<String> },

    /// A cell holds a formula: deliveries must hold values.
    #[error(
        "Cell {cell} of sheet \"{sheet}\" contains a formula{}. Deliver values, not formulas: \
         copy the sheet, use Paste Special → Values, save and upload again.",
        .formula.as_deref().map(|f| format!(" (={f})")).unwrap_or_default()
    )]
    Formula { sheet: String, cell: String, formula: Option<String> },

    /// The sheet has merged cells.
    #[error("Sheet \"{sheet}\" has merged cells {range}. Unmerge them and fill in every cell, then upload again.")]
    MergedCells { sheet: String, range: String },

    /// Nothing in the file (0 bytes, only whitespace, or an empty sheet).
    #[error("The file is empty: it has no content (or the sheet read has no cells).")]
    EmptyFile,

    /// More than the allowed number of bytes.
    #[error("The file is larger than the limit of {} ({limit} bytes). Split it into several files and upload them one by one.", human_size(*.limit))]
    TooLarge { limit: u64 },

    /// Reading the input failed.
    #[error("The file could not be read: {0}")]
    Io(#[source] io::Error),
}

impl IngestError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Encoding { .. } => "encoding-error",
            IngestError::UnclosedQuote { .. } | IngestError::MalformedCsv { .. } => "source-error",
            IngestError::InvalidJson { .. } | IngestError::NotAnObject { .. } => "json-error",
            IngestError::NotXlsx { .. }
            | IngestError::SheetNotFound { .. }
            | IngestError::Formula { .. }
            | IngestError::MergedCells { .. } => "format-error",
            IngestError::EmptyFile => "empty-file",
            IngestError::TooLarge { .. } => "too-large",
            IngestError::Io(_) => "io-error",
        }
    }

    /// Where the problem is, when it has a place.
    pub fn position(&self) -> Option<Position> {
        match self {
            IngestError::Encoding { offset, .. } => Some(Position::Byte(*offset)),
            IngestError::UnclosedQuote { line }
            | IngestError::MalformedCsv { line, .. }
            | IngestError::NotAnObject { line, .. } => Some(Position::Line(*line)),
            IngestError::InvalidJson { line, column, .. } => {
                Some(Position::LineColumn { line: *line, column: *column })
            }
            IngestError::Formula { sheet, cell, .. } => {
                Some(Position::Cell { sheet: sheet.clone(), cell: cell.clone() })
            }
            IngestError::MergedCells { sheet, range } => {
                Some(Position::Range { sheet: sheet.clone(), range: range.clone() })
            }
            IngestError::NotXlsx { .. }
            | IngestError::SheetNotFound { .. }
            | IngestError::EmptyFile
            | IngestError::TooLarge { .. }
            | IngestError::Io(_) => None,
        }
    }

    /// The physical line, for CSV and JSON Lines problems.
    pub fn line(&self) -> Option<u64> {
        match self.position() {
            Some(Position::Line(line)) | Some(Position::LineColumn { line, .. }) => Some(line),
            _ => None,
        }
    }

    /// True when the iteration ends with this error (everything but per-line JSON errors).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, IngestError::InvalidJson { .. } | IngestError::NotAnObject { .. })
    }

    /// The message in English (same as `Display`).
    pub fn message_en(&self) -> String {
        self.to_string()
    }

    /// The message in Chinese, for department clerks.
    pub fn message_zh(&self) -> String {
        match self {
            IngestError::Encoding { offset, encoding, detected } => format!(
                "文件不是有效的 {} 文本：字节偏移 {offset} 处（从 0 开始计数）的字节无法解码{}。\
                 如果文件是用中文版 Excel 或 WPS 保存的，请在上传地址后加上 ?encoding=gbk 重新上传，\
                 或将文件另存为“CSV UTF-8（逗号分隔）”格式后重新上传。",
                encoding.display_name(),
                if *detected {
                    "（编码是根据文件开头自动识别的，文件可能混用了多种编码）"
                } else {
                    ""
                }
            ),
            IngestError::UnclosedQuote { line } => format!(
                "第 {line} 行开始的带引号单元格没有结束引号，其后的全部内容都会被当成同一个单元格。\
                 请检查该行的双引号（单元格内的双引号要写成两个：\"\"）。"
            ),
            IngestError::MalformedCsv { line, detail } => {
                format!("第 {line} 行附近的 CSV 格式有误：{detail}")
            }
            IngestError::InvalidJson { line, column, detail } => {
                format!("第 {line} 行不是有效的 JSON（第 {column} 列）：{detail}")
            }
            IngestError::NotAnObject { line, found } => {
                format!("第 {line} 行应为一个 JSON 对象 {{…}}，实际是{}。", found.zh())
            }
            IngestError::NotXlsx { legacy_xls, detail } => {
                if *legacy_xls {
                    format!(
                        "文件是旧版 Excel 97-2003 格式（.xls），不是 .xlsx 工作簿。\
                         请用 Excel 或 WPS 打开后另存为 .xlsx 再重新上传。（{detail}）"
                    )
                } else {
                    format!("文件不是有效的 Excel 工作簿（.xlsx）：{detail}")
                }
            }
            IngestError::SheetNotFound { name, available } => format!(
                "工作簿中没有名为“{name}”的工作表；现有的工作表：{}。",
                available.iter().map(|s| format!("“{s}”")).collect::<Vec<_>>().join("、")
            ),
            IngestError::Formula { sheet, cell, formula } => format!(
                "工作表“{sheet}”的单元格 {cell} 含有公式{}。请提交数值而不是公式：\
                 复制整张表格，使用“选择性粘贴 → 数值”，保存后重新上传。",
                formula.as_deref().map(|f| format!("（={f}）")).unwrap_or_default()
            ),
            IngestError::MergedCells { sheet, range } => {
                format!("工作表“{sheet}”中有合并单元格 {range}。请取消合并，并在每个单元格中填写完整的值后重新上传。")
            }
            IngestError::EmptyFile => "文件是空的：没有任何内容（或所读取的工作表中没有单元格）。".to_string(),
            IngestError::TooLarge { limit } => {
                format!("文件超过了大小上限 {}（{limit} 字节）。请拆分成多个文件后分别上传。", human_size(*limit))
            }
            IngestError::Io(e) => format!("读取文件时出错：{e}"),
        }
    }

    /// Wrap into an `io::Error` so it can travel through `Read` adapters.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            IngestError::Io(e) => e,
            other => io::Error::other(other),
        }
    }

    /// Recover an error wrapped by [`IngestError::into_io`].
    pub(crate) fn from_io(e: io::Error) -> IngestError {
        let ours = e.get_ref().is_some_and(|inner| inner.is::<IngestError>());
        if !ours {
            return IngestError::Io(e);
        }
        let kind = e.kind();
        match e.into_inner() {
            Some(inner) => match inner.downcast::<IngestError>() {
                Ok(ours) => *ours,
                Err(other) => IngestError::Io(io::Error::new(kind, other)),
            },
            None => IngestError::Io(io::Error::from(kind)),
        }
    }
}

impl From<io::Error> for IngestError {
    fn from(e: io::Error) -> Self {
        IngestError::from_io(e)
    }
}

fn quoted_list(items: &[String]) -> String {
    items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * 1024 * 1024;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_the_variant() {
        let e = IngestError::TooLarge { limit: 10 }.into_io();
        assert!(matches!(IngestError::from_io(e), IngestError::TooLarge { limit: 10 }));
        let plain = io::Error::new(io::ErrorKind::BrokenPipe, "gone");
        let back = IngestError::from_io(plain);
        assert_eq!(back.code(), "io-error");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(100 * 1024 * 1024), "100 MiB");
        assert_eq!(human_size(2048), "2 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
        assert_eq!(human_size(1024 * 1024 * 3 / 2), "1.5 MiB");
    }

    #[test]
    fn every_error_has_both_messages() {
        let errors = vec![
            IngestError::Encoding { offset: 7, encoding: Encoding::Utf8, detected: true },
            IngestError::UnclosedQuote { line: 3 },
            IngestError::MalformedCsv { line: 2, detail: "x".into() },
            IngestError::InvalidJson { line: 4, column: 2, detail: "x".into() },
            IngestError::NotAnObject { line: 5, found: JsonKind::Array },
            IngestError::NotXlsx { legacy_xls: true, detail: "x".into() },
            IngestError::SheetNotFound { name: "a".into(), available: vec!["b".into(), "c".into()] },
            IngestError::Formula { sheet: "S".into(), cell: "B7".into(), formula: Some("SUM(A1:A2)".into()) },
            IngestError::MergedCells { sheet: "S".into(), range: "A1:C1".into() },
            IngestError::EmptyFile,
            IngestError::TooLarge { limit: 1 << 20 },
            IngestError::Io(io::Error::other("boom")),
        ];
        for e in errors {
            assert!(!e.message_en().is_empty());
            assert!(!e.message_zh().is_empty());
            assert_ne!(e.message_en(), e.message_zh());
            assert!(!e.code().is_empty());
        }
    }
}
