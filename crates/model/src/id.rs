//! Salesforce record ids: 15 case-sensitive base-62 characters (3-character key prefix first), and the
//! 18-character form that appends a case-insensitive checksum so that case-folding systems can still tell
//! ids apart.

use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Base-62 digits in ASCII order, so that ids generated from growing numbers also sort as strings.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Salesforce key prefixes casewire uses.
pub mod prefix {
    pub const ORGANIZATION: &str = "00D";
    pub const CASE: &str = "500";
    pub const ACCOUNT: &str = "001";
    pub const CONTACT: &str = "003";
    pub const USER: &str = "005";
    pub const OUTBOUND_MESSAGE: &str = "04k";
    pub const NOTIFICATION: &str = "04l";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a Salesforce id has 15 or 18 characters, {0:?} has {1}")]
    Length(String, usize),
    #[error("a Salesforce id holds only letters and digits, {0:?} does not")]
    Character(String),
    #[error("the checksum of {id:?} should be {expected:?}")]
    Checksum { id: String, expected: String },
    #[error("{id:?} does not start with the key prefix {expected:?}")]
    Prefix { id: String, expected: String },
    #[error("{0:?} has 15 characters; strict validation requires the 18-character form")]
    NotEighteen(String),
    #[error(
        "{0:?} cannot be a case-folded 18-character id: its checksum marks a digit as upper case"
    )]
    CaseUnrecoverable(String),
}

/// How strictly input ids are checked.
///
/// Salesforce itself and most listeners take 15-character ids (what admins paste) and do not verify the
/// checksum; public test data even holds ids with wrong checksums. `Lenient` is therefore the default;
/// `Strict` is for callers that must not guess (an id that will be compared case-insensitively later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdValidation {
    /// 15 or 18 characters; an 18-character id keeps its checksum as written, right or wrong.
    #[default]
    Lenient,
    /// 18 characters with the right checksum (compared case-insensitively, since the checksum exists
    /// for case-folding systems).
    Strict,
}

impl IdValidation {
    /// Parses `text` under this mode.
    pub fn parse(self, text: &str) -> Result<SfId, IdError> {
        match self {
            IdValidation::Lenient => SfId::parse(text),
            IdValidation::Strict => {
                if text.len() == 15 && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(IdError::NotEighteen(text.to_owned()));
                }
                SfId::parse_with(text, true)
            }
        }
    }
}

