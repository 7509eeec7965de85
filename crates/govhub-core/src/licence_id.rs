//! The GB/T 36901/36903-2018 e-licence identifier (电子证照标识) and its
//! ISO 7064 MOD 37,36 check character.
//!
//! ```text
//! 1.2.156.3005.2.<type code>.<issuer code>.<licence number>.<version>.<check>
//! 1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S
//! ```
//!
//! | part | rule enforced here |
//! |---|---|
//! | prefix | exactly `1.2.156.3005.2.` (the e-licence arc) |
//! | type code (证照类型代码) | 21 characters: the defining authority's 18-character USCC (alphabet `0-9A-HJ-NPQRTUWXY`) followed by a 3-digit sequence |
//! | issuer code (颁发机构代码) | the issuing organisation's 18-character USCC (same alphabet) |
//! | licence number (证照编号) | 1–40 characters of `0-9A-Z` (govhub's choice: the check alphabet, so every character is covered by the check; dots are separators and cannot appear) |
//! | version (版本号) | 3 digits, `001`–`999` |
//! | check (校验位) | one character of `0-9A-Z`: ISO 7064 MOD 37,36 over type code + issuer code + licence number + version concatenated without dots |
//!
//! The embedded USCCs are checked for shape (length and alphabet) only: early pilot
//! codes fail the GB 32100 check yet are legal, and the identifier's own check character
//! already protects the whole body. Callers that need the USCC check use
//! [`crate::standards::Uscc`].
//!
//! Parsing accepts lower-case letters and normalises them to upper case (the check is
//! case-insensitive by construction); [`LicenceId`]'s `Display` is always the canonical
//! upper-case form. MOD 37,36 is a hybrid system: it detects every single-character
//! substitution in the checked body and almost every transposition of two adjacent
//! characters (about 99.8 % of them; the tests measure it).

use std::fmt;
use std::str::FromStr;

/// The fixed object-identifier arc every e-licence identifier starts with.
pub const PREFIX: &str = "1.2.156.3005.2.";

/// Longest licence number govhub accepts.
pub const MAX_NUMBER_LEN: usize = 40;

const CHECK_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_LEN: usize = 18;
const TYPE_CODE_LEN: usize = USCC_LEN + 3;
const VERSION_LEN: usize = 3;

/// Which part of the identifier an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    TypeCode,
    IssuerCode,
    Number,
    Version,
    Check,
}

impl Part {
    /// English name, used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Part::TypeCode => "type code",
            Part::IssuerCode => "issuer code",
            Part::Number => "licence number",
            Part::Version => "version",
            Part::Check => "check character",
        }
    }

    /// Chinese name, used in messages for clerks.
    pub fn name_zh(self) -> &'static str {
        match self {
            Part::TypeCode => "证照类型代码",
            Part::IssuerCode => "颁发机构代码",
            Part::Number => "证照编号",
            Part::Version => "版本号",
            Part::Check => "校验位",
        }
    }
}

/// Why an e-licence identifier (or its parts) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceIdError {
    /// The text does not start with `1.2.156.3005.2.`.
    Prefix,
    /// After the prefix there must be exactly five dot-separated parts.
    PartCount { found: usize },
    /// A part has the wrong length; `expected` describes the rule.
    Length { part: Part, found: usize, expected: &'static str },
    /// A character outside the part's alphabet; `position` counts from 1 within the part.
    Character { part: Part, position: usize, ch: char },
    /// Version `000` is not a version.
    ZeroVersion,
    /// The check character does not match the body.
    Check { expected: char, found: char },
}

impl LicenceIdError {
    /// Stable error code a caller can map to its own error space.
    pub fn code(&self) -> &'static str {
        match self {
            LicenceIdError::Check { .. } => "licence-id-check",
            LicenceIdError::Prefix
            | LicenceIdError::PartCount { .. }
            | LicenceIdError::Length { .. }
            | LicenceIdError::Character { .. }
            | LicenceIdError::ZeroVersion => "licence-id-format",
        }
    }

    /// Chinese message for clerks.
    pub fn message_zh(&self) -> String {
        match self {
            LicenceIdError::Prefix => format!("电子证照标识应以“{PREFIX}”开头"),
            LicenceIdError::PartCount { found } => {
                format!(
                    "电子证照标识在前缀之后应有5段（类型代码、颁发机构代码、编号、版本号、校验位），实际为{found}段"
                )
            }
            LicenceIdError::Length { part, found, expected } => {
                format!("{}长度不符合要求（{expected}），实际为{found}位", part.name_zh())
            }
            LicenceIdError::Character { part, position, ch } => {
                format!("{}第{position}位字符“{ch}”不合法", part.name_zh())
            }
            LicenceIdError::ZeroVersion => "版本号不能为000".to_string(),
            LicenceIdError::Check { expected, found } => format!("校验位应为“{expected}”，实际为“{found}”"),
        }
    }
}

