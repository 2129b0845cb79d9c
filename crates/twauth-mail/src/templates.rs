//! Subjects and bodies of every message the server sends, as plain
//! functions over [`MailBody`].
//!
//! Each message has a plain-text part and an HTML part with the same
//! content. The HTML part escapes every interpolated value and contains no
//! images, links or tracking. The fixed wording is ASCII with short lines,
//! so that both parts usually travel as 7-bit text.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::macros::format_description;
use twauth_domain::mail::{MailBody, MailError, NoticeEvent};
use twauth_domain::model::CodePurpose;

/// A message rendered for one recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

// Hand-written so that a code mail never reaches a log through `{:?}`.
impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Renders the subject, text and HTML of `body` for `product_name`.
///
/// # Errors
/// [`MailError::Permanent`] for a code mail whose code was already removed:
/// such a message was delivered before and must not be sent again.
pub fn render(product_name: &str, body: &MailBody) -> Result<Rendered, MailError> {
    match body {
        MailBody::Code {
            purpose,
            code,
            expires_at,
        } => {
            let code = code.as_ref().ok_or_else(|| {
                MailError::Permanent(
                    "the code mail contains no code because it was already delivered".into(),
                )
            })?;
            Ok(render_code(
                product_name,
                *purpose,
                code.expose(),
                *expires_at,
            ))
        }
        MailBody::Notice {
            event,
            at,
            ip,
            user_agent,
        } => Ok(render_notice(product_name, event, *at, ip, user_agent)),
    }
}

fn render_code(product: &str, purpose: CodePurpose, code: &str, expires_at: i64) -> Rendered {
    let (subject, lead) = match purpose {
        CodePurpose::Registration => (
            format!("Your {product} registration code"),
            format!("Use this code to finish creating your {product} account:"),
        ),
        CodePurpose::Login => (
            format!("Your {product} login code"),
            format!("Use this code to log in to {product}:"),
        ),
        CodePurpose::Email => (
            format!("Verify your email address for {product}"),
            format!("Use this code to add this email address to your {product} account:"),
        ),
        CodePurpose::KeyPair => (
            format!("Your {product} key pair code"),
            format!("Use this code to activate the new key pair on your {product} account:"),
        ),
    };
    let expiry = format!("The code expires on {}.", format_unix_time(expires_at));
    let ignore = "If you did not request this code, ignore this message. \
                  Nobody can use the code without reading this mailbox.";
    let warning = format!("{product} never asks you for this code by phone or in a chat.");

    let text = format!(
        "{}\n\n    {code}\n\n{}\n\n{}\n{}\n",
        wrap(&lead),
        wrap(&expiry),
        wrap(ignore),
        wrap(&warning)
    );

    let mut html = html_start(&subject);
    paragraph(&mut html, &lead);
    let _ = writeln!(
        html,
        "<p style=\"font-size:28px;font-weight:bold;letter-spacing:4px;\
         font-family:monospace\">{}</p>",
        escape_html(code)
    );
    paragraph(&mut html, &expiry);
    paragraph(&mut html, ignore);
    paragraph(&mut html, &warning);
    html.push_str(HTML_END);

    Rendered {
        subject,
        text,
        html,
    }
}

fn render_notice(
    product: &str,
    event: &NoticeEvent,
    at: i64,
    ip: &str,
    user_agent: &str,
) -> Rendered {
    let (subject, what) = describe_event(product, event);
    let when = format_unix_time(at);
    let details = [
        ("Time", when.as_str()),
        ("Client address", ip),
        ("User agent", user_agent),
    ];
    let fine = "If you made this change, there is nothing to do.";
    let advice = format!(
        "If you did not, someone else can act on your account. Log in to {product}, \
         close the sessions you do not recognise, delete key pairs you did not \
         create and remove email addresses that are not yours."
    );

    let mut text = format!("{}\n\n", wrap(&what));
    for (label, value) in details {
        let _ = writeln!(text, "{label}: {value}");
    }
    let _ = write!(text, "\n{}\n{}\n", wrap(fine), wrap(&advice));

    let mut html = html_start(&subject);
    paragraph(&mut html, &what);
    html.push_str("<table>\n");
    for (label, value) in details {
        let _ = writeln!(
            html,
            "<tr><td>{}:</td><td>{}</td></tr>",
            escape_html(label),
            escape_html(value)
        );
    }
    html.push_str("</table>\n");
    paragraph(&mut html, fine);
    paragraph(&mut html, &advice);
    html.push_str(HTML_END);

    Rendered {
        subject,
        text,
        html,
    }
}

