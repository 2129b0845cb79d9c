//! `KeyName::parse` on any text: an accepted key name is trimmed, 1 to 100
//! characters long and free of control characters.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twauth_domain::values::KeyName;

fuzz_target!(|input: &str| {
    let Ok(name) = KeyName::parse(input) else {
        return;
    };
    let text = name.as_str();
    assert!(
        (1..=100).contains(&text.chars().count()),
        "length: {text:?}"
    );
    assert_eq!(text, text.trim(), "trimmed: {text:?}");
    assert!(!text.chars().any(char::is_control), "control: {text:?}");
});
