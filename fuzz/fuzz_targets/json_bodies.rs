//! Every request body type, read from any bytes the way the JSON extractor
//! reads them, then passed through the parsers its handler uses.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twauth_api::dto::{
    AddEmailRequest, CreateKeyPairRequest, LoginRequest, PreferEmailRequest, RegisterRequest,
    VerifyRequest,
};
use twauth_api::extract::parse_uuid;
use twauth_domain::Field;
use twauth_domain::values::{Alias, EmailAddress, FullName, KeyName};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<RegisterRequest>(data) {
        let _ = EmailAddress::parse(&body.email, Field::Email);
        let _ = FullName::parse(&body.full_name);
        let _ = Alias::parse(&body.alias);
    }
    if let Ok(body) = serde_json::from_slice::<LoginRequest>(data) {
        let _ = EmailAddress::parse(&body.email, Field::Email);
    }
    if let Ok(body) = serde_json::from_slice::<VerifyRequest>(data) {
        let _ = parse_uuid(&body.verification_code_id, Field::VerificationCodeId);
        let _ = body.code.parse();
    }
    if let Ok(body) = serde_json::from_slice::<AddEmailRequest>(data) {
        let _ = EmailAddress::parse(&body.address, Field::Address);
    }
    if let Ok(body) = serde_json::from_slice::<PreferEmailRequest>(data) {
        let _ = parse_uuid(&body.email_id, Field::EmailId);
    }
    if let Ok(body) = serde_json::from_slice::<CreateKeyPairRequest>(data) {
        let _ = KeyName::parse(&body.name);
    }
});
