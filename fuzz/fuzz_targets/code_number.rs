//! The `code` field: `OneTimeCode::from_number` on any `u64`, and the
//! `CodeInput` reader on any JSON value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twauth_api::extract::CodeInput;
use twauth_domain::values::OneTimeCode;

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..8) {
        let number = u64::from_le_bytes(bytes.try_into().unwrap());
        match OneTimeCode::from_number(number) {
            Ok(code) => {
                assert!(number <= 999_999);
                assert_eq!(code.expose(), format!("{number:06}"));
            }
            Err(_) => assert!(number > 999_999),
        }
    }

    // The JSON forms: a string or a number, anything else is rejected.
    if let Ok(input) = serde_json::from_slice::<CodeInput>(data)
        && let Ok(code) = input.parse()
    {
        let text = code.expose();
        assert!(
            text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()),
            "{text:?}"
        );
    }
});
