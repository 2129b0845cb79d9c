//! `Alias::parse` on any text: an accepted alias has the allowed shape.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twauth_domain::values::Alias;

fuzz_target!(|input: &str| {
    let Ok(alias) = Alias::parse(input) else {
        return;
    };
    let text = alias.as_str();
    assert!((2..=32).contains(&text.len()), "length: {text:?}");
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
        "characters: {text:?}"
    );
    assert_eq!(alias.key(), text.to_ascii_lowercase());
});
