//! National-standard identifiers, parsed at the edge into newtypes
//! (see `shared/design/STANDARDS.md`).
//!
//! * [`IdNumber`] — GB 11643-1999 citizen identity number, ISO 7064 MOD 11-2 check.
//! * [`Uscc`] — GB 32100-2015 unified social credit code, both check characters.
//! * [`AdminCode`] — GB/T 2260 administrative division code (shape only).
//! * [`Mobile`] — mainland mobile number (11 digits, 1[3-9]…).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused. `code()` is the stable error code reported per cell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandardError {
    #[error("must be {expected} characters long, found {found}")]
    Length { expected: usize, found: usize },
    #[error("character '{ch}' at position {pos} is not allowed")]
    Character { pos: usize, ch: char },
    #[error("'{0}' is not a valid province code (11-82)")]
    Province(String),
    #[error("birth date {0} is not a real calendar date")]
    BirthDate(String),
    #[error("birth date {0} is in the future")]
    FutureBirthDate(String),
    #[error("check character should be '{expected}', found '{found}'")]
    IdNumberCheck { expected: char, found: char },
    #[error("organisation-code check character (position 17) should be '{expected}', found '{found}'")]
    UsccOrgCheck { expected: char, found: char },
    #[error("check character (position 18) should be '{expected}', found '{found}'")]
    UsccCheck { expected: char, found: char },
    #[error("'{0}' is not a GB/T 2260 administrative division code")]
    AdminCode(String),
    #[error("'{0}' is not a mainland mobile number")]
    Mobile(String),
}

impl StandardError {
    /// Stable per-cell error code (used in delivery reports).
    pub fn code(&self) -> &'static str {
        match self {
            StandardError::IdNumberCheck { .. } => "id-number-check",
            StandardError::BirthDate(_) | StandardError::FutureBirthDate(_) => "id-number-date",
            StandardError::UsccOrgCheck { .. } | StandardError::UsccCheck { .. } => "uscc-check",
            StandardError::AdminCode(_) => "admin-code",
            StandardError::Mobile(_) => "mobile",
            StandardError::Length { .. } | StandardError::Character { .. } | StandardError::Province(_) => {
                "format-error"
            }
        }
    }

    /// Chinese message for clerks.
    pub fn message_zh(&self) -> String {
        match self {
            StandardError::Length { expected, found } => {
                format!("长度应为{expected}位，实际为{found}位")
            }
            StandardError::Character { pos, ch } => format!("第{pos}位字符“{ch}”不合法"),
            StandardError::Province(p) => format!("“{p}”不是有效的省级代码（11–82）"),
            StandardError::BirthDate(d) => format!("出生日期{d}不是真实日期"),
            StandardError::FutureBirthDate(d) => format!("出生日期{d}晚于今天"),
            StandardError::IdNumberCheck { expected, found } => {
                format!("校验码应为“{expected}”，实际为“{found}”")
            }
            StandardError::UsccOrgCheck { expected, found } => {
                format!("组织机构代码校验码（第17位）应为“{expected}”，实际为“{found}”")
            }
            StandardError::UsccCheck { expected, found } => {
                format!("校验码（第18位）应为“{expected}”，实际为“{found}”")
            }
            StandardError::AdminCode(c) => format!("“{c}”不是GB/T 2260行政区划代码"),
            StandardError::Mobile(m) => format!("“{m}”不是有效的手机号码"),
        }
    }
}

// ---------------------------------------------------------------------------
// GB 11643-1999
// ---------------------------------------------------------------------------

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The ISO 7064 MOD 11-2 check character over the first 17 digits.
/// `digits` must be 17 ASCII digits (callers check).
pub fn id_number_check_char(digits: &str) -> char {
    let s: u32 = digits.bytes().zip(ID_WEIGHTS).map(|(b, w)| u32::from(b.wrapping_sub(b'0')) * w).sum();
    char::from(ID_CHECK[(s % 11) as usize])
}

/// A valid 18-character citizen identity number, upper-case `X`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

