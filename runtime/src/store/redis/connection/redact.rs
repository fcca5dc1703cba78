//! Keeping passwords out of everything printed: a [`Secret`] whose `Debug`
//! and `Display` show `***`, the redaction of URL text that may not even
//! parse, and the scrubbing of error text that came back from redis-rs
//! (which may quote the URL it was given).

use std::fmt;

/// What a redacted secret prints as.
pub const REDACTED: &str = "***";

/// A password or token. It prints as `***` with `{}` and `{:?}`; only
/// [`Secret::expose`] gives the text, to hand it to the Redis client.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself: only for the Redis client's `AUTH`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Query parameters whose values are shown; every other value (a password,
/// a misspelt parameter that may hold one) is hidden.
const SHOWN_PARAMS: [&str; 4] = ["ca_file", "cert_file", "key_file", "sentinel_username"];

/// `url` with its password (and any secret query parameter) replaced by
/// `***`. Works on text that is not a valid URL too, erring on the side of
/// hiding: when it cannot tell where the credentials end, it hides
/// everything up to the last `@`. User names stay visible (they are needed
/// to read an ACL error).
///
/// ```
/// use steadfast_runtime::redis_connection::redact_url;
/// assert_eq!(
///     redact_url("redis://worker:s3cret@10.0.0.5:6379/0"),
///     "redis://worker:***@10.0.0.5:6379/0"
/// );
/// assert_eq!(redact_url("redis://:s3cret@host"), "redis://:***@host");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let (userinfo, after) = split_userinfo(rest);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match userinfo {
        Userinfo::None => {}
        Userinfo::Known(info) => {
            match info.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                // A user name alone.
                None => out.push_str(info),
            }
            out.push('@');
        }
        Userinfo::Ambiguous => {
            out.push_str(REDACTED);
            out.push('@');
        }
    }
    out.push_str(&redact_query(after));
    out
}

/// Where the credentials of the text after `scheme://` are.
pub(crate) enum Userinfo<'a> {
    /// No `@`: no credentials.
    None,
    /// `user:password` (or `:password`, or `user`) before the last `@` of
    /// the part before the query.
    Known(&'a str),
    /// An `@` appears only after a `?`: either a query value holds an `@`
    /// or the password holds an unencoded `?`. Treated as credentials to be
    /// safe.
    Ambiguous,
}

/// Splits the text after `scheme://` into its credentials and the rest.
pub(crate) fn split_userinfo(rest: &str) -> (Userinfo<'_>, &str) {
    let main_end = rest.find('?').unwrap_or(rest.len());
    if let Some(at) = rest[..main_end].rfind('@') {
        return (Userinfo::Known(&rest[..at]), &rest[at + 1..]);
    }
    match rest.rfind('@') {
        Some(at) => (Userinfo::Ambiguous, &rest[at + 1..]),
        None => (Userinfo::None, rest),
    }
}

/// Replaces the values of query parameters other than the known harmless
/// ones with `***`.
fn redact_query(text: &str) -> String {
    let Some((base, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if !SHOWN_PARAMS.contains(&key) => format!("{key}={REDACTED}"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// `text` with every known secret replaced by `***`, and the credentials of
/// every URL in it redacted. For error text that came back from the Redis
/// client or the server, which may quote the URL it was given.
///
/// Secrets are matched as given and percent-encoded; an empty secret is
/// ignored.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = redact_urls_in(text);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, REDACTED);
        let encoded = super::url::encode_component(secret);
        if encoded != *secret {
            out = out.replace(&encoded, REDACTED);
        }
    }
    out
}

/// Redacts each `scheme://...` token of free text (a token ends at white
/// space or a quote).
fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The token starts after the last separator before `://`.
        let start = rest[..i]
            .rfind(|c: char| c.is_whitespace() || is_quote(c))
            .map_or(0, |p| {
                p + rest[p..].chars().next().map_or(1, char::len_utf8)
            });
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || is_quote(c))
            .map_or(rest.len(), |e| i + e);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '`' | '(' | ')' | '<' | '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_redacted() {
        for (url, want) in [
            ("redis://:pw@h:1", "redis://:***@h:1"),
            ("redis://u:pw@h:1/2", "redis://u:***@h:1/2"),
            ("redis://u@h", "redis://u@h"),
            ("redis://h:6379", "redis://h:6379"),
            // An unencoded `@` or `/` in the password.
            ("redis://u:p@w/x@h:1", "redis://u:***@h:1"),
            (
                "rediss+cluster://u:pw@a:1,b:2?ca_file=/x",
                "rediss+cluster://u:***@a:1,b:2?ca_file=/x",
            ),
            // An unencoded `?` in the password: hide up to the last `@`.
            ("redis://:p?w@h:1", "redis://***@h:1"),
            (
                "redis+sentinel://s:1/m?sentinel_password=pw&ca_file=/c",
                "redis+sentinel://s:1/m?sentinel_password=***&ca_file=/c",
            ),
            ("not a url :pw@h", "not a url :***@h"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn scrub_hides_urls_and_known_secrets_in_free_text() {
        let text = "cannot connect to `redis://:hunter2@127.0.0.1:1/` (pass hunter2, h%40nter)";
        let out = scrub(text, &["hunter2", "h@nter"]);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("h%40nter"), "{out}");
        assert!(out.contains("redis://:***@127.0.0.1:1/"), "{out}");
    }

    #[test]
    fn secrets_print_as_stars() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }
}
