//! Validated names used as keys: organisation codes, dataset codes, usernames.
//! They also appear in generated SQL identifiers, so their alphabets are narrow.

use crate::error::{Code, Error};
use serde::{Deserialize, Serialize};
use std::fmt;

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

macro_rules! code_newtype {
    ($name:ident, $code:expr, $what_en:literal, $what_zh:literal, $max:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// 1–N characters of ASCII letters, digits, `-` and `_`, starting with a
            /// letter or digit.
            pub fn parse(input: &str) -> Result<Self, Error> {
                let ok = !input.is_empty()
                    && input.len() <= $max
                    && input.chars().all(is_code_char)
                    && input.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
                if ok {
                    Ok($name(input.to_string()))
                } else {
                    Err(Error::new(
                        $code,
                        format!(
                            concat!(
                                $what_en,
                                " '{}' is invalid: use 1-",
                                $max,
                                " ASCII letters, digits, '-' or '_', starting with a letter or digit"
                            ),
                            input
                        ),
                        format!(
                            concat!(
                                $what_zh,
                                "“{}”不合法：应为1-",
                                $max,
                                "位英文字母、数字、“-”或“_”，以字母或数字开头"
                            ),
                            input
                        ),
                    ))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                $name::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

code_newtype!(OrgCode, Code::InvalidOrg, "organisation code", "机构代码", 64);
// 50 characters: the typed table `ds_<code>_v<N>` must fit PostgreSQL's 63-byte names.
code_newtype!(DatasetCode, Code::InvalidDataset, "dataset code", "数据集编码", 50);

impl DatasetCode {
    /// The SQL-safe stem used for the dataset's typed tables: lower-case, `-` → `_`.
    /// Two codes with the same stem cannot coexist (the store enforces it).
    pub fn table_stem(&self) -> String {
        self.0.to_ascii_lowercase().replace('-', "_")
    }
}

/// A username: 2–64 characters of ASCII letters, digits, `.`, `-`, `_`, `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let ok = (2..=64).contains(&input.len())
            && input.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
        if ok {
            Ok(Username(input.to_ascii_lowercase()))
        } else {
            Err(Error::invalid(
                Code::InvalidUser,
                "username",
                format!("username '{input}' is invalid: use 2-64 ASCII letters, digits, '.', '-', '_' or '@'"),
                format!("用户名“{input}”不合法：应为2-64位英文字母、数字或“.”“-”“_”“@”"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Username::parse(&s)
    }
}
impl From<Username> for String {
    fn from(v: Username) -> String {
        v.0
    }
}
impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes() {
        assert!(OrgCode::parse("cz-gaj").is_ok());
        assert!(OrgCode::parse("320400").is_ok());
        assert!(OrgCode::parse("").is_err());
        assert!(OrgCode::parse("-x").is_err());
        assert!(OrgCode::parse("a b").is_err());
        assert!(OrgCode::parse("公安局").is_err());
        assert!(DatasetCode::parse("x;drop table").is_err());
        assert_eq!(DatasetCode::parse("GA-HJRK").unwrap().table_stem(), "ga_hjrk");
    }

    #[test]
    fn usernames_are_lowercased() {
        assert_eq!(Username::parse("Admin").unwrap().as_str(), "admin");
        assert!(Username::parse("a").is_err());
        assert!(Username::parse("a'--").is_err());
    }

    proptest! {
        #[test]
        fn table_stem_is_sql_safe(s in "[A-Za-z0-9][A-Za-z0-9_-]{0,49}") {
            let c = DatasetCode::parse(&s).unwrap();
            prop_assert!(c.table_stem().chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'));
        }
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = OrgCode::parse(&s);
            let _ = Username::parse(&s);
        }
    }
}