/// The outcome of parsing an identity number: the value plus warnings that did not
/// make it invalid (a lower-case `x` that was normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub value: T,
    pub warnings: Vec<String>,
}

impl IdNumber {
    /// Parse and check an identity number. `today` bounds the birth date.
    pub fn parse_on(input: &str, today: NaiveDate) -> Result<Parsed<IdNumber>, StandardError> {
        let chars: Vec<char> = input.chars().collect();
        if chars.len() != 18 {
            return Err(StandardError::Length { expected: 18, found: chars.len() });
        }
        for (i, c) in chars.iter().enumerate().take(17) {
            if !c.is_ascii_digit() {
                return Err(StandardError::Character { pos: i + 1, ch: *c });
            }
        }
        let mut warnings = Vec::new();
        let last = match chars[17] {
            c @ ('0'..='9' | 'X') => c,
            'x' => {
                warnings.push("lower-case 'x' normalised to 'X' / 小写x已规范为大写X".to_string());
                'X'
            }
            c => return Err(StandardError::Character { pos: 18, ch: c }),
        };
        let body: String = chars[..17].iter().collect();
        let province: u32 = body[0..2].parse().unwrap_or(0);
        if !(11..=82).contains(&province) {
            return Err(StandardError::Province(body[0..2].to_string()));
        }
        let date_str = &body[6..14];
        // Digits only (checked above), so plain arithmetic; no strftime parsing per row.
        let d =
            |r: std::ops::Range<usize>| date_str.as_bytes()[r].iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
        let date = NaiveDate::from_ymd_opt(d(0..4) as i32, d(4..6), d(6..8))
            .ok_or_else(|| StandardError::BirthDate(date_str.to_string()))?;
        if date > today {
            return Err(StandardError::FutureBirthDate(date_str.to_string()));
        }
        let expected = id_number_check_char(&body);
        if expected != last {
            return Err(StandardError::IdNumberCheck { expected, found: chars[17] });
        }
        Ok(Parsed { value: IdNumber(format!("{body}{last}")), warnings })
    }

    /// True exactly when [`IdNumber::parse_on`] accepts `input` as it is: no
    /// warning and nothing normalised, so the value is `input` itself. The hot path
    /// of deliveries: no allocation (anything else goes through `parse_on`).
    pub fn is_valid_as_is(input: &str, today: NaiveDate) -> bool {
        let b = input.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return false;
        }
        let d = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
        if !(11..=82).contains(&d(0..2)) {
            return false;
        }
        match NaiveDate::from_ymd_opt(d(6..10) as i32, d(10..12), d(12..14)) {
            Some(date) if date <= today => {}
            _ => return false,
        }
        let s: u32 = b[..17].iter().zip(ID_WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
        ID_CHECK[(s % 11) as usize] == b[17]
    }

    /// Parse with today's date as the bound (UTC+8 date would differ by at most a day).
    pub fn parse(input: &str) -> Result<Parsed<IdNumber>, StandardError> {
        Self::parse_on(input, chrono::Utc::now().date_naive())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The GB/T 2260 code of the issuing county.
    pub fn county_code(&self) -> &str {
        &self.0[0..6]
    }

    pub fn birth_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").ok()
    }

    /// Odd sequence digit = male.
    pub fn is_male(&self) -> bool {
        self.0.as_bytes()[16] % 2 == 1
    }

    /// Build a valid number from its parts (used by the demo generator and tests).
    pub fn compose(county: &str, birth: NaiveDate, sequence: u16) -> Option<IdNumber> {
        if county.len() != 6 || !county.bytes().all(|b| b.is_ascii_digit()) || sequence > 999 {
            return None;
        }
        let body = format!("{county}{}{sequence:03}", birth.format("%Y%m%d"));
        let check = id_number_check_char(&body);
        Some(IdNumber(format!("{body}{check}")))
    }
}

impl TryFrom<String> for IdNumber {
    type Error = StandardError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        IdNumber::parse(&s).map(|p| p.value)
    }
}
impl From<IdNumber> for String {
    fn from(v: IdNumber) -> String {
        v.0
    }
}
impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------
// GB 32100-2015
// ---------------------------------------------------------------------------