/// Returns the subject and the opening sentence of a notice.
fn describe_event(product: &str, event: &NoticeEvent) -> (String, String) {
    match event {
        NoticeEvent::EmailAdded { address } => (
            format!("{product}: an email address was added to your account"),
            format!("The email address {address} was added to your {product} account."),
        ),
        NoticeEvent::EmailVerified { address } => (
            format!("{product}: an email address was verified"),
            format!("The email address {address} was verified on your {product} account."),
        ),
        NoticeEvent::EmailDeleted { address } => (
            format!("{product}: an email address was removed from your account"),
            format!("The email address {address} was removed from your {product} account."),
        ),
        NoticeEvent::EmailPreferred { address } => (
            format!("{product}: your preferred email address changed"),
            format!(
                "The email address {address} is now the preferred address of your \
                 {product} account. Codes for logging in and notices go to it from now on."
            ),
        ),
        NoticeEvent::KeyPairCreated { name } => (
            format!("{product}: a key pair was created"),
            format!("A key pair named \"{name}\" was created on your {product} account."),
        ),
        NoticeEvent::KeyPairDeleted { name } => (
            format!("{product}: a key pair was deleted"),
            format!("The key pair named \"{name}\" was deleted from your {product} account."),
        ),
    }
}

/// Width at which [`wrap`] breaks plain-text paragraphs.
const TEXT_WIDTH: usize = 72;

/// Breaks a paragraph into lines of at most [`TEXT_WIDTH`] characters at
/// spaces. A word longer than that stays whole on its own line.
fn wrap(paragraph: &str) -> String {
    let mut wrapped = String::with_capacity(paragraph.len());
    let mut line_len = 0;
    for word in paragraph.split_whitespace() {
        let word_len = word.chars().count();
        if line_len > 0 && line_len + 1 + word_len > TEXT_WIDTH {
            wrapped.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            wrapped.push(' ');
            line_len += 1;
        }
        wrapped.push_str(word);
        line_len += word_len;
    }
    wrapped
}

const HTML_END: &str = "</body>\n</html>\n";

fn html_start(subject: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n</head>\n<body style=\"font-family:sans-serif\">\n",
        escape_html(subject)
    )
}

fn paragraph(html: &mut String, text: &str) {
    let _ = writeln!(html, "<p>{}</p>", escape_html(text));
}

/// Formats Unix seconds as a UTC date and time such as
/// `Tuesday, 1 January 2030 at 12:10 UTC`. A value outside the range of
/// [`OffsetDateTime`] is written as the number of seconds.
pub fn format_unix_time(seconds: i64) -> String {
    let format = format_description!(
        "[weekday], [day padding:none] [month repr:long] [year] at [hour]:[minute] UTC"
    );
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| format!("{seconds} seconds after 1970-01-01 UTC"))
}