impl fmt::Display for LicenceIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LicenceIdError::Prefix => write!(f, "an e-licence identifier starts with {PREFIX}"),
            LicenceIdError::PartCount { found } => write!(
                f,
                "expected 5 dot-separated parts after the prefix (type, issuer, number, version, check), found {found}"
            ),
            LicenceIdError::Length { part, found, expected } => {
                write!(f, "{} must be {expected}, found {found} characters", part.name())
            }
            LicenceIdError::Character { part, position, ch } => {
                write!(f, "{}: character '{ch}' at position {position} is not allowed", part.name())
            }
            LicenceIdError::ZeroVersion => write!(f, "version 000 is not allowed (versions start at 001)"),
            LicenceIdError::Check { expected, found } => {
                write!(f, "check character should be '{expected}', found '{found}'")
            }
        }
    }
}

impl std::error::Error for LicenceIdError {}

/// Value of a character in the `0-9A-Z` check alphabet (upper case only).
fn check_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

/// ISO 7064 MOD 37,36 (hybrid system, M = 36) check character over `body`, which must
/// consist of `0-9A-Z` only. Returns `None` for any other character.
pub fn mod37_36_check_char(body: &str) -> Option<char> {
    const M: u32 = 36;
    let mut p = M;
    for b in body.bytes() {
        let mut s = (p + check_value(b)?) % M;
        if s == 0 {
            s = M;
        }
        p = (s * 2) % (M + 1);
    }
    let c = (M + 1 - p) % M;
    CHECK_ALPHABET.get(c as usize).map(|&b| char::from(b))
}

/// A valid GB/T 36903 e-licence identifier in canonical (upper-case) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenceId {
    text: String,
    type_code: String,
    issuer_code: String,
    number: String,
    version: u16,
    check: char,
}

fn check_part(part: Part, value: &str, allowed: impl Fn(char) -> bool) -> Result<(), LicenceIdError> {
    match value.chars().enumerate().find(|&(_, c)| !allowed(c)) {
        Some((i, ch)) => Err(LicenceIdError::Character { part, position: i + 1, ch }),
        None => Ok(()),
    }
}

fn validate_type_code(code: &str) -> Result<(), LicenceIdError> {
    let n = code.chars().count();
    if n != TYPE_CODE_LEN {
        return Err(LicenceIdError::Length {
            part: Part::TypeCode,
            found: n,
            expected: "21 characters (18-character USCC + 3-digit sequence)",
        });
    }
    let (uscc, seq) = code.split_at(USCC_LEN);
    check_part(Part::TypeCode, uscc, |c| USCC_ALPHABET.contains(c))?;
    match seq.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, ch)) => Err(LicenceIdError::Character { part: Part::TypeCode, position: USCC_LEN + i + 1, ch }),
        None => Ok(()),
    }
}

fn validate_issuer_code(code: &str) -> Result<(), LicenceIdError> {
    let n = code.chars().count();
    if n != USCC_LEN {
        return Err(LicenceIdError::Length { part: Part::IssuerCode, found: n, expected: "18 characters (a USCC)" });
    }
    check_part(Part::IssuerCode, code, |c| USCC_ALPHABET.contains(c))
}

