//! `OneTimeCode::parse` on any text: only six ASCII digits are accepted,
//! and they are kept as sent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twauth_domain::values::OneTimeCode;

fuzz_target!(|input: &str| {
    let accepted = OneTimeCode::parse(input);
    let expected = input.len() == 6 && input.bytes().all(|b| b.is_ascii_digit());
    assert_eq!(accepted.is_ok(), expected, "{input:?}");
    if let Ok(code) = accepted {
        assert_eq!(code.expose(), input);
        assert!(
            !format!("{code:?}").contains(input),
            "Debug hides the digits"
        );
    }
});
