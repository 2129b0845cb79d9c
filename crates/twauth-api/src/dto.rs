//! Request and response bodies, with the field names of the Auth API v2.
//! Unknown request fields are ignored; response bodies carry exactly the
//! fields the contract lists.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

use crate::extract::CodeInput;

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    #[serde(rename = "fullName")]
    pub full_name: String,
    pub alias: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    #[serde(rename = "verificationCodeID")]
    #[schema(format = Uuid)]
    pub verification_code_id: String,
    #[schema(schema_with = one_time_code_schema)]
    pub code: CodeInput,
}

#[derive(Deserialize, ToSchema)]
pub struct AddEmailRequest {
    pub address: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PreferEmailRequest {
    #[serde(rename = "emailID")]
    #[schema(format = Uuid)]
    pub email_id: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateKeyPairRequest {
    pub name: String,
    pub days: i64,
}

/// Builds the schema of the `code` field: 6 decimal digits as a string, or a
/// number read as its digits left-padded with zeros to 6.
fn one_time_code_schema() -> impl Into<RefOr<Schema>> {
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[0-9]{6}$"))
        .examples(["012345"]);
    let number = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(999_999))
        .examples([12345]);
    OneOfBuilder::new()
        .item(text)
        .item(number)
        .description(Some(
            "6 decimal digits as a string, or a number read as its digits left-padded to 6",
        ))
}

#[derive(Serialize, ToSchema)]
pub struct Acknowledged {
    #[schema(example = "acknowledged")]
    pub message: &'static str,
}

pub const ACKNOWLEDGED: Acknowledged = Acknowledged {
    message: "acknowledged",
};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    pub bearer: String,
    #[serde(rename = "sessionID")]
    #[schema(format = Uuid)]
    pub session_id: String,
    pub expire_at: i64,
    pub ip: String,
    pub user_agent: String,
    #[serde(rename = "verificationCodeID")]
    #[schema(format = Uuid)]
    pub verification_code_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCheck {
    #[serde(rename = "sessionID")]
    #[schema(format = Uuid)]
    pub session_id: String,
    #[serde(rename = "userID")]
    #[schema(format = Uuid)]
    pub user_id: String,
    pub alias: String,
    pub full_name: String,
    pub expire_at: i64,
    pub ip: String,
    pub user_agent: String,
    pub verified: bool,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionExtended {
    #[schema(example = "acknowledged")]
    pub message: &'static str,
    pub expire_at: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionItem {
    #[serde(rename = "sessionID")]
    #[schema(format = Uuid)]
    pub session_id: String,
    pub ip: String,
    pub user_agent: String,
    pub expire_at: i64,
    pub current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionItem>,
}

#[derive(Serialize, ToSchema)]
pub struct EmailCreated {
    #[serde(rename = "emailID")]
    #[schema(format = Uuid)]
    pub email_id: String,
    #[serde(rename = "verificationCodeID")]
    #[schema(format = Uuid)]
    pub verification_code_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct EmailItem {
    #[schema(format = Uuid)]
    pub id: String,
    pub address: String,
    pub verified: bool,
    pub preferred: bool,
}

#[derive(Serialize, ToSchema)]
pub struct EmailList {
    pub emails: Vec<EmailItem>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairCreated {
    pub api_key: String,
    pub api_secret: String,
    #[serde(rename = "keyID")]
    #[schema(format = Uuid)]
    pub key_id: String,
    pub key_name: String,
    pub expire_at: i64,
    pub verified: bool,
    #[serde(rename = "verificationCodeID")]
    #[schema(format = Uuid)]
    pub verification_code_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairCheck {
    pub api_key: String,
    #[serde(rename = "keyID")]
    #[schema(format = Uuid)]
    pub key_id: String,
    pub key_name: String,
    pub expire_at: i64,
    pub verified: bool,
    #[serde(rename = "userID")]
    #[schema(format = Uuid)]
    pub user_id: String,
    pub user_name: String,
    pub user_alias: String,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairItem {
    pub api_key: String,
    #[serde(rename = "keyID")]
    #[schema(format = Uuid)]
    pub key_id: String,
    pub key_name: String,
    pub expire_at: i64,
    pub verified: bool,
}

#[derive(Serialize, ToSchema)]
pub struct KeyPairList {
    pub keys: Vec<KeyPairItem>,
}

#[derive(Serialize, ToSchema)]
pub struct UserAlias {
    pub alias: String,
}
