//! Values that clients send, parsed into types that hold only valid data.
//!
//! Each constructor returns a [`AuthError::Invalid`] naming the field, so a
//! handler can pass client input straight in.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{AuthError, Field};

/// A mailbox address in its one canonical form: an ASCII local part and an
/// ASCII (punycode) domain, both lower-cased. That form decides uniqueness
/// and is the only one mail is sent to.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

/// Maximum length of a whole address in octets (RFC 5321, section 4.5.3.1.3).
pub const MAX_EMAIL_LEN: usize = 254;
/// Maximum length of the local part in octets (RFC 5321, section 4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;

impl EmailAddress {
    /// Parses an address as a client typed it, for the given request field.
    ///
    /// Accepts a dot-atom local part (RFC 5322 `atext` and dots) and a domain
    /// of at least two labels, internationalized or not. Rejects quoted local
    /// parts, comments, display names, several addresses, whitespace, control
    /// characters and a trailing dot.
    pub fn parse(input: &str, field: Field) -> Result<Self, AuthError> {
        let invalid = |reason: &str| AuthError::invalid(field, reason);

        if input.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if input.chars().count() > MAX_EMAIL_LEN {
            return Err(invalid("must be at most 254 characters"));
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid("must not contain whitespace or control characters"));
        }
        let Some((local, domain)) = input.rsplit_once('@') else {
            return Err(invalid("must contain one @"));
        };
        if local.contains('@') {
            return Err(invalid("must contain one @"));
        }

        let local = parse_local_part(local).map_err(invalid)?;
        let domain = parse_domain(domain).map_err(invalid)?;

        let address = format!("{local}@{domain}");
        if address.len() > MAX_EMAIL_LEN {
            return Err(invalid("must be at most 254 characters"));
        }
        Ok(EmailAddress(address))
    }

    /// Wraps an address read back from storage, where only parsed addresses
    /// are written.
    pub fn from_trusted(stored: String) -> Self {
        EmailAddress(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with most of the local part hidden, for log lines.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or(("", &self.0));
        let first = local.chars().next().unwrap_or('*');
        format!("{first}***@{domain}")
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c)
}

fn parse_local_part(local: &str) -> Result<String, &'static str> {
    if local.is_empty() {
        return Err("local part must not be empty");
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err("local part must be at most 64 characters");
    }
    if !local.is_ascii() {
        return Err("local part must be ASCII");
    }
    if local.starts_with('"') || local.contains('(') || local.contains(')') {
        return Err("quoted local parts and comments are not accepted");
    }
    if local.split('.').any(|atom| atom.is_empty()) {
        return Err("local part must not start or end with a dot or hold two dots in a row");
    }
    if !local.chars().all(|c| c == '.' || is_atext(c)) {
        return Err("local part holds a character that is not allowed");
    }
    Ok(local.to_ascii_lowercase())
}

fn parse_domain(domain: &str) -> Result<String, &'static str> {
    if domain.is_empty() {
        return Err("domain must not be empty");
    }
    if domain.starts_with('[') {
        return Err("address literals are not accepted");
    }
    if domain.ends_with('.') || domain.ends_with('\u{3002}') {
        return Err("domain must not end with a dot");
    }
    // UTS 46 processing maps compatibility forms (full-width letters, for
    // example) to their plain form, lower-cases, and encodes to punycode.
    let ascii = idna::domain_to_ascii(domain).map_err(|_| "domain is not a valid domain name")?;
    if ascii.len() > 253 {
        return Err("domain must be at most 253 characters");
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err("domain must have at least two labels");
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err("domain holds a label that is not a valid host name label");
        }
    }
    Ok(ascii)
}

/// A public user name: 2 to 32 ASCII letters, digits, `.`, `_` or `-`.
/// Unique case-insensitively; see [`Alias::key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias(String);

