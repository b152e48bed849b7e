//! Log files rotated by size: `app.log` is written until it passes `LOG_FILE_MAX_BYTES`, then
//! renamed `app.log.1` (the older ones shift to `.2`, ...), and only `LOG_FILE_COUNT` files are
//! kept in all, the current one included (Docker's `max-size`/`max-file` meaning: 10 MB and 3
//! files bound a log to 30 MB on disk).
//!
//! Beside the data path: the main log and the audit log can each go to such a file. The
//! rotation is the `file-rotate` crate's (tracing-appender rotates by time only). A file is
//! rotated after the line that crosses the size, so lines are never split and a file ends at
//! most one line over the limit. Opening checks everything a user can get wrong (no file name,
//! a directory that cannot be made, a file that cannot be written) and says so, since the
//! crate itself would panic on some of it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};

/// Default `LOG_FILE_MAX_BYTES`: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Default `LOG_FILE_COUNT`: the current file and two older ones.
pub const DEFAULT_FILE_COUNT: usize = 3;

/// How files rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file is rotated once it passes this many bytes.
    pub max_bytes: u64,
    /// Files kept in all, the current one included (at least 1).
    pub files: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: DEFAULT_MAX_BYTES,
            files: DEFAULT_FILE_COUNT,
        }
    }
}

/// A log file that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("{setting} {path}: {reason}")]
pub struct LogFileError {
    /// `LOG_FILE` or `AUDIT_LOG`.
    pub setting: &'static str,
    /// The path given.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// A size-rotated log file, shared by the threads that log (one line per write).
pub type RotatingFile = Mutex<FileRotate<AppendCount>>;

/// Opens `path` for appending, rotated as `rotation` says; `setting` names the setting in an
/// error.
pub fn open(
    setting: &'static str,
    path: &Path,
    rotation: Rotation,
) -> Result<RotatingFile, LogFileError> {
    let fail = |reason: String| LogFileError {
        setting,
        path: path.to_path_buf(),
        reason,
    };
    if rotation.max_bytes == 0 || rotation.files == 0 {
        return Err(fail(
            "LOG_FILE_MAX_BYTES and LOG_FILE_COUNT must be at least 1".into(),
        ));
    }
    if path.file_name().is_none() {
        return Err(fail("is not a file name".into()));
    }
    let path = std::path::absolute(path).map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| fail(format!("cannot be written: {e}")))?;
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    let file = FileRotate::new(
        &path,
        AppendCount::new(rotation.files - 1),
        ContentLimit::BytesSurpassed(usize::try_from(rotation.max_bytes).unwrap_or(usize::MAX)),
        Compression::None,
        Some(options),
    );
    Ok(Mutex::new(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn rotates_past_the_size_and_keeps_the_count() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("logs/app.log");
        let file = open(
            "LOG_FILE",
            &path,
            Rotation {
                max_bytes: 100,
                files: 3,
            },
        )?;
        let line = format!("{}\n", "x".repeat(39));
        for _ in 0..30 {
            let mut f = file.lock().map_err(|_| "poisoned")?;
            f.write_all(line.as_bytes())?;
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("logs"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().to_string()))
            .collect::<Result<_, _>>()?;
        names.sort();
        assert_eq!(names, ["app.log", "app.log.1", "app.log.2"]);
        for name in &names {
            let text = std::fs::read_to_string(dir.path().join("logs").join(name))?;
            // Whole lines only; at most one line past the limit.
            assert!(text.len() <= 100 + line.len(), "{name}: {}", text.len());
            assert!(text.lines().all(|l| l.len() == 39), "{name}");
        }
        Ok(())
    }

    #[test]
    fn unusable_paths_are_refused_with_the_setting() -> TestResult {
        let dir = tempfile::tempdir()?;
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "")?;
        let Err(e) = open("AUDIT_LOG", &blocker.join("audit.log"), Rotation::default()) else {
            return Err("a path under a file was accepted".into());
        };
        assert!(e.to_string().starts_with("AUDIT_LOG "), "{e}");
        let Err(e) = open("LOG_FILE", dir.path(), Rotation::default()) else {
            return Err("a directory was accepted as the log file".into());
        };
        assert!(e.to_string().contains("cannot be written"), "{e}");
        Ok(())
    }
}
