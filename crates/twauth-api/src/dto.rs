//! Request and response bodies, with the field names of the Auth API v2.
//! Unknown request fields are ignored; response bodies carry exactly the
//! fields the contract lists.

use serde::{Deserialize, Serialize};

use crate::extract::CodeInput;

#[derive(Deserialize)]
pub struct RegisterRequest {
    pub email: String,
    #[serde(rename = "fullName")]
    pub full_name: String,
    pub alias: String,
}

#[derive(Deserialize)]
pub struct LoginRequest {
    pub email: String,
}

#[derive(Deserialize)]
pub struct VerifyRequest {
    #[serde(rename = "verificationCodeID")]
    pub verification_code_id: String,
    pub code: CodeInput,
}

#[derive(Deserialize)]
pub struct AddEmailRequest {
    pub address: String,
}

#[derive(Deserialize)]
pub struct PreferEmailRequest {
    #[serde(rename = "emailID")]
    pub email_id: String,
}

#[derive(Deserialize)]
pub struct CreateKeyPairRequest {
    pub name: String,
    pub days: i64,
}

#[derive(Serialize)]
pub struct Acknowledged {
    pub message: &'static str,
}

pub const ACKNOWLEDGED: Acknowledged = Acknowledged {
    message: "acknowledged",
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    pub bearer: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub expire_at: i64,
    pub ip: String,
    pub user_agent: String,
    #[serde(rename = "verificationCodeID")]
    pub verification_code_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCheck {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "userID")]
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionExtended {
    pub message: &'static str,
    pub expire_at: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionItem {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub ip: String,
    pub user_agent: String,
    pub expire_at: i64,
    pub current: bool,
}

#[derive(Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionItem>,
}

#[derive(Serialize)]
pub struct EmailCreated {
    #[serde(rename = "emailID")]
    pub email_id: String,
    #[serde(rename = "verificationCodeID")]
    pub verification_code_id: String,
}

#[derive(Serialize)]
pub struct EmailItem {
    pub id: String,
    pub address: String,
    pub verified: bool,
    pub preferred: bool,
}

#[derive(Serialize)]
pub struct EmailList {
    pub emails: Vec<EmailItem>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairCreated {
    pub api_key: String,
    pub api_secret: String,
    #[serde(rename = "keyID")]
    pub key_id: String,
    pub key_name: String,
    pub expire_at: i64,
    pub verified: bool,
    #[serde(rename = "verificationCodeID")]
    pub verification_code_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairCheck {
    pub api_key: String,
    #[serde(rename = "keyID")]
    pub key_id: String,
    pub key_name: String,
    pub expire_at: i64,
    pub verified: bool,
    #[serde(rename = "userID")]
    pub user_id: String,
    pub user_name: String,
    pub user_alias: String,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairItem {
    pub api_key: String,
    #[serde(rename = "keyID")]
    pub key_id: String,
    pub key_name: String,
    pub expire_at: i64,
    pub verified: bool,
}

#[derive(Serialize)]
pub struct KeyPairList {
    pub keys: Vec<KeyPairItem>,
}

#[derive(Serialize)]
pub struct UserAlias {
    pub alias: String,
}
