//! Staging an upload: the whole body is copied into an anonymous temporary file
//! first, then read from there. A slow or stalled client then holds nothing but its
//! own connection: the delivery's rows reach the store at disk speed, so a store with
//! a single writer (SQLite) holds it only as long as the rows take to write.
//!
//! The staged reader replays exactly what arrived: the bytes, then — if the upload
//! broke off — the same I/O error at the same place, so a truncated upload fails the
//! way it would have failed read directly.

use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes copied per step (and between two progress reports).
const CHUNK: usize = 1 << 20;

/// A staged upload: the file, then the error the upload ended with, if any.
pub struct Staged {
    file: BufReader<std::fs::File>,
    error: Option<io::Error>,
}

impl Read for Staged {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(e) = self.error.take() {
                return Err(e);
            }
        }
        Ok(n)
    }
}

/// Copy `source` into an anonymous file in `dir` (removed by the system when closed,
/// whatever happens to the process), at most `limit + 1` bytes — enough for the reader
/// to see that a file is over the limit. `progress` is told the bytes staged so far.
/// Errors of the temporary file itself (disk full) are returned; an error of the
/// source is kept and replayed by the staged reader after the bytes that arrived.
pub fn stage(mut source: impl Read, dir: &Path, limit: u64, mut progress: impl FnMut(u64)) -> io::Result<Staged> {
    let mut file = tempfile::tempfile_in(dir)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    let cap = limit.saturating_add(1);
    let mut error = None;
    while total < cap {
        let want = usize::try_from(cap - total).unwrap_or(CHUNK).min(CHUNK);
        match source.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                file.write_all(&buf[..n])?;
                total += n as u64;
                progress(total);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(Staged { file: BufReader::with_capacity(CHUNK, file), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data`, then fails.
    struct Breaks<'a>(&'a [u8]);

    impl Read for Breaks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection dropped"));
            }
            let n = buf.len().min(self.0.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn staged_bytes_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut seen = 0;
        let mut s = stage(&data[..], dir.path(), u64::MAX, |n| seen = n).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(seen, data.len() as u64);
        // Anonymous: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_broken_upload_replays_its_bytes_then_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = stage(Breaks(b"a,b\n1,2\n"), dir.path(), u64::MAX, |_| {}).unwrap();
        let mut back = Vec::new();
        let e = s.read_to_end(&mut back).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(back, b"a,b\n1,2\n");
    }

    #[test]
    fn staging_stops_one_byte_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = stage(&[7u8; 100][..], dir.path(), 10, |_| {}).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 11);
    }
}