fn validate_number(number: &str) -> Result<(), LicenceIdError> {
    let n = number.chars().count();
    if n == 0 || n > MAX_NUMBER_LEN {
        return Err(LicenceIdError::Length { part: Part::Number, found: n, expected: "1 to 40 characters" });
    }
    check_part(Part::Number, number, |c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

fn parse_version(version: &str) -> Result<u16, LicenceIdError> {
    let n = version.chars().count();
    if n != VERSION_LEN {
        return Err(LicenceIdError::Length { part: Part::Version, found: n, expected: "3 digits" });
    }
    check_part(Part::Version, version, |c| c.is_ascii_digit())?;
    let v = version.bytes().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    if v == 0 {
        return Err(LicenceIdError::ZeroVersion);
    }
    Ok(v)
}

impl LicenceId {
    /// Compose an identifier from its parts and compute its check character.
    /// `version` is 1–999 and is written with three digits.
    pub fn new(type_code: &str, issuer_code: &str, number: &str, version: u16) -> Result<LicenceId, LicenceIdError> {
        validate_type_code(type_code)?;
        validate_issuer_code(issuer_code)?;
        validate_number(number)?;
        if version == 0 {
            return Err(LicenceIdError::ZeroVersion);
        }
        if version > 999 {
            return Err(LicenceIdError::Length {
                part: Part::Version,
                found: version.to_string().len(),
                expected: "3 digits",
            });
        }
        let version_text = format!("{version:03}");
        let body = format!("{type_code}{issuer_code}{number}{version_text}");
        // Every character was validated against a subset of the check alphabet above.
        let check =
            mod37_36_check_char(&body).ok_or(LicenceIdError::Character { part: Part::Number, position: 1, ch: '?' })?;
        Ok(LicenceId {
            text: format!("{PREFIX}{type_code}.{issuer_code}.{number}.{version_text}.{check}"),
            type_code: type_code.to_string(),
            issuer_code: issuer_code.to_string(),
            number: number.to_string(),
            version,
            check,
        })
    }

    /// The canonical text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// 证照类型代码: the defining authority's USCC + 3-digit sequence.
    pub fn type_code(&self) -> &str {
        &self.type_code
    }

    /// The USCC of the authority that defined the licence type (first 18 characters of
    /// the type code).
    pub fn type_authority(&self) -> &str {
        &self.type_code[..USCC_LEN]
    }

    /// 颁发机构代码: the issuing organisation's USCC.
    pub fn issuer_code(&self) -> &str {
        &self.issuer_code
    }

    /// 证照编号.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// Version, 1–999.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The MOD 37,36 check character.
    pub fn check_char(&self) -> char {
        self.check
    }

    /// The same licence at another version (a re-issue), with its own check character.
    pub fn with_version(&self, version: u16) -> Result<LicenceId, LicenceIdError> {
        LicenceId::new(&self.type_code, &self.issuer_code, &self.number, version)
    }
}

impl FromStr for LicenceId {
    type Err = LicenceIdError;

    fn from_str(input: &str) -> Result<LicenceId, LicenceIdError> {
        let upper = input.trim().to_ascii_uppercase();
        let rest = upper.strip_prefix(PREFIX).ok_or(LicenceIdError::Prefix)?;
        let parts: Vec<&str> = rest.split('.').collect();
        let [type_code, issuer_code, number, version, check] = parts.as_slice() else {
            return Err(LicenceIdError::PartCount { found: parts.len() });
        };
        validate_type_code(type_code)?;
        validate_issuer_code(issuer_code)?;
        validate_number(number)?;
        let version_number = parse_version(version)?;
        let mut check_chars = check.chars();
        let found = match (check_chars.next(), check_chars.next()) {
            (Some(c), None) => c,
            _ => {
                return Err(LicenceIdError::Length {
                    part: Part::Check,
                    found: check.chars().count(),
                    expected: "1 character",
                })
            }
        };
        check_part(Part::Check, check, |c| c.is_ascii_digit() || c.is_ascii_uppercase())?;
        let id = LicenceId::new(type_code, issuer_code, number, version_number)?;
        if id.check != found {
            return Err(LicenceIdError::Check { expected: id.check, found });
        }
        Ok(id)
    }
}

impl fmt::Display for LicenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for LicenceId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE_002: &str = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S";
    const EXAMPLE_001: &str = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U";

    #[test]
    fn known_answers_from_the_standard_examples() {
        let id: LicenceId = EXAMPLE_002.parse().unwrap();
        assert_eq!(id.type_code(), "11100000000013338W011");
        assert_eq!(id.type_authority(), "11100000000013338W");
        assert_eq!(id.issuer_code(), "11430000006122244L");
        assert_eq!(id.number(), "20230000403");
        assert_eq!(id.version(), 2);
        assert_eq!(id.check_char(), 'S');
        assert_eq!(id.to_string(), EXAMPLE_002);

        let v1: LicenceId = EXAMPLE_001.parse().unwrap();
        assert_eq!(v1.check_char(), 'U');
        assert_eq!(id.with_version(1).unwrap(), v1);

        let built = LicenceId::new("11100000000013338W011", "11430000006122244L", "20230000403", 2).unwrap();
        assert_eq!(built, id);
        assert_eq!(built.as_str(), EXAMPLE_002);
    }

    #[test]
    fn wrong_check_character_is_rejected() {
        let wrong = EXAMPLE_002.replace(".002.S", ".002.T");
        assert_eq!(wrong.parse::<LicenceId>(), Err(LicenceIdError::Check { expected: 'S', found: 'T' }));
        // The version-1 check character on the version-2 body.
        let swapped = EXAMPLE_002.replace(".002.S", ".002.U");
        assert!(matches!(swapped.parse::<LicenceId>(), Err(LicenceIdError::Check { expected: 'S', found: 'U' })));
        assert_eq!(LicenceIdError::Check { expected: 'S', found: 'T' }.code(), "licence-id-check");
    }

    #[test]
    fn lower_case_is_normalised() {
        let id: LicenceId = EXAMPLE_002.to_ascii_lowercase().parse().unwrap();
        assert_eq!(id.to_string(), EXAMPLE_002);
    }

    #[test]
    fn malformed_identifiers_give_precise_errors() {
        assert_eq!("2.16.156.3005.2.X".parse::<LicenceId>(), Err(LicenceIdError::Prefix));
        assert_eq!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.002.S".parse::<LicenceId>(),
            Err(LicenceIdError::PartCount { found: 4 })
        );
        assert!(matches!(
            "1.2.156.3005.2.11100000000013338W01.11430000006122244L.1.002.S".parse::<LicenceId>(),
            Err(LicenceIdError::Length { part: Part::TypeCode, found: 20, .. })
        ));
        // 'O' is not in the USCC alphabet.
        assert_eq!(
            "1.2.156.3005.2.1110000000001333OW011.11430000006122244L.1.002.S".parse::<LicenceId>(),
            Err(LicenceIdError::Character { part: Part::TypeCode, position: 17, ch: 'O' })
        );
        // The sequence after the USCC is digits only.
        assert_eq!(
            "1.2.156.3005.2.11100000000013338W0A1.11430000006122244L.1.002.S".parse::<LicenceId>(),
            Err(LicenceIdError::Character { part: Part::TypeCode, position: 20, ch: 'A' })
        );
        assert!(matches!(
            "1.2.156.3005.2.11100000000013338W011.1143000000612224L.1.002.S".parse::<LicenceId>(),
            Err(LicenceIdError::Length { part: Part::IssuerCode, found: 17, .. })
        ));
        assert!(matches!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L..002.S".parse::<LicenceId>(),
            Err(LicenceIdError::Length { part: Part::Number, found: 0, .. })
        ));
        assert_eq!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.AB-1.002.S".parse::<LicenceId>(),
            Err(LicenceIdError::Character { part: Part::Number, position: 3, ch: '-' })
        );
        assert_eq!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.营业执照.002.S".parse::<LicenceId>(),
            Err(LicenceIdError::Character { part: Part::Number, position: 1, ch: '营' })
        );
        assert!(matches!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.1.02.S".parse::<LicenceId>(),
            Err(LicenceIdError::Length { part: Part::Version, found: 2, .. })
        ));
        assert_eq!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.1.000.S".parse::<LicenceId>(),
            Err(LicenceIdError::ZeroVersion)
        );
        assert!(matches!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.1.001.SS".parse::<LicenceId>(),
            Err(LicenceIdError::Length { part: Part::Check, found: 2, .. })
        ));
        assert_eq!(
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.1.001.*".parse::<LicenceId>(),
            Err(LicenceIdError::Character { part: Part::Check, position: 1, ch: '*' })
        );
        let long = "9".repeat(MAX_NUMBER_LEN + 1);
        assert!(matches!(
            LicenceId::new("11100000000013338W011", "11430000006122244L", &long, 1),
            Err(LicenceIdError::Length { part: Part::Number, found: 41, .. })
        ));
        assert_eq!(
            LicenceId::new("11100000000013338W011", "11430000006122244L", "1", 0),
            Err(LicenceIdError::ZeroVersion)
        );
        assert!(LicenceId::new("11100000000013338W011", "11430000006122244L", "1", 1000).is_err());
        // Every error has a code and a Chinese message.
        let e = LicenceIdError::PartCount { found: 4 };
        assert_eq!(e.code(), "licence-id-format");
        assert!(e.message_zh().contains('4'));
        assert!(e.to_string().contains("found 4"));
    }

    #[test]
    fn check_function_matches_iso_7064_definition() {
        // The check character makes the hybrid-system remainder equal 1.
        for body in ["0", "Z", "ABC123", "11100000000013338W01111430000006122244L20230000403002"] {
            let check = mod37_36_check_char(body).unwrap();
            // Run the body through the system; adding the check character must leave 1.
            let mut p = 36u32;
            let full = format!("{body}{check}");
            let bytes = full.as_bytes();
            for &b in &bytes[..bytes.len() - 1] {
                let mut s = (p + check_value(b).unwrap()) % 36;
                if s == 0 {
                    s = 36;
                }
                p = (s * 2) % 37;
            }
            assert_eq!((p + check_value(*bytes.last().unwrap()).unwrap()) % 36, 1, "body {body}");
        }
        assert_eq!(mod37_36_check_char("abc"), None);
    }

    /// Hybrid systems catch almost, not quite, all adjacent transpositions: measure it on
    /// a fixed pseudo-random sample of 50-character bodies.
    #[test]
    fn adjacent_transpositions_are_almost_always_detected() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % n as u64) as usize
        };
        let (mut tried, mut missed) = (0u32, 0u32);
        for _ in 0..20_000 {
            let mut body: Vec<u8> = (0..50).map(|_| CHECK_ALPHABET[next(36)]).collect();
            let original = mod37_36_check_char(std::str::from_utf8(&body).unwrap()).unwrap();
            let i = next(49);
            if body[i] == body[i + 1] {
                continue;
            }
            body.swap(i, i + 1);
            tried += 1;
            if mod37_36_check_char(std::str::from_utf8(&body).unwrap()).unwrap() == original {
                missed += 1;
            }
        }
        assert!(tried > 19_000);
        assert!(f64::from(missed) / f64::from(tried) < 0.01, "{missed} of {tried} transpositions undetected");
    }

    const USCC_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const ALNUM: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn uscc() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(USCC_CHARS.chars().collect::<Vec<_>>()), USCC_LEN)
            .prop_map(|v| v.into_iter().collect())
    }

    fn parts() -> impl Strategy<Value = (String, String, String, u16)> {
        let number = proptest::collection::vec(proptest::sample::select(ALNUM.chars().collect::<Vec<_>>()), 1..=40)
            .prop_map(|v| v.into_iter().collect::<String>());
        (uscc(), 0u16..1000, uscc(), number, 1u16..=999).prop_map(|(authority, seq, issuer, number, version)| {
            (format!("{authority}{seq:03}"), issuer, number, version)
        })
    }

    proptest! {
        #[test]
        fn generated_ids_round_trip((type_code, issuer, number, version) in parts()) {
            let id = LicenceId::new(&type_code, &issuer, &number, version).unwrap();
            let text = id.to_string();
            let parsed: LicenceId = text.parse().unwrap();
            prop_assert_eq!(&parsed, &id);
            prop_assert_eq!(parsed.type_code(), type_code.as_str());
            prop_assert_eq!(parsed.issuer_code(), issuer.as_str());
            prop_assert_eq!(parsed.number(), number.as_str());
            prop_assert_eq!(parsed.version(), version);
        }

        /// Any single-character substitution in the checked body (type, issuer, number,
        /// version) is detected: the result either breaks a format rule or fails the check.
        #[test]
        fn single_substitutions_are_detected(
            (type_code, issuer, number, version) in parts(),
            pick in any::<prop::sample::Index>(),
            replacement in proptest::sample::select(ALNUM.chars().collect::<Vec<_>>()),
        ) {
            let id = LicenceId::new(&type_code, &issuer, &number, version).unwrap();
            let text = id.to_string();
            // Positions of body characters (everything after the prefix except dots and the check).
            let body_positions: Vec<usize> = text
                .char_indices()
                .skip(PREFIX.len())
                .take_while(|&(i, _)| i < text.len() - 2)
                .filter(|&(_, c)| c != '.')
                .map(|(i, _)| i)
                .collect();
            let at = body_positions[pick.index(body_positions.len())];
            let original = text[at..].chars().next().unwrap();
            prop_assume!(original != replacement);
            let mut changed = text.clone();
            changed.replace_range(at..at + 1, &replacement.to_string());
            prop_assert!(changed.parse::<LicenceId>().is_err(), "{} accepted", changed);
        }

        /// Changing the check character itself is detected too.
        #[test]
        fn wrong_check_characters_are_detected(
            (type_code, issuer, number, version) in parts(),
            replacement in proptest::sample::select(ALNUM.chars().collect::<Vec<_>>()),
        ) {
            let id = LicenceId::new(&type_code, &issuer, &number, version).unwrap();
            prop_assume!(id.check_char() != replacement);
            let mut changed = id.to_string();
            changed.pop();
            changed.push(replacement);
            let is_check_error = matches!(changed.parse::<LicenceId>(), Err(LicenceIdError::Check { .. }));
            prop_assert!(is_check_error);
        }
    }
}
