//! JSON Lines: one object per line; a bad line is an error item, not the end.

use crate::error::JsonKind;
use crate::{IngestError, Record, Values};
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

/// Parses an object keeping its keys in document order (serde_json's `Map` may sort them).
struct OrderedObject;

impl<'de> Visitor<'de> for OrderedObject {
    type Value = (Vec<String>, Map<String, Value>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::new();
        let mut map = Map::new();
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            if !map.contains_key(&key) {
                keys.push(key.clone());
            }
            map.insert(key, value);
        }
        Ok((keys, map))
    }
}

fn parse_line(text: &str, line: u64) -> Result<(Vec<String>, Map<String, Value>), IngestError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = de.deserialize_map(OrderedObject).and_then(|o| {
        de.end()?;
        Ok(o)
    });
    parsed.map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            if let Some(found) = serde_json::from_str::<Value>(text).ok().as_ref().and_then(JsonKind::of) {
                return IngestError::NotAnObject { line, found };
            }
        }
        let detail = e.to_string();
        // serde_json appends " at line L column C"; the line is ours, keep the words.
        let detail = match detail.rfind(" at line ") {
            Some(cut) => detail[..cut].to_string(),
            None => detail,
        };
        IngestError::InvalidJson { line, column: char_column(text, e.column()), detail }
    })
}

type Parsed = Result<Map<String, Value>, IngestError>;

/// serde_json counts columns in bytes; clerks count characters.
fn char_column(text: &str, byte_column: usize) -> u64 {
    let mut end = byte_column.saturating_sub(1).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].chars().count() as u64 + 1
}

pub(crate) struct JsonRecords {
    reader: BufReader<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    line: u64,
    blank_line: u64,
    blank_count: u64,
    pending: Option<(u64, Parsed)>,
    header: Vec<String>,
    seen: HashSet<String>,
    number: u64,
}

enum Line {
    Blank,
    Content(u64, Result<Map<String, Value>, IngestError>),
}

impl JsonRecords {
    /// Read up to the first line with content (its keys start the header).
    pub(crate) fn open(decoded: Box<dyn Read + Send>) -> Result<JsonRecords, IngestError> {
        let mut this = JsonRecords {
            reader: BufReader::with_capacity(64 * 1024, decoded),
            buf: Vec::new(),
            line: 0,
            blank_line: 1,
            blank_count: 0,
            pending: None,
            header: Vec::new(),
            seen: HashSet::new(),
            number: 0,
        };
        loop {
            match this.read_line()? {
                None => return Err(IngestError::EmptyFile),
                Some(Line::Blank) => this.blank_count += 1,
                Some(Line::Content(line, parsed)) => {
                    this.pending = Some((line, parsed));
                    return Ok(this);
                }
            }
        }
    }

    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    fn read_line(&mut self) -> Result<Option<Line>, IngestError> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf).map_err(IngestError::from_io)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let text = String::from_utf8_lossy(&self.buf);
        if text.trim().is_empty() {
            return Ok(Some(Line::Blank));
        }
        let line = self.line;
        let parsed = parse_line(&text, line).map(|(keys, map)| {
            for key in keys {
                if !self.seen.contains(&key) {
                    self.seen.insert(key.clone());
                    self.header.push(key);
                }
            }
            map
        });
        Ok(Some(Line::Content(line, parsed)))
    }

    fn emit(&mut self, line: u64, item: Result<Map<String, Value>, IngestError>) -> Result<Record, IngestError> {
        self.number += 1;
        item.map(|map| Record { number: self.number, line, values: Values::Json(map) })
    }

    /// `None` at the end; an `Err` item is fatal only if [`IngestError::is_fatal`].
    pub(crate) fn next_item(&mut self) -> Option<Result<Record, IngestError>> {
        loop {
            if self.blank_count > 0 && self.pending.is_some() {
                self.blank_count -= 1;
                let line = self.blank_line;
                self.blank_line += 1;
                return Some(self.emit(line, Ok(Map::new())).map(|mut r| {
                    r.values = Values::Blank;
                    r
                }));
            }
            if let Some((line, item)) = self.pending.take() {
                return Some(self.emit(line, item));
            }
            match self.read_line() {
                Err(e) => return Some(Err(e)),
                // Blank lines at the end are dropped.
                Ok(None) => return None,
                Ok(Some(Line::Blank)) => {
                    if self.blank_count == 0 {
                        self.blank_line = self.line;
                    }
                    self.blank_count += 1;
                }
                Ok(Some(Line::Content(line, item))) => self.pending = Some((line, item)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_document_order() {
        let (keys, map) = parse_line(r#"{"z":1,"a":2,"m":{"k":3}}"#, 1).unwrap();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(parse_line("[1,2]", 4), Err(IngestError::NotAnObject { line: 4, found: JsonKind::Array })));
        assert!(matches!(parse_line("{\"a\":1} x", 5), Err(IngestError::InvalidJson { line: 5, .. })));
        match parse_line("{\"a\":", 6) {
            Err(IngestError::InvalidJson { detail, .. }) => {
                assert!(!detail.contains("at line"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }
}
