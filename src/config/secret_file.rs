//! Secrets read from files (`SECRET_KEY_FILE`), the way Docker and Kubernetes hand them over
//! (`/run/secrets/<name>`), so a key never sits in the environment or on a command line.
//!
//! This sits before the data path, in the configuration. A secret may come from its variable
//! or from its file, never both: two sources that might disagree are refused with both names,
//! as the official Docker images do. An empty variable counts as unset (compose writes
//! `${SECRET_KEY:-}`). The file's surrounding whitespace (the newline `echo` adds) is trimmed.

use std::path::Path;

use super::{ConfigError, invalid};

/// Longest secret file read: a key is tens of bytes; anything this large is the wrong file.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The secret from `(variable name, value)` or `(file variable name, path)`, whichever is
/// set; `None` when neither is. Both set, an unreadable, oversized or empty file: an error
/// naming the setting.
pub fn read_secret_file(
    (var, value): (&'static str, Option<String>),
    (file_var, path): (&'static str, Option<&Path>),
) -> Result<Option<String>, ConfigError> {
    let value = value.filter(|v| !v.trim().is_empty());
    let path = path.filter(|p| !p.as_os_str().is_empty());
    let Some(path) = path else {
        return Ok(value);
    };
    if value.is_some() {
        return Err(invalid(
            file_var,
            format!("and {var} are both set; set only one (the file is preferred)"),
        ));
    }
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| invalid(file_var, format!("cannot be read ({shown}): {e}")))?
        .len();
    if size > MAX_SECRET_FILE_BYTES {
        return Err(invalid(
            file_var,
            format!("is {size} bytes ({shown}); a secret file holds only the key"),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(file_var, format!("cannot be read ({shown}): {e}")))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(invalid(file_var, format!("is empty ({shown})")));
    }
    Ok(Some(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn the_file_is_read_trimmed_and_exclusive_with_the_variable() -> TestResult {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("secret_key");
        std::fs::write(&file, "0123456789abcdef0123456789abcdef\n")?;
        let got = read_secret_file(("SECRET_KEY", None), ("SECRET_KEY_FILE", Some(&file)))?;
        assert_eq!(got.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        // An empty variable (compose's `${SECRET_KEY:-}`) is unset.
        let got = read_secret_file(
            ("SECRET_KEY", Some(String::new())),
            ("SECRET_KEY_FILE", Some(&file)),
        )?;
        assert!(got.is_some());
        let Err(both) = read_secret_file(
            ("SECRET_KEY", Some("x".into())),
            ("SECRET_KEY_FILE", Some(&file)),
        ) else {
            return Err("both sources were accepted".into());
        };
        assert_eq!(both.setting, "SECRET_KEY_FILE");
        assert!(
            both.to_string().contains("SECRET_KEY are both set"),
            "{both}"
        );
        Ok(())
    }

    #[test]
    fn missing_or_empty_files_are_named() -> TestResult {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("nope");
        let Err(e) = read_secret_file(("SECRET_KEY", None), ("SECRET_KEY_FILE", Some(&missing)))
        else {
            return Err("a missing file was accepted".into());
        };
        assert!(e.to_string().contains("cannot be read"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n")?;
        let Err(e) = read_secret_file(("SECRET_KEY", None), ("SECRET_KEY_FILE", Some(&empty)))
        else {
            return Err("an empty file was accepted".into());
        };
        assert!(e.to_string().contains("is empty"), "{e}");
        assert_eq!(
            read_secret_file(("SECRET_KEY", Some("k".into())), ("SECRET_KEY_FILE", None))?,
            Some("k".to_string())
        );
        Ok(())
    }
}
