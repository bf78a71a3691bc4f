//! [`RedisStoreError`], and keeping passwords out of everything printed.

use std::fmt;

/// Why [`RedisStore::connect`](super::RedisStore::connect) failed.
///
/// Neither `Display` nor `Debug` shows the password of the URL: the URL is
/// kept with its password replaced by `***`, and the client's message is
/// scrubbed of it too.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisStoreError {
    kind: ErrorKind,
    url: String,
    message: String,
}

/// What kind of failure a [`RedisStoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL could not be parsed (or names a scheme this build lacks,
    /// such as `rediss://` without the `redis-tls` feature).
    InvalidUrl,
    /// The server could not be reached, refused the credentials, or did not
    /// answer `PING` within the connect timeout.
    Unavailable,
}

impl RedisStoreError {
    pub(super) fn new(kind: ErrorKind, url: &Redacted, message: impl fmt::Display) -> Self {
        RedisStoreError {
            kind,
            url: url.shown.clone(),
            message: url.scrub(&message.to_string()),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed (the server was unavailable,
    /// rather than the URL wrong).
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
}

impl fmt::Display for RedisStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::InvalidUrl => "invalid Redis URL",
            ErrorKind::Unavailable => "Redis unavailable",
        };
        write!(f, "{what} ({}): {}", self.url, self.message)
    }
}

impl fmt::Debug for RedisStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreError")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for RedisStoreError {}

/// A Redis URL as it may be shown, and the secret that must never be.
#[derive(Clone)]
pub(super) struct Redacted {
    /// The URL with its password (if any) replaced by `***`.
    pub(super) shown: String,
    secret: Option<String>,
}

impl Redacted {
    /// Splits `url` (`scheme://[user][:password@]host…`) without parsing it
    /// fully: whatever stands between the authority's first `:` and its last
    /// `@` is the password.
    pub(super) fn new(url: &str) -> Self {
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return Redacted {
                shown: url.to_owned(),
                secret: None,
            };
        };
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let Some(at) = authority.rfind('@') else {
            return Redacted {
                shown: url.to_owned(),
                secret: None,
            };
        };
        let userinfo = &authority[..at];
        let Some(colon) = userinfo.find(':') else {
            // `redis://secret@host`: a lone user name is a password to Redis
            // before ACLs (redis-rs sends it as one); hide it too.
            return Redacted {
                shown: format!("{}***{}", &url[..scheme_end], &rest[at..]),
                secret: Some(userinfo.to_owned()).filter(|s| !s.is_empty()),
            };
        };
        let password = &userinfo[colon + 1..];
        Redacted {
            shown: format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &userinfo[..colon],
                &rest[at..]
            ),
            secret: Some(password.to_owned()).filter(|s| !s.is_empty()),
        }
    }

    /// `text` with every occurrence of the secret replaced by `***`.
    pub(super) fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) => text.replace(secret.as_str(), "***"),
            None => text.to_owned(),
        }
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_of_a_url() {
        let r = Redacted::new("redis://:hunter2@127.0.0.1:6379/0");
        assert_eq!(r.shown, "redis://:***@127.0.0.1:6379/0");
        let r = Redacted::new("rediss://alice:s3cr%40t@h:1");
        assert_eq!(r.shown, "rediss://alice:***@h:1");
        assert_eq!(r.scrub("bad s3cr%40t here"), "bad *** here");
        let r = Redacted::new("redis://hunter2@h");
        assert_eq!(r.shown, "redis://***@h");
        let r = Redacted::new("redis://127.0.0.1:6379");
        assert_eq!(r.shown, "redis://127.0.0.1:6379");
        assert_eq!(Redacted::new("not a url").shown, "not a url");
    }

    #[test]
    fn error_never_prints_the_password() {
        let url = Redacted::new("redis://:hunter2@127.0.0.1:1");
        let e = RedisStoreError::new(ErrorKind::Unavailable, &url, "auth hunter2 failed");
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("127.0.0.1:1"), "{shown}");
        }
        assert!(e.is_retryable());
    }
}