/// Escapes the five characters that are special in HTML text and attribute
/// values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use twauth_domain::values::OneTimeCode;

    use super::*;

    const PRODUCT: &str = "Example Auth";
    /// 2030-01-01 12:10:00 UTC.
    const EXPIRES_AT: i64 = 1_893_499_800;

    fn code_body(purpose: CodePurpose, code: &str) -> MailBody {
        MailBody::Code {
            purpose,
            code: Some(OneTimeCode::parse(code).unwrap()),
            expires_at: EXPIRES_AT,
        }
    }

    fn notice_body(event: NoticeEvent, user_agent: &str) -> MailBody {
        MailBody::Notice {
            event,
            at: EXPIRES_AT,
            ip: "203.0.113.7".into(),
            user_agent: user_agent.into(),
        }
    }

    fn all_events() -> Vec<NoticeEvent> {
        let address = "someone@example.com".to_owned();
        let name = "deploy bot".to_owned();
        vec![
            NoticeEvent::EmailAdded {
                address: address.clone(),
            },
            NoticeEvent::EmailVerified {
                address: address.clone(),
            },
            NoticeEvent::EmailDeleted {
                address: address.clone(),
            },
            NoticeEvent::EmailPreferred { address },
            NoticeEvent::KeyPairCreated { name: name.clone() },
            NoticeEvent::KeyPairDeleted { name },
        ]
    }

    fn longest_digit_run(text: &str) -> usize {
        text.split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn format_unix_time_reads_as_utc() {
        assert_eq!(
            format_unix_time(EXPIRES_AT),
            "Tuesday, 1 January 2030 at 12:10 UTC"
        );
        assert_eq!(
            format_unix_time(i64::MAX),
            format!("{} seconds after 1970-01-01 UTC", i64::MAX)
        );
    }

    #[test]
    fn wrap_breaks_long_paragraphs_at_spaces() {
        let paragraph = "word ".repeat(40);

        let wrapped = wrap(&paragraph);

        assert!(wrapped.lines().count() > 1);
        assert!(wrapped.lines().all(|l| l.len() <= TEXT_WIDTH), "{wrapped}");
        assert_eq!(wrapped.replace('\n', " "), paragraph.trim_end());
        assert_eq!(wrap(&"x".repeat(80)), "x".repeat(80));
    }

    #[test]
    fn escape_html_replaces_special_characters() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_html("plain text"), "plain text");
    }

    #[test]
    fn code_mail_shows_code_and_expiry_in_both_parts() {
        let purposes = [
            (CodePurpose::Registration, "registration code"),
            (CodePurpose::Login, "login code"),
            (CodePurpose::Email, "Verify your email address"),
            (CodePurpose::KeyPair, "key pair code"),
        ];
        for (purpose, subject_words) in purposes {
            let rendered = render(PRODUCT, &code_body(purpose, "042917")).unwrap();
            let expiry = "Tuesday, 1 January 2030 at 12:10 UTC";

            assert!(rendered.subject.contains(PRODUCT), "{purpose:?}");
            assert!(rendered.subject.contains(subject_words), "{purpose:?}");
            assert!(rendered.text.contains("042917"), "{purpose:?}");
            assert!(rendered.html.contains("042917"), "{purpose:?}");
            assert!(rendered.text.contains(expiry), "{purpose:?}");
            assert!(rendered.html.contains(expiry), "{purpose:?}");
        }
    }

    #[test]
    fn code_mail_purposes_have_distinct_subjects() {
        let purposes = [
            CodePurpose::Registration,
            CodePurpose::Login,
            CodePurpose::Email,
            CodePurpose::KeyPair,
        ];
        let mut subjects: Vec<String> = purposes
            .iter()
            .map(|p| render(PRODUCT, &code_body(*p, "000001")).unwrap().subject)
            .collect();
        subjects.sort();
        subjects.dedup();

        assert_eq!(subjects.len(), purposes.len());
    }

    #[test]
    fn code_mail_without_code_is_rejected() {
        let body = MailBody::Code {
            purpose: CodePurpose::Login,
            code: None,
            expires_at: EXPIRES_AT,
        };

        let error = render(PRODUCT, &body).unwrap_err();

        assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
    }

    #[test]
    fn mail_contains_no_links_or_images() {
        let mut bodies = vec![code_body(CodePurpose::Login, "123456")];
        bodies.extend(all_events().into_iter().map(|e| notice_body(e, "curl/8.5")));
        for body in bodies {
            let html = render(PRODUCT, &body).unwrap().html;

            assert!(!html.contains("<a "), "{html}");
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("http"), "{html}");
            assert!(!html.contains("src="), "{html}");
        }
    }

    #[test]
    fn notice_describes_event_time_and_client() {
        for event in all_events() {
            let rendered = render(PRODUCT, &notice_body(event.clone(), "curl/8.5")).unwrap();
            let when = "Tuesday, 1 January 2030 at 12:10 UTC";

            assert!(rendered.subject.contains(PRODUCT), "{event:?}");
            for part in [&rendered.text, &rendered.html] {
                assert!(part.contains(when), "{event:?}: {part}");
                assert!(part.contains("203.0.113.7"), "{event:?}: {part}");
                assert!(part.contains("curl/8.5"), "{event:?}: {part}");
                assert!(part.contains("If you did not"), "{event:?}: {part}");
            }
        }
    }

    #[test]
    fn notice_names_the_changed_item() {
        for event in all_events() {
            let rendered = render(PRODUCT, &notice_body(event.clone(), "curl/8.5")).unwrap();
            let item = match &event {
                NoticeEvent::EmailAdded { address }
                | NoticeEvent::EmailVerified { address }
                | NoticeEvent::EmailDeleted { address }
                | NoticeEvent::EmailPreferred { address } => address,
                NoticeEvent::KeyPairCreated { name } | NoticeEvent::KeyPairDeleted { name } => name,
            };

            assert!(rendered.text.contains(item.as_str()), "{event:?}");
            assert!(rendered.html.contains(item.as_str()), "{event:?}");
        }
    }

    #[test]
    fn notice_subjects_are_distinct() {
        let mut subjects: Vec<String> = all_events()
            .into_iter()
            .map(|e| render(PRODUCT, &notice_body(e, "x")).unwrap().subject)
            .collect();
        subjects.sort();
        subjects.dedup();

        assert_eq!(subjects.len(), all_events().len());
    }

    #[test]
    fn notice_holds_no_code_like_digit_run() {
        for event in all_events() {
            let rendered = render(PRODUCT, &notice_body(event.clone(), "curl/8.5")).unwrap();

            assert!(longest_digit_run(&rendered.text) < 6, "{event:?}");
            assert!(longest_digit_run(&rendered.html) < 6, "{event:?}");
        }
    }

    #[test]
    fn notice_escapes_hostile_values_in_html() {
        let hostile = "<script>alert('x')</script>";
        let event = NoticeEvent::KeyPairCreated {
            name: "<b>bold</b>".into(),
        };

        let rendered = render(PRODUCT, &notice_body(event, hostile)).unwrap();

        assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
        assert!(!rendered.html.contains("<b>"), "{}", rendered.html);
        assert!(
            rendered
                .html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
        );
        assert!(rendered.html.contains("&lt;b&gt;bold&lt;/b&gt;"));
        assert!(rendered.text.contains(hostile));
    }

    #[test]
    fn product_name_is_escaped_in_html() {
        let rendered = render("A<B", &code_body(CodePurpose::Login, "123456")).unwrap();

        assert!(rendered.subject.contains("A<B"));
        assert!(rendered.html.contains("A&lt;B"));
        assert!(!rendered.html.contains("A<B"));
    }
}
