//! `EmailAddress::parse` on any text: it must not panic, and an accepted
//! address must be canonical, bounded and a single mailbox.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twauth_domain::Field;
use twauth_domain::values::{EmailAddress, MAX_EMAIL_LEN};

fuzz_target!(|input: &str| {
    let Ok(address) = EmailAddress::parse(input, Field::Email) else {
        return;
    };
    let text = address.as_str();
    assert!(text.is_ascii(), "stored form is ASCII: {text:?}");
    assert!(
        text.len() <= MAX_EMAIL_LEN,
        "stored form is bounded: {text:?}"
    );
    assert_eq!(text.matches('@').count(), 1, "one @: {text:?}");
    assert!(
        !text.contains([',', ';', '<', '>', ' ', '"', '\r', '\n', '\0']),
        "no separator: {text:?}"
    );
    assert_eq!(text, text.to_ascii_lowercase(), "lower-cased: {text:?}");
    let again = EmailAddress::parse(text, Field::Email).expect("the stored form parses again");
    assert_eq!(again, address, "parsing is idempotent");
    let (local, domain) = text.split_once('@').unwrap();
    let first = local.chars().next().unwrap();
    assert_eq!(
        address.masked(),
        format!("{first}***@{domain}"),
        "masked form"
    );
});