/// The three checksum characters for a 15-character id.
pub fn checksum(id15: &[u8; 15]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (group, slot) in out.iter_mut().enumerate() {
        let mut bits = 0usize;
        for i in 0..5 {
            if id15[group * 5 + i].is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        *slot = CHECKSUM_ALPHABET[bits];
    }
    out
}

/// An 18-character Salesforce id. Construction guarantees the length, the alphabet and (unless built
/// leniently from input) the checksum.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SfId([u8; 18]);

impl SfId {
    /// Accepts a 15- or 18-character id. A 15-character id gets its checksum appended; an 18-character id
    /// with a wrong checksum is accepted as written (public test data has such ids) unless `strict`.
    pub fn parse_with(text: &str, strict: bool) -> Result<Self, IdError> {
        let bytes = text.as_bytes();
        if !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(IdError::Character(text.to_owned()));
        }
        let mut head = [0u8; 15];
        match bytes.len() {
            15 | 18 => head.copy_from_slice(&bytes[..15]),
            n => return Err(IdError::Length(text.to_owned(), n)),
        }
        let sum = checksum(&head);
        let mut full = [0u8; 18];
        full[..15].copy_from_slice(&head);
        if bytes.len() == 18 {
            full[15..].copy_from_slice(&bytes[15..]);
            if strict && !bytes[15..].eq_ignore_ascii_case(&sum) {
                return Err(IdError::Checksum {
                    id: text.to_owned(),
                    expected: String::from_utf8_lossy(&sum).into_owned(),
                });
            }
        } else {
            full[15..].copy_from_slice(&sum);
        }
        Ok(Self(full))
    }

    /// Lenient parse (the default for input): 15 or 18 characters, checksum not enforced.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        Self::parse_with(text, false)
    }

    /// Strict parse that also requires the given key prefix.
    pub fn parse_prefixed(text: &str, key_prefix: &str) -> Result<Self, IdError> {
        let id = Self::parse_with(text, true)?;
        if !id.as_str().starts_with(key_prefix) {
            return Err(IdError::Prefix {
                id: text.to_owned(),
                expected: key_prefix.to_owned(),
            });
        }
        Ok(id)
    }

    pub fn as_str(&self) -> &str {
        // Construction admits only ASCII alphanumerics.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The case-sensitive 15-character form (what admins paste and what URLs carry).
    pub fn id15(&self) -> &str {
        &self.as_str()[..15]
    }

    pub fn key_prefix(&self) -> &str {
        &self.as_str()[..3]
    }

    /// Salesforce compares ids by their 15-character form; the checksum is derived data.
    pub fn same_record(&self, other: &SfId) -> bool {
        self.0[..15] == other.0[..15]
    }

    /// A stable id for something that has a name but no stored id (an action defined in config or
    /// imported from metadata): the same `key_prefix` and `seed` always give the same id.
    pub fn derived(key_prefix: &str, seed: &str) -> SfId {
        // FNV-1a: stable across Rust versions and platforms, unlike the std hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in seed.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut head = [b'0'; 15];
        let prefix = key_prefix.as_bytes();
        head[..3].copy_from_slice(&prefix[..3.min(prefix.len())]);
        write_base62(hash % 62u64.pow(10), &mut head[5..15]);
        let mut full = [0u8; 18];
        full[..15].copy_from_slice(&head);
        full[15..].copy_from_slice(&checksum(&head));
        SfId(full)
    }

    pub fn has_valid_checksum(&self) -> bool {
        let mut head = [0u8; 15];
        head.copy_from_slice(&self.0[..15]);
        checksum(&head).eq_ignore_ascii_case(&self.0[15..])
    }

    /// Reads an id that a case-insensitive system may have folded (`5007000000ofl5faax`): an
    /// 18-character id whose checksum does not match its case, and whose first 15 characters are all one
    /// case, gets their case back from the checksum, which is what the checksum is for. Any other id is
    /// taken as written (a 15-character id is case-sensitive; a mixed-case one with a wrong checksum was
    /// not folded, its checksum is just wrong).
    pub fn parse_case_insensitive(text: &str) -> Result<Self, IdError> {
        let mut id = Self::parse(text)?;
        if text.len() == 15 {
            return Ok(id);
        }
        if id.has_valid_checksum() {
            // A right checksum may still have been folded to lower case; its canonical form is upper.
            id.0[15..].make_ascii_uppercase();
            return Ok(id);
        }
        // A wrong checksum on a mixed-case body cannot come from folding: such an id (public test data
        // has them) is kept as written rather than "repaired" into another record's id.
        let body = &id.0[..15];
        let folded =
            !body.iter().any(u8::is_ascii_uppercase) || !body.iter().any(u8::is_ascii_lowercase);
        if !folded {
            return Ok(id);
        }
        let mut full = id.0;
        let sums = [full[15], full[16], full[17]];
        for (group, sum) in sums.into_iter().enumerate() {
            let upper = sum.to_ascii_uppercase();
            let bits = CHECKSUM_ALPHABET
                .iter()
                .position(|&c| c == upper)
                .ok_or_else(|| IdError::CaseUnrecoverable(text.to_owned()))?;
            for i in 0..5 {
                let slot = &mut full[group * 5 + i];
                if bits & (1 << i) != 0 {
                    if !slot.is_ascii_alphabetic() {
                        return Err(IdError::CaseUnrecoverable(text.to_owned()));
                    }
                    *slot = slot.to_ascii_uppercase();
                } else {
                    *slot = slot.to_ascii_lowercase();
                }
            }
            full[15 + group] = upper;
        }
        Ok(Self(full))
    }
}

/// The 18-character form of a 15- or 18-character id (an 18-character id is returned as written).
pub fn to18(text: &str) -> Result<String, IdError> {
    SfId::parse(text).map(String::from)
}

/// The case-sensitive 15-character form of a 15- or 18-character id.
pub fn to15(text: &str) -> Result<String, IdError> {
    SfId::parse(text).map(|id| id.id15().to_owned())
}

/// Compares ids the way a case-insensitive system must: 18-character ids may come in any case (their
/// checksum restores it, see [`SfId::parse_case_insensitive`]), 15-character ones are case-sensitive.
/// `5007000000OFL5F`, `5007000000OFL5FAAX` and `5007000000ofl5faax` are the same record;
/// `5007000000ofl5f` is another one. Ids that do not parse are equal only when byte-identical.
pub fn same_id_ignore_case(a: &str, b: &str) -> bool {
    match (
        SfId::parse_case_insensitive(a),
        SfId::parse_case_insensitive(b),
    ) {
        (Ok(a), Ok(b)) => a.same_record(&b),
        _ => a == b,
    }
}

/// Compares two ids as Salesforce does: by the 15-character case-sensitive form when both parse,
/// otherwise as plain strings.
pub fn same_id(a: &str, b: &str) -> bool {
    match (SfId::parse(a), SfId::parse(b)) {
        (Ok(a), Ok(b)) => a.same_record(&b),
        _ => a == b,
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SfId({})", self.as_str())
    }
}

