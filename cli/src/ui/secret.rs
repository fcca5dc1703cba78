//! Values that must never be shown: the console's token, its session and
//! cross-site tokens. Their `Debug` and `Display` print `***`, and they
//! compare in constant time.

use std::fmt;
use std::io::Read as _;

/// A secret text; shown as `***`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    #[cfg(test)]
    pub(crate) fn new(value: String) -> Self {
        Secret(value)
    }

    /// 32 random bytes as hex, from the system's random source.
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; 32];
        let from_os = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .is_ok();
        if !from_os {
            // Where there is no /dev/urandom: std's hasher keys are seeded
            // from the system's random source too.
            use std::hash::{BuildHasher, Hasher};
            for chunk in bytes.chunks_mut(8) {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now()
                        .elapsed()
                        .map_or(0, |d| d.as_nanos()),
                );
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        Secret(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The value, for the one place that sends or checks it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the secret, in time that depends only on
    /// their lengths (so a guess cannot be refined byte by byte).
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let mut diff = u8::from(a.len() != b.len());
        for i in 0..a.len().max(b.len()) {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0xff);
            diff |= x ^ y;
        }
        diff == 0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_shown_and_compares_whole() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter"));
        assert!(!s.matches("hunter22"));
        assert!(!s.matches(""));
        assert_ne!(Secret::random(), Secret::random());
    }
}
