//! The `api-key` and `api-secret` headers: any two byte strings, split at
//! the first NUL, go through the same steps as a request's headers.

#![no_main]

use actix_web::http::header::HeaderValue;
use libfuzzer_sys::fuzz_target;
use twauth_api::extract::parse_key_pair;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (key, secret) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let (Ok(key), Ok(secret)) = (
        HeaderValue::from_bytes(key),
        HeaderValue::from_bytes(secret),
    ) else {
        return;
    };
    let (Ok(key), Ok(secret)) = (key.to_str(), secret.to_str()) else {
        return;
    };
    if let Some((parsed_key, parsed_secret)) = parse_key_pair(key, secret) {
        for value in [parsed_key.as_str(), parsed_secret.expose()] {
            assert!(
                !value.is_empty() && value.len() <= 256,
                "length {}",
                value.len()
            );
            assert!(value.bytes().all(|b| b.is_ascii_graphic()), "{value:?}");
        }
        assert_eq!(parsed_key, key.trim());
        assert_eq!(parsed_secret.expose(), secret.trim());
    }
});