impl TryFrom<String> for SfId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SfId> for String {
    fn from(value: SfId) -> Self {
        value.as_str().to_owned()
    }
}

impl std::str::FromStr for SfId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Makes new ids: key prefix, then 7 base-62 digits of milliseconds since the Unix epoch, then 5 digits
/// of a per-millisecond sequence that starts at a random point. Ids from one generator strictly increase;
/// ids from different processes collide only if they pick the same random start in the same millisecond.
pub struct IdGenerator {
    state: Mutex<(u64, u64)>,
}

const SEQ_SPACE: u64 = 62u64.pow(5);
const MS_SPACE: u64 = 62u64.pow(7);

impl IdGenerator {
    pub fn new() -> Self {
        Self {
            state: Mutex::new((0, 0)),
        }
    }

    /// A fresh id with `key_prefix` (3 characters), for a clock reading of `now_ms` milliseconds since the
    /// epoch. A clock that steps back does not break ordering: the last used millisecond is kept.
    pub fn next(&self, key_prefix: &str, now_ms: u64) -> SfId {
        let (ms, seq) = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (last_ms, last_seq) = *state;
            let next = if now_ms > last_ms {
                // Start low in the space so one millisecond can hold many ids before spilling over.
                (now_ms, rand::random_range(0..SEQ_SPACE / 2))
            } else if last_seq + 1 < SEQ_SPACE {
                (last_ms, last_seq + 1)
            } else {
                (last_ms + 1, 0)
            };
            *state = next;
            next
        };
        let mut head = [b'0'; 15];
        let prefix = key_prefix.as_bytes();
        head[..3].copy_from_slice(&prefix[..3.min(prefix.len())]);
        write_base62(ms % MS_SPACE, &mut head[3..10]);
        write_base62(seq, &mut head[10..15]);
        let sum = checksum(&head);
        let mut full = [0u8; 18];
        full[..15].copy_from_slice(&head);
        full[15..].copy_from_slice(&sum);
        SfId(full)
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

fn write_base62(mut n: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_of_documented_examples() {
        for (id15, sum) in [
            ("00Dn00000008y2t", "EAA"),
            ("5007000000OFL5F", "AAX"),
            ("04l1I000000fztE", "QAQ"),
        ] {
            let id = SfId::parse(id15).unwrap();
            assert_eq!(&id.as_str()[15..], sum);
            assert_eq!(id.id15(), id15);
        }
    }

    #[test]
    fn strict_parse_rejects_bad_checksum_lenient_accepts() {
        assert!(SfId::parse_with("5007000000OFL5FAAA", true).is_err());
        assert_eq!(
            SfId::parse("5007000000OFL5FAAA").unwrap().as_str(),
            "5007000000OFL5FAAA"
        );
        assert!(SfId::parse_with("5007000000OFL5Faax", true).is_ok());
    }

    #[test]
    fn rejects_wrong_length_and_characters() {
        assert!(matches!(SfId::parse("500"), Err(IdError::Length(_, 3))));
        assert!(matches!(
            SfId::parse("5007000000OFL5-"),
            Err(IdError::Character(_))
        ));
    }

    #[test]
    fn same_record_ignores_checksum_case_but_not_body_case() {
        assert!(same_id("5007000000OFL5F", "5007000000OFL5FAAX"));
        assert!(same_id("5007000000OFL5FAAX", "5007000000OFL5Faax"));
        assert!(!same_id("5007000000OFL5F", "5007000000OfL5F"));
    }

    #[test]
    fn generated_ids_are_valid_unique_and_sorted() {
        let generator = IdGenerator::new();
        let mut last: Option<SfId> = None;
        for i in 0..10_000u64 {
            let id = generator.next(prefix::CASE, 1_700_000_000_000 + i / 100);
            assert_eq!(id.key_prefix(), "500");
            assert!(id.has_valid_checksum());
            assert!(SfId::parse_prefixed(id.as_str(), "500").is_ok());
            if let Some(previous) = &last {
                assert!(
                    previous.as_str()[..15] < id.as_str()[..15],
                    "{previous} !< {id}"
                );
            }
            last = Some(id);
        }
    }

    #[test]
    fn derived_ids_are_stable_and_valid() {
        let a = SfId::derived("04k", "Case.Close_To_Legacy");
        assert_eq!(a, SfId::derived("04k", "Case.Close_To_Legacy"));
        assert_ne!(a, SfId::derived("04k", "Case.Other"));
        assert!(a.has_valid_checksum());
        assert_eq!(a.key_prefix(), "04k");
    }

    #[test]
    fn clock_stepping_back_keeps_order() {
        let generator = IdGenerator::new();
        let a = generator.next("04l", 2_000_000);
        let b = generator.next("04l", 1_000_000);
        assert!(a.as_str()[..15] < b.as_str()[..15]);
    }
}
