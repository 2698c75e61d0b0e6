//! [`InvalidConfig`]: why a layer's configuration cannot work — the one shape of config error in
//! every dotray layer, with the two checks their `validate` methods are made of.

/// A configuration that cannot work, and why.
///
/// ```
/// use dotray_codec::InvalidConfig;
/// use std::time::Duration;
///
/// let (queue_len, timeout) = (0usize, Duration::from_secs(1));
/// let checked = InvalidConfig::check_nonzero([("queue_len", queue_len == 0), ("timeout", timeout.is_zero())]);
/// assert_eq!(checked, Err(InvalidConfig::Zero("queue_len")));
/// assert_eq!(InvalidConfig::check(1 < 2, "max must exceed min"), Ok(()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidConfig {
    /// A field that must be positive is zero.
    #[error("config field `{0}` must not be zero")]
    Zero(&'static str),
    /// A field is out of range, or two fields contradict each other.
    #[error("inconsistent config: {0}")]
    Inconsistent(&'static str),
}

impl InvalidConfig {
    /// [`InvalidConfig::Zero`] naming the first of `fields` — `(name, is_zero)` — that is zero.
    pub fn check_nonzero(fields: impl IntoIterator<Item = (&'static str, bool)>) -> Result<(), Self> {
        match fields.into_iter().find(|(_, zero)| *zero) {
            Some((name, _)) => Err(Self::Zero(name)),
            None => Ok(()),
        }
    }

    /// [`InvalidConfig::Inconsistent`] with `why`, unless `ok`.
    pub fn check(ok: bool, why: &'static str) -> Result<(), Self> {
        if ok { Ok(()) } else { Err(Self::Inconsistent(why)) }
    }
}
