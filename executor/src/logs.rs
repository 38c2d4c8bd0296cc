//! Size-capped rotating log files, and reading their tail.
//!
//! The service's stdout goes to `<dir>/stdout`; when it reaches the size cap
//! it becomes `stdout.1` (the older ones shift to `stdout.2` …, the oldest
//! beyond the limit is deleted) and a new `stdout` is started.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Longest line returned by [`tail`]; longer ones are cut.
pub const MAX_LINE: usize = 4096;

/// An append-only file that rotates itself.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
    file: File,
    written: u64,
}

impl RotatingFile {
    /// Opens (appending to) `path`.
    pub fn open(path: PathBuf, max_bytes: u64, max_files: u32) -> Result<Self, Error> {
        let file = open_append(&path)?;
        let written = file
            .metadata()
            .map_err(Error::io("inspect log file", &path))?
            .len();
        Ok(RotatingFile {
            path,
            max_bytes,
            max_files,
            file,
            written,
        })
    }

    /// Appends `data`, rotating first when it would overflow the cap. A
    /// write that fits in an empty file is never split, so lines written
    /// whole stay whole.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), Error> {
        if self.written > 0 && self.written + data.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        while !data.is_empty() {
            if self.written >= self.max_bytes {
                self.rotate()?;
            }
            let room = usize::try_from(self.max_bytes - self.written).unwrap_or(usize::MAX);
            let n = room.min(data.len());
            self.file
                .write_all(&data[..n])
                .map_err(Error::io("write log file", &self.path))?;
            self.written += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), Error> {
        let numbered = |n: u32| numbered(&self.path, n);
        // The oldest falls off the end; renaming over it removes it.
        for n in (1..self.max_files).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))
                    .map_err(Error::io("rotate log file", &from))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))
            .map_err(Error::io("rotate log file", &self.path))?;
        self.file = open_append(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io("open log file", path))
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The last `lines` lines of the log at `path`, reading into `path.1` when the
/// current file has fewer. Missing files count as empty.
pub fn tail(path: &Path, lines: usize) -> Result<Vec<String>, Error> {
    let mut out = tail_one(path, lines)?;
    if out.len() < lines {
        let mut older = tail_one(&numbered(path, 1), lines - out.len())?;
        older.append(&mut out);
        out = older;
    }
    Ok(out)
}

fn tail_one(path: &Path, lines: usize) -> Result<Vec<String>, Error> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("open log file", path)(e)),
    };
    let len = file
        .metadata()
        .map_err(Error::io("inspect log file", path))?
        .len();
    // Enough for the lines asked for at their longest, without reading a whole file.
    let want = ((lines + 1) * MAX_LINE) as u64;
    let start = len.saturating_sub(want);
    file.seek(SeekFrom::Start(start))
        .map_err(Error::io("read log file", path))?;
    let mut bytes = Vec::new();
    file.take(want)
        .read_to_end(&mut bytes)
        .map_err(Error::io("read log file", path))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        // The first line was cut by where we started reading.
        all.remove(0);
    }
    Ok(all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.chars().take(MAX_LINE).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_cap_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdout");
        let mut log = RotatingFile::open(path.clone(), 32, 2).expect("open");
        for i in 0..9 {
            log.write(format!("line-{i}\n").repeat(2).as_bytes())
                .expect("write");
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert_eq!(size(&path), 14);
        assert_eq!(size(&numbered(&path, 1)), 28);
        assert_eq!(size(&numbered(&path, 2)), 28);
        assert!(!numbered(&path, 3).exists());
        assert_eq!(
            tail(&path, 4).expect("tail"),
            vec!["line-7", "line-7", "line-8", "line-8"]
        );
        // A single write larger than the cap is split over files.
        log.write(&[b'x'; 70]).expect("write");
        assert_eq!(size(&path), 6);
    }

    #[test]
    fn tail_reads_into_the_previous_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stderr");
        std::fs::write(numbered(&path, 1), "a\nb\nc\n").expect("write");
        std::fs::write(&path, "d\n").expect("write");
        assert_eq!(tail(&path, 3).expect("tail"), vec!["b", "c", "d"]);
        assert_eq!(tail(&path, 1).expect("tail"), vec!["d"]);
        assert!(tail(&dir.path().join("none"), 5).expect("tail").is_empty());
    }

    #[test]
    fn tail_of_a_large_file_reads_only_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdout");
        let body: String = (0..20_000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&path, body).expect("write");
        assert_eq!(tail(&path, 2).expect("tail"), vec!["19998", "19999"]);
    }
}