/// The 31-character USCC alphabet (no I, O, S, V, Z).
pub const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// GB 11714 organisation-code check over 8 characters (digits and letters A=10…Z=35).
pub fn org_code_check_char(body: &str) -> Option<char> {
    let mut s = 0u32;
    for (b, w) in body.bytes().zip(ORG_WEIGHTS) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return None,
        };
        s += v * w;
    }
    Some(match 11 - (s % 11) {
        10 => 'X',
        11 => '0',
        c => char::from(b'0' + c as u8),
    })
}

/// The final check character over the first 17 characters.
pub fn uscc_check_char(body: &str) -> Option<char> {
    let mut s = 0u32;
    for (b, w) in body.bytes().zip(USCC_WEIGHTS) {
        s += uscc_value(b)? * w;
    }
    Some(char::from(USCC_ALPHABET[((31 - s % 31) % 31) as usize]))
}

/// A unified social credit code with a valid alphabet and length. Check-character
/// failures are reported separately by [`Uscc::parse`] so that callers can choose to
/// treat them as warnings (early pilot codes fail the check yet are legal).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc(String);

/// Result of a lenient USCC parse: the code and, if any, its check failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsccParse {
    pub value: Uscc,
    pub check_failure: Option<StandardError>,
}

impl Uscc {
    /// Length and alphabet are hard errors; a wrong check character is returned
    /// alongside the value.
    pub fn parse_lenient(input: &str) -> Result<UsccParse, StandardError> {
        let chars: Vec<char> = input.chars().collect();
        if chars.len() != 18 {
            return Err(StandardError::Length { expected: 18, found: chars.len() });
        }
        for (i, c) in chars.iter().enumerate() {
            if !c.is_ascii() || uscc_value(*c as u8).is_none() {
                return Err(StandardError::Character { pos: i + 1, ch: *c });
            }
        }
        let admin = &input[2..8];
        let mut check_failure = None;
        if !admin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StandardError::AdminCode(admin.to_string()));
        }
        if let Some(expected) = org_code_check_char(&input[8..16]) {
            let found = chars[16];
            if expected != found {
                check_failure = Some(StandardError::UsccOrgCheck { expected, found });
            }
        }
        if check_failure.is_none() {
            if let Some(expected) = uscc_check_char(&input[..17]) {
                if expected != chars[17] {
                    check_failure = Some(StandardError::UsccCheck { expected, found: chars[17] });
                }
            }
        }
        Ok(UsccParse { value: Uscc(input.to_string()), check_failure })
    }

    /// True exactly when [`Uscc::parse_lenient`] accepts `input` with no check
    /// failure (its value is then `input` itself). No allocation.
    pub fn is_valid_checked(input: &str) -> bool {
        let b = input.as_bytes();
        if b.len() != 18 || !b.iter().all(|&c| uscc_value(c).is_some()) || !b[2..8].iter().all(u8::is_ascii_digit) {
            return false;
        }
        // All bytes are ASCII here, so these slices are on character boundaries.
        let org_ok = match org_code_check_char(&input[8..16]) {
            Some(expected) => expected == char::from(b[16]),
            None => true,
        };
        let check_ok = match uscc_check_char(&input[..17]) {
            Some(expected) => expected == char::from(b[17]),
            None => true,
        };
        org_ok && check_ok
    }

    /// Strict parse: check failures are errors.
    pub fn parse(input: &str) -> Result<Uscc, StandardError> {
        let p = Self::parse_lenient(input)?;
        match p.check_failure {
            Some(e) => Err(e),
            None => Ok(p.value),
        }
    }

    /// Build a valid code from registration department, type, county and a 8-char
    /// organisation-code body (digits / capital letters).
    pub fn compose(dept: char, kind: char, county: &str, org_body: &str) -> Option<Uscc> {
        if county.len() != 6 || org_body.len() != 8 {
            return None;
        }
        let org_check = org_code_check_char(org_body)?;
        let body = format!("{dept}{kind}{county}{org_body}{org_check}");
        let check = uscc_check_char(&body)?;
        Uscc::parse(&format!("{body}{check}")).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The GB/T 2260 code of the registering authority.
    pub fn admin_code(&self) -> &str {
        &self.0[2..8]
    }
}

