//! [`WebAuth`]: per-run basic-auth credentials for the servers the suite starts, written as the
//! `--web.config.file` the Prometheus family of servers reads (a bcrypt hash of a fresh random password),
//! so that "access to performance data requires authentication" holds for the suite's own servers too.

use std::{fmt, io::Read, path::Path};

use super::Error;
use crate::metrics::Auth;

/// User name of the per-run credentials.
pub const USER: &str = "harness";

/// bcrypt cost: the password is random and lives for one run, so the hash need not be slow to break; a
/// low cost keeps every authenticated request cheap for the servers.
const COST: u32 = 4;

/// Basic-auth credentials made for one run.
#[derive(Clone)]
pub struct WebAuth {
    password: String,
    hash: String,
}

impl fmt::Debug for WebAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebAuth").field("user", &USER).finish_non_exhaustive()
    }
}

impl WebAuth {
    /// Fresh credentials with a random 32-character password.
    pub fn generate() -> Result<WebAuth, Error> {
        let mut bytes = [0u8; 16];
        let urandom = Path::new("/dev/urandom");
        std::fs::File::open(urandom).and_then(|mut f| f.read_exact(&mut bytes)).map_err(|e| Error::io(urandom, e))?;
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let hash = bcrypt::hash(&password, COST)
            .map_err(|e| Error::Config { path: "bcrypt".into(), detail: e.to_string() })?;
        Ok(WebAuth { password, hash })
    }

    /// The credentials for clients.
    pub fn auth(&self) -> Auth {
        Auth::Basic { user: USER.into(), password: self.password.clone() }
    }

    /// The password (for `password_file`s of scrape and alerting configs).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The web configuration file's text.
    pub fn web_config(&self) -> String {
        format!("basic_auth_users:\n  {USER}: {}\n", self.hash)
    }

    /// Writes the web configuration into `dir` (mode 0600) and returns its path.
    pub fn write_web_config(&self, dir: &Path) -> Result<std::path::PathBuf, Error> {
        write_secret(&dir.join("web-config.yml"), &self.web_config())
    }
}

/// Writes `text` to `path` readable by the owner only.
pub fn write_secret(path: &Path, text: &str) -> Result<std::path::PathBuf, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Error::io(path, e))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_fresh_and_the_hash_verifies() {
        let a = WebAuth::generate().unwrap();
        let b = WebAuth::generate().unwrap();
        assert_ne!(a.password(), b.password());
        assert_eq!(a.password().len(), 32);
        assert!(bcrypt::verify(a.password(), &a.hash).unwrap());
        assert!(!bcrypt::verify(b.password(), &a.hash).unwrap());
        assert!(a.web_config().starts_with("basic_auth_users:\n  harness: $2"));
        assert!(!format!("{a:?}").contains(a.password()));
    }

    #[test]
    fn secrets_are_written_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = write_secret(&d.path().join("s"), "x").unwrap();
        assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