impl Alias {
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        let len = input.chars().count();
        if !(2..=32).contains(&len) {
            return Err(AuthError::invalid(
                Field::Alias,
                "must be 2 to 32 characters long",
            ));
        }
        if !input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(AuthError::invalid(
                Field::Alias,
                "may contain only ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(Alias(input.to_owned()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Alias(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form that decides uniqueness.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Parses free text of 1 to 100 characters after trimming, with no control
/// characters. Shared by [`FullName`] and [`KeyName`].
fn parse_label_text(input: &str, field: Field) -> Result<String, AuthError> {
    let trimmed = input.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        return Err(AuthError::invalid(field, "must not be empty"));
    }
    if len > 100 {
        return Err(AuthError::invalid(field, "must be at most 100 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AuthError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A user's display name: 1 to 100 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        parse_label_text(input, Field::FullName).map(FullName)
    }

    pub fn from_trusted(stored: String) -> Self {
        FullName(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name a user gives a key pair: 1 to 100 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        parse_label_text(input, Field::KeyName).map(KeyName)
    }

    pub fn from_trusted(stored: String) -> Self {
        KeyName(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A six-digit one-time code. Its `Debug` output hides the digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OneTimeCode(String);

impl OneTimeCode {
    /// Number of digits in every code.
    pub const DIGITS: usize = 6;

    /// Parses the string form, where leading zeros count.
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        if input.len() == Self::DIGITS && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(OneTimeCode(input.to_owned()))
        } else {
            Err(AuthError::invalid(Field::Code, "must be 6 decimal digits"))
        }
    }

    /// Parses the JSON number form: its digits, left-padded with zeros to six.
    pub fn from_number(number: u64) -> Result<Self, AuthError> {
        if number > 999_999 {
            return Err(AuthError::invalid(Field::Code, "must be 6 decimal digits"));
        }
        Ok(OneTimeCode(format!("{number:06}")))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn email(input: &str) -> Result<String, AuthError> {
        EmailAddress::parse(input, Field::Email).map(|e| e.as_str().to_owned())
    }

    #[test]
    fn email_is_lower_cased() {
        assert_eq!(
            email("John.Doe@Example.COM").unwrap(),
            "john.doe@example.com"
        );
    }

    #[test]
    fn email_keeps_plus_tags() {
        assert_eq!(email("a+tag@x.io").unwrap(), "a+tag@x.io");
        assert_ne!(email("a+tag@x.io").unwrap(), email("a@x.io").unwrap());
    }

    #[test]
    fn email_domain_is_stored_as_punycode() {
        assert_eq!(email("user@bücher.de").unwrap(), "user@xn--bcher-kva.de");
        assert_eq!(email("user@BÜCHER.de").unwrap(), "user@xn--bcher-kva.de");
    }

    #[test]
    fn email_full_width_domain_maps_to_plain_form() {
        assert_eq!(
            email("user@ｅｘａｍｐｌｅ.com").unwrap(),
            "user@example.com"
        );
    }

    #[test]
    fn email_rejects_hostile_forms() {
        let cases = [
            "",
            "plain",
            "@example.com",
            "user@",
            "a@b@example.com",
            "\"quoted\"@example.com",
            "user(comment)@example.com",
            "user@example.com.",
            "user@localhost",
            "a@example.com, b@example.com",
            "a@example.com,b@example.com",
            "User <a@example.com>",
            "user @example.com",
            "user@exa mple.com",
            "user\r\n@example.com",
            "user@example.com\r\nBcc: x@y.com",
            "us\0er@example.com",
            "ｕser@example.com",
            "usér@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@[127.0.0.1]",
            "user@-example.com",
            "user@exa_mple.com",
            "a@b;c@example.com",
        ];
        for case in cases {
            assert!(email(case).is_err(), "accepted {case:?}");
        }
    }

    #[test]
    fn email_rejects_long_local_part() {
        let local = "a".repeat(65);
        assert!(email(&format!("{local}@example.com")).is_err());
        let local = "a".repeat(64);
        assert!(email(&format!("{local}@example.com")).is_ok());
    }

    #[test]
    fn email_rejects_over_254_characters() {
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        let address = format!("{}@{domain}", "a".repeat(64));
        assert!(address.len() > 254);
        assert!(email(&address).is_err());
    }

    #[test]
    fn email_masked_hides_local_part() {
        let address = EmailAddress::parse("secret.name@example.com", Field::Email).unwrap();
        assert_eq!(address.masked(), "s***@example.com");
        assert!(!format!("{address:?}").contains("secret"));
    }

    #[test]
    fn alias_accepts_allowed_shape() {
        for ok in ["jo", "johny", "a.b_c-d", &"x".repeat(32)] {
            assert!(Alias::parse(ok).is_ok(), "rejected {ok:?}");
        }
    }

    #[test]
    fn alias_rejects_bad_shape() {
        for bad in ["", "j", &"x".repeat(33), "jo hn", "jöhn", "a@b", "a\nb"] {
            assert!(Alias::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn alias_key_is_case_insensitive() {
        assert_eq!(Alias::parse("JoHny").unwrap().key(), "johny");
    }

    #[test]
    fn full_name_is_trimmed() {
        assert_eq!(FullName::parse("  Jane Doe ").unwrap().as_str(), "Jane Doe");
    }

    #[test]
    fn full_name_rejects_empty_long_and_control() {
        assert!(FullName::parse("   ").is_err());
        assert!(FullName::parse(&"x".repeat(101)).is_err());
        assert!(FullName::parse(&"é".repeat(100)).is_ok());
        assert!(FullName::parse("Jane\u{0}Doe").is_err());
        assert!(FullName::parse("Jane\nDoe").is_err());
    }

    #[test]
    fn code_parses_six_digits_only() {
        assert_eq!(OneTimeCode::parse("012345").unwrap().expose(), "012345");
        for bad in [
            "",
            "12345",
            "1234567",
            "abcdef",
            "12 345",
            "+12345",
            "١٢٣٤٥٦",
        ] {
            assert!(OneTimeCode::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn code_number_is_left_padded() {
        assert_eq!(OneTimeCode::from_number(12345).unwrap().expose(), "012345");
        assert_eq!(OneTimeCode::from_number(0).unwrap().expose(), "000000");
        assert!(OneTimeCode::from_number(1_000_000).is_err());
    }

    #[test]
    fn code_debug_hides_digits() {
        let code = OneTimeCode::parse("654321").unwrap();
        assert!(!format!("{code:?}").contains("654321"));
    }

    proptest! {
        #[test]
        fn email_parse_never_panics(input in "\\PC{0,80}") {
            let _ = EmailAddress::parse(&input, Field::Email);
        }

        #[test]
        fn email_parse_is_idempotent(local in "[a-zA-Z0-9]{1,20}", domain in "[a-zA-Z]{1,20}\\.[a-z]{2,6}") {
            let first = EmailAddress::parse(&format!("{local}@{domain}"), Field::Email).unwrap();
            let second = EmailAddress::parse(first.as_str(), Field::Email).unwrap();
            prop_assert_eq!(first, second);
        }

        #[test]
        fn accepted_email_has_no_separator(input in "\\PC{0,60}") {
            if let Ok(address) = EmailAddress::parse(&input, Field::Email) {
                let text = address.as_str();
                prop_assert!(!text.contains([',', ';', '<', '>', ' ', '"', '\r', '\n']));
                prop_assert_eq!(text.matches('@').count(), 1);
            }
        }

        #[test]
        fn code_from_number_round_trips(n in 0u64..1_000_000) {
            let code = OneTimeCode::from_number(n).unwrap();
            prop_assert_eq!(code.expose().parse::<u64>().unwrap(), n);
            prop_assert_eq!(code.expose().len(), 6);
        }
    }
}
