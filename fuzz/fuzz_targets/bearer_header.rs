//! The `Authorization` header: any bytes go through the same steps as a
//! request's header, and an accepted token is bounded visible ASCII.

#![no_main]

use actix_web::http::header::HeaderValue;
use libfuzzer_sys::fuzz_target;
use twauth_api::extract::parse_bearer;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let Ok(text) = value.to_str() else {
        return;
    };
    if let Some(token) = parse_bearer(text) {
        let token = token.expose();
        assert!(
            !token.is_empty() && token.len() <= 256,
            "length {}",
            token.len()
        );
        assert!(token.bytes().all(|b| b.is_ascii_graphic()), "{token:?}");
        assert!(text.contains(token));
        assert!(
            !token.eq_ignore_ascii_case("bearer"),
            "the scheme word alone"
        );
    }
});