impl TryFrom<String> for Uscc {
    type Error = StandardError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Uscc::parse(&s)
    }
}
impl From<Uscc> for String {
    fn from(v: Uscc) -> String {
        v.0
    }
}
impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------
// GB/T 2260
// ---------------------------------------------------------------------------

/// A six-digit administrative division code of valid shape: province 11–82, and a
/// province code ends in 0000, a prefecture code in 00.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AdminCode(String);

/// Level of an administrative division.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminLevel {
    Province,
    Prefecture,
    County,
}

impl AdminCode {
    pub fn parse(input: &str) -> Result<AdminCode, StandardError> {
        if !Self::is_valid(input) {
            return Err(StandardError::AdminCode(input.to_string()));
        }
        Ok(AdminCode(input.to_string()))
    }

    /// Whether [`AdminCode::parse`] accepts `input` (its value is then `input`). No
    /// allocation.
    pub fn is_valid(input: &str) -> bool {
        let b = input.as_bytes();
        if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let province = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
        // A county code under a zero prefecture ("3200xx") is malformed.
        (11..=82).contains(&province) && !(&b[2..4] == b"00" && &b[4..6] != b"00")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn level(&self) -> AdminLevel {
        if &self.0[2..] == "0000" {
            AdminLevel::Province
        } else if &self.0[4..] == "00" {
            AdminLevel::Prefecture
        } else {
            AdminLevel::County
        }
    }

    /// Whether `self` lies inside `other` (or is it).
    pub fn is_within(&self, other: &AdminCode) -> bool {
        match other.level() {
            AdminLevel::Province => self.0[..2] == other.0[..2],
            AdminLevel::Prefecture => self.0[..4] == other.0[..4],
            AdminLevel::County => self.0 == other.0,
        }
    }
}

impl TryFrom<String> for AdminCode {
    type Error = StandardError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AdminCode::parse(&s)
    }
}
impl From<AdminCode> for String {
    fn from(v: AdminCode) -> String {
        v.0
    }
}
impl fmt::Display for AdminCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------
// Mobile numbers
// ---------------------------------------------------------------------------

/// Mainland China mobile number: 11 digits starting 13–19. A `+86` / `86` prefix and
/// spaces or dashes are accepted on input and removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(String);

impl Mobile {
    pub fn parse(input: &str) -> Result<Mobile, StandardError> {
        let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let digits = digits
            .strip_prefix("+86")
            .or_else(|| if digits.len() == 13 { digits.strip_prefix("86") } else { None })
            .unwrap_or(&digits);
        let b = digits.as_bytes();
        if b.len() != 11 || !b.iter().all(u8::is_ascii_digit) || b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(StandardError::Mobile(input.to_string()));
        }
        Ok(Mobile(digits.to_string()))
    }
    /// True when `input` is already a canonical mobile number (11 digits, 1[3-9]…):
    /// [`Mobile::parse`] then accepts it and its value is `input`. No allocation.
    pub fn is_canonical(input: &str) -> bool {
        let b = input.as_bytes();
        b.len() == 11 && b.iter().all(u8::is_ascii_digit) && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Mobile {
    type Error = StandardError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Mobile::parse(&s)
    }
}
impl From<Mobile> for String {
    fn from(v: Mobile) -> String {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    #[test]
    fn id_number_known_valid() {
        for v in ["11010519491231002X", "440524188001010014", "320402199003071235"] {
            let p = IdNumber::parse_on(v, today()).unwrap();
            assert_eq!(p.value.as_str(), v);
            assert!(p.warnings.is_empty());
        }
        // Abolished county codes stay valid inside issued numbers.
        let n = IdNumber::compose("320405", NaiveDate::from_ymd_opt(1980, 5, 1).unwrap(), 12).unwrap();
        assert!(IdNumber::parse_on(n.as_str(), today()).is_ok());
    }

    #[test]
    fn id_number_known_invalid() {
        assert_eq!(
            IdNumber::parse_on("320402199003071230", today()),
            Err(StandardError::IdNumberCheck { expected: '5', found: '0' })
        );
        assert_eq!(IdNumber::parse_on("320404200002300014", today()), Err(StandardError::BirthDate("20000230".into())));
        assert!(matches!(IdNumber::parse_on("32040219900307123", today()), Err(StandardError::Length { .. })));
        assert!(matches!(
            IdNumber::parse_on("3204021990030712A5", today()),
            Err(StandardError::Character { pos: 17, .. })
        ));
        assert!(matches!(IdNumber::parse_on("990402199003071235", today()), Err(StandardError::Province(_))));
        let future = IdNumber::compose("320402", NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(), 1).unwrap();
        assert!(matches!(IdNumber::parse_on(future.as_str(), today()), Err(StandardError::FutureBirthDate(_))));
    }

    #[test]
    fn id_number_lower_x_is_normalised_with_warning() {
        let p = IdNumber::parse_on("11010519491231002x", today()).unwrap();
        assert_eq!(p.value.as_str(), "11010519491231002X");
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn id_number_attributes() {
        let n = IdNumber::parse_on("320402199003071235", today()).unwrap().value;
        assert_eq!(n.county_code(), "320402");
        assert_eq!(n.birth_date(), NaiveDate::from_ymd_opt(1990, 3, 7));
        assert!(n.is_male());
    }

    #[test]
    fn uscc_known_answers() {
        assert!(Uscc::parse("91350100M000100Y43").is_ok());
        assert!(Uscc::parse("91320402123456788Q").is_ok());
        let bad = Uscc::parse_lenient("91320402123456780X").unwrap();
        assert!(bad.check_failure.is_some());
        assert!(Uscc::parse("91320402123456780X").is_err());
        // Alphabet errors (I, O, S, V, Z) and length are hard errors.
        assert!(matches!(Uscc::parse_lenient("91320402I23456788Q"), Err(StandardError::Character { pos: 9, .. })));
        assert!(matches!(Uscc::parse_lenient("9132040212345678"), Err(StandardError::Length { .. })));
    }

    #[test]
    fn admin_codes() {
        for ok in ["320400", "320402", "320482", "110000", "820000"] {
            assert!(AdminCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["32040", "3204001", "990000", "100000", "320012", "32040a"] {
            assert!(AdminCode::parse(bad).is_err(), "{bad}");
        }
        let city = AdminCode::parse("320400").unwrap();
        let district = AdminCode::parse("320411").unwrap();
        assert_eq!(city.level(), AdminLevel::Prefecture);
        assert_eq!(district.level(), AdminLevel::County);
        assert!(district.is_within(&city));
        assert!(!city.is_within(&district));
    }

    #[test]
    fn mobiles() {
        assert_eq!(Mobile::parse("13812345678").unwrap().as_str(), "13812345678");
        assert_eq!(Mobile::parse("+86 138-1234-5678").unwrap().as_str(), "13812345678");
        assert_eq!(Mobile::parse("8613812345678").unwrap().as_str(), "13812345678");
        for bad in ["12812345678", "1381234567", "138123456789", "abc", ""] {
            assert!(Mobile::parse(bad).is_err(), "{bad}");
        }
    }

    fn arb_date() -> impl Strategy<Value = NaiveDate> {
        (1900i32..2026, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    proptest! {
        #[test]
        fn composed_id_numbers_parse(county in 110000u32..829999, birth in arb_date(), seq in 0u16..1000) {
            let county = format!("{county:06}");
            let n = IdNumber::compose(&county, birth, seq).unwrap();
            let p = IdNumber::parse_on(n.as_str(), today()).unwrap();
            prop_assert_eq!(p.value, n);
        }

        #[test]
        fn any_single_digit_change_breaks_id_check(birth in arb_date(), seq in 0u16..1000, pos in 14usize..17, delta in 1u8..10) {
            // Changing one sequence digit must change the expected check character:
            // MOD 11-2 detects every single-digit substitution.
            let n = IdNumber::compose("320402", birth, seq).unwrap();
            let mut bytes = n.as_str().as_bytes().to_vec();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let s = String::from_utf8(bytes).unwrap();
            prop_assert!(IdNumber::parse_on(&s, today()).is_err());
        }

        #[test]
        fn id_parse_never_panics(s in "\\PC{0,24}") {
            let _ = IdNumber::parse_on(&s, today());
        }

        #[test]
        fn composed_usccs_parse(org in "[0-9A-HJ-NP-RT-UW-Y]{8}", county in 110000u32..829999) {
            let county = format!("{county:06}");
            let u = Uscc::compose('9', '1', &county, &org).unwrap();
            prop_assert!(Uscc::parse(u.as_str()).is_ok());
        }

        #[test]
        fn uscc_single_substitution_detected(org in "[0-9A-HJ-NP-RT-UW-Y]{8}", pos in 0usize..18, delta in 1usize..31) {
            let u = Uscc::compose('9', '1', "320402", &org).unwrap();
            let mut bytes = u.as_str().as_bytes().to_vec();
            let cur = USCC_ALPHABET.iter().position(|&a| a == bytes[pos]).unwrap();
            bytes[pos] = USCC_ALPHABET[(cur + delta) % 31];
            let s = String::from_utf8(bytes).unwrap();
            let lenient = Uscc::parse_lenient(&s);
            // Either a hard error (e.g. a letter in the county part) or a check failure.
            prop_assert!(lenient.map(|p| p.check_failure.is_some()).unwrap_or(true));
        }

        #[test]
        fn uscc_parse_never_panics(s in "\\PC{0,24}") {
            let _ = Uscc::parse_lenient(&s);
        }

        #[test]
        fn mobile_parse_never_panics(s in "\\PC{0,20}") {
            let _ = Mobile::parse(&s);
        }

        #[test]
        fn id_fast_check_agrees_with_parse(s in "[1-9][0-9]{16}[0-9Xx]|[0-9X]{16,19}|\\PC{0,20}", birth in arb_date(), seq in 0u16..1000) {
            let composed = IdNumber::compose("320402", birth, seq).unwrap();
            for input in [s.as_str(), composed.as_str()] {
                let slow = IdNumber::parse_on(input, today()).ok().filter(|p| p.warnings.is_empty() && p.value.as_str() == input);
                prop_assert_eq!(IdNumber::is_valid_as_is(input, today()), slow.is_some(), "{}", input);
            }
        }

        #[test]
        fn uscc_fast_check_agrees_with_parse(org in "[0-9A-HJ-NP-RT-UW-Y]{8}", county in 110000u32..829999, s in "[0-9A-Z]{18}|\\PC{0,20}", pos in 0usize..18, delta in 0usize..31) {
            let u = Uscc::compose('9', '1', &format!("{county:06}"), &org).unwrap();
            let mut bytes = u.as_str().as_bytes().to_vec();
            let cur = USCC_ALPHABET.iter().position(|&a| a == bytes[pos]).unwrap();
            bytes[pos] = USCC_ALPHABET[(cur + delta) % 31];
            let changed = String::from_utf8(bytes).unwrap();
            for input in [u.as_str(), changed.as_str(), s.as_str()] {
                let slow = Uscc::parse_lenient(input).ok().filter(|p| p.check_failure.is_none() && p.value.as_str() == input);
                prop_assert_eq!(Uscc::is_valid_checked(input), slow.is_some(), "{}", input);
            }
        }

        #[test]
        fn admin_and_mobile_fast_checks_agree(a in "[0-9]{6}|[0-9a]{5,7}|\\PC{0,8}", m in "1[0-9]{10}|[0-9 +-]{10,14}|\\PC{0,12}") {
            prop_assert_eq!(AdminCode::is_valid(&a), AdminCode::parse(&a).is_ok());
            if Mobile::is_canonical(&m) {
                prop_assert_eq!(Mobile::parse(&m).map(|v| v.0), Ok(m.clone()));
            }
        }
    }
}
