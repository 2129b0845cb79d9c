//! Delivery of queued mail from the outbox through a transport.
//!
//! A worker calls [`deliver_due`] on a timer from a blocking thread. Each
//! call claims a batch of due messages, sends them one by one and records
//! the result of each in the store: sent, retry later, or failed for good.
//! Once a message is sent or failed, the stored copy loses its one-time
//! code. Nothing here logs; the returned [`DeliveryReport`] lists what
//! happened so that the caller can.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::mail::{MailError, OutboxEntry};
use crate::ports::{Clock, MailTransport, OutboxStore, StoreError};
use crate::values::EmailAddress;

/// Batch size, lease and retry timing of outbox delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Maximum number of messages claimed by one [`deliver_due`] call.
    pub batch_size: u32,
    /// How long claimed messages stay hidden from other workers. Messages of
    /// a batch that are still unsent when the lease runs out are left for a
    /// later call, so the lease bounds how long one call keeps sending.
    pub lease: Duration,
    /// Time that must be left of the lease for another send to start. When
    /// less is left, the rest of the batch is released. A send that takes
    /// longer than this may end after the lease, when another worker may
    /// already have claimed and sent the same message.
    pub send_margin: Duration,
    /// Delay before the first retry after a transient failure. Each further
    /// retry waits twice as long as the one before.
    pub first_retry: Duration,
    /// Maximum delay between two attempts.
    pub max_retry: Duration,
    /// Age, counted from when the message was queued, after which a transient
    /// failure marks the message failed instead of scheduling a retry.
    pub max_age: Duration,
    /// How long sent and failed messages are kept before [`purge_finished`]
    /// deletes them.
    pub keep_finished: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            batch_size: 32,
            lease: Duration::seconds(60),
            send_margin: Duration::seconds(30),
            first_retry: Duration::seconds(5),
            max_retry: Duration::minutes(10),
            max_age: Duration::hours(24),
            keep_finished: Duration::days(7),
        }
    }
}

impl DeliveryPolicy {
    /// Computes the delay before the next attempt of a message that has
    /// already failed `attempts` times before the failure at hand:
    /// `first_retry * 2^attempts`, at most `max_retry`.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let delay = 2i32
            .checked_pow(attempts)
            .and_then(|factor| self.first_retry.checked_mul(factor));
        match delay {
            Some(delay) if delay < self.max_retry => delay,
            _ => self.max_retry,
        }
    }
}

/// Outcome of one message in a [`deliver_due`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The transport accepted the message.
    Sent { message_id: String },
    /// A transient failure. The message is due again at `next_attempt_at`.
    Retry {
        next_attempt_at: OffsetDateTime,
        error: String,
    },
    /// The message will not be sent: the failure was permanent, or it was
    /// transient but the message had reached the maximum age.
    Failed { error: String },
}

/// One message handled by a [`deliver_due`] call, with what a log line
/// needs. It holds no code and no message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Outbox id of the message.
    pub id: Uuid,
    /// Recipient. Log it with [`EmailAddress::masked`].
    pub to: EmailAddress,
    /// Message kind, as [`crate::mail::Mail::kind`] names it.
    pub kind: &'static str,
    /// Number of this attempt, counting from 1.
    pub attempt: u32,
    pub result: DeliveryResult,
}

/// The result of one [`deliver_due`] call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages the transport accepted.
    pub sent: u32,
    /// Messages that failed transiently and were scheduled again.
    pub retried: u32,
    /// Messages marked failed for good.
    pub failed: u32,
    /// Claimed messages left unsent because too little of the lease was left
    /// at their turn. The store hands them out again once the lease has
    /// passed.
    pub released: u32,
    /// One entry for each sent, retried or failed message, in sending order.
    pub outcomes: Vec<DeliveryOutcome>,
}

impl DeliveryReport {
    /// Whether the call found nothing to do.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty() && self.released == 0
    }
}

/// Claims up to `policy.batch_size` due messages and sends each through
/// `transport`.
///
/// A sent message is stored without its code. A transient failure schedules
/// a retry after [`DeliveryPolicy::retry_delay`], unless the message was
/// queued at least `policy.max_age` ago, in which case it is marked failed,
/// also without its code. A permanent failure marks it failed at once.
///
/// A send starts only while at least `policy.send_margin` of the lease is
/// left, so that a send that ends within the margin ends before another
/// worker can claim the message.
///
/// # Errors
/// Returns the first [`StoreError`] and stops the batch there. Messages of
/// the batch not yet recorded, including one that was just sent, are claimed
/// again when the lease runs out, so a message may be delivered twice.
pub fn deliver_due(
    store: &dyn OutboxStore,
    transport: &dyn MailTransport,
    clock: &dyn Clock,
    policy: &DeliveryPolicy,
) -> Result<DeliveryReport, StoreError> {
    let claimed_at = clock.now();
    let last_start = claimed_at + policy.lease - policy.send_margin;
    let entries = store.claim_due(claimed_at, policy.batch_size, policy.lease)?;

    let mut report = DeliveryReport::default();
    for (index, entry) in entries.iter().enumerate() {
        if clock.now() > last_start {
            report.released = u32::try_from(entries.len() - index).unwrap_or(u32::MAX);
            break;
        }

        let result = deliver_one(store, transport, clock, policy, entry)?;
        match result {
            DeliveryResult::Sent { .. } => report.sent += 1,
            DeliveryResult::Retry { .. } => report.retried += 1,
            DeliveryResult::Failed { .. } => report.failed += 1,
        }
        report.outcomes.push(DeliveryOutcome {
            id: entry.id,
            to: entry.mail.to.clone(),
            kind: entry.mail.kind(),
            attempt: entry.attempts.saturating_add(1),
            result,
        });
    }
    Ok(report)
}

/// Sends one claimed message and records the result in the store.
fn deliver_one(
    store: &dyn OutboxStore,
    transport: &dyn MailTransport,
    clock: &dyn Clock,
    policy: &DeliveryPolicy,
    entry: &OutboxEntry,
) -> Result<DeliveryResult, StoreError> {
    let sent = transport.send(&entry.mail);
    let now = clock.now();

    match sent {
        Ok(message_id) => {
            store.mark_sent(entry.id, now, &entry.mail.redacted())?;
            Ok(DeliveryResult::Sent { message_id })
        }
        Err(MailError::Transient(reason)) => {
            let error = format!("transient: {reason}");
            if is_too_old(entry, now, policy.max_age) {
                let error = format!("{error}; gave up after {}", policy.max_age);
                store.mark_failed(entry.id, now, &entry.mail.redacted(), &error)?;
                return Ok(DeliveryResult::Failed { error });
            }
            let next_attempt_at = now + policy.retry_delay(entry.attempts);
            store.mark_retry(entry.id, next_attempt_at, &error)?;
            Ok(DeliveryResult::Retry {
                next_attempt_at,
                error,
            })
        }
        Err(MailError::Permanent(reason)) => {
            let error = format!("permanent: {reason}");
            store.mark_failed(entry.id, now, &entry.mail.redacted(), &error)?;
            Ok(DeliveryResult::Failed { error })
        }
    }
}

fn is_too_old(entry: &OutboxEntry, now: OffsetDateTime, max_age: Duration) -> bool {
    let age = Duration::seconds(now.unix_timestamp().saturating_sub(entry.created_at));
    age >= max_age
}

/// Deletes sent and failed messages that finished more than
/// `policy.keep_finished` ago. Returns how many were deleted.
///
/// # Errors
/// Returns the store's error unchanged.
pub fn purge_finished(
    store: &dyn OutboxStore,
    clock: &dyn Clock,
    policy: &DeliveryPolicy,
) -> Result<u64, StoreError> {
    store.purge_finished(clock.now() - policy.keep_finished)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use time::macros::datetime;

    use super::*;
    use crate::mail::{Mail, MailBody, NoticeEvent};
    use crate::memory::{ManualClock, MemoryStore};
    use crate::model::CodePurpose;
    use crate::values::OneTimeCode;

    const START: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);

    /// A transport that answers from a script of results (success once the
    /// script is empty) and can move the clock while it sends.
    struct ScriptedTransport {
        script: Mutex<VecDeque<Result<(), MailError>>>,
        delivered: Mutex<Vec<Mail>>,
        clock: Arc<ManualClock>,
        send_time: Duration,
    }

    impl ScriptedTransport {
        fn new(clock: Arc<ManualClock>) -> Self {
            ScriptedTransport {
                script: Mutex::new(VecDeque::new()),
                delivered: Mutex::new(Vec::new()),
                clock,
                send_time: Duration::ZERO,
            }
        }

        fn then(self, result: Result<(), MailError>) -> Self {
            self.script.lock().unwrap().push_back(result);
            self
        }

        fn delivered(&self) -> Vec<Mail> {
            self.delivered.lock().unwrap().clone()
        }
    }

    impl MailTransport for ScriptedTransport {
        fn send(&self, mail: &Mail) -> Result<String, MailError> {
            self.clock.advance(self.send_time);
            self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))?;
            let mut delivered = self.delivered.lock().unwrap();
            delivered.push(mail.clone());
            Ok(format!("<{}@test>", delivered.len()))
        }
    }

    fn transient() -> Result<(), MailError> {
        Err(MailError::Transient("connection refused".into()))
    }

    fn code_mail() -> Mail {
        Mail {
            to: EmailAddress::from_trusted("someone@example.com".into()),
            body: MailBody::Code {
                purpose: CodePurpose::Login,
                code: Some(OneTimeCode::parse("042917").unwrap()),
                expires_at: START.unix_timestamp() + 600,
            },
        }
    }

    fn notice_mail() -> Mail {
        Mail {
            to: EmailAddress::from_trusted("someone@example.com".into()),
            body: MailBody::Notice {
                event: NoticeEvent::KeyPairCreated { name: "ci".into() },
                at: START.unix_timestamp(),
                ip: "127.0.0.1".into(),
                user_agent: "curl/8".into(),
            },
        }
    }

    struct Setup {
        store: MemoryStore,
        clock: Arc<ManualClock>,
        policy: DeliveryPolicy,
    }

    fn setup(mails: &[Mail]) -> Setup {
        let store = MemoryStore::new();
        let clock = Arc::new(ManualClock::new(START));
        store.enqueue(mails, clock.now()).unwrap();
        Setup {
            store,
            clock,
            policy: DeliveryPolicy::default(),
        }
    }

    impl Setup {
        fn deliver(&self, transport: &ScriptedTransport) -> DeliveryReport {
            deliver_due(&self.store, transport, self.clock.as_ref(), &self.policy).unwrap()
        }
    }

    #[test]
    fn deliver_due_sends_each_message_once() {
        let s = setup(&[code_mail(), notice_mail()]);
        let transport = ScriptedTransport::new(s.clock.clone());

        let report = s.deliver(&transport);
        assert_eq!(report.sent, 2);
        assert_eq!(report.retried, 0);
        assert_eq!(report.failed, 0);
        assert_eq!(transport.delivered(), vec![code_mail(), notice_mail()]);
        assert_eq!(
            report.outcomes[0].result,
            DeliveryResult::Sent {
                message_id: "<1@test>".into()
            }
        );
        assert_eq!(report.outcomes[0].kind, "login");
        assert_eq!(report.outcomes[0].attempt, 1);
        assert_eq!(s.store.pending_count().unwrap(), 0);

        s.clock.advance(Duration::hours(1));
        let again = s.deliver(&transport);
        assert!(again.is_empty());
        assert_eq!(transport.delivered().len(), 2);
    }

    #[test]
    fn deliver_due_redacts_code_after_send() {
        let s = setup(&[code_mail(), notice_mail()]);
        let transport = ScriptedTransport::new(s.clock.clone());

        s.deliver(&transport);

        let stored = s.store.outbox();
        assert!(!stored[0].holds_code());
        assert_eq!(stored[0], code_mail().redacted());
        assert_eq!(stored[1], notice_mail());
    }

    #[test]
    fn deliver_due_keeps_code_while_retrying() {
        let s = setup(&[code_mail()]);
        let transport = ScriptedTransport::new(s.clock.clone()).then(transient());

        let report = s.deliver(&transport);

        assert_eq!(report.retried, 1);
        assert!(s.store.outbox()[0].holds_code());
    }

    #[test]
    fn deliver_due_retries_with_exponential_backoff() {
        let s = setup(&[code_mail()]);
        let transport = ScriptedTransport::new(s.clock.clone())
            .then(transient())
            .then(transient())
            .then(transient());

        // Failures after 0, 1 and 2 earlier attempts wait 5 s, 10 s and 20 s.
        for wait in [5, 10, 20] {
            let report = s.deliver(&transport);
            assert_eq!(report.retried, 1);
            let expected_at = s.clock.now() + Duration::seconds(wait);
            match &report.outcomes[0].result {
                DeliveryResult::Retry {
                    next_attempt_at,
                    error,
                } => {
                    assert_eq!(*next_attempt_at, expected_at);
                    assert!(error.contains("connection refused"), "{error}");
                }
                other => panic!("expected a retry, got {other:?}"),
            }

            s.clock.advance(Duration::seconds(wait - 1));
            assert!(s.deliver(&transport).is_empty(), "due too early");
            s.clock.advance(Duration::seconds(1));
        }

        let report = s.deliver(&transport);
        assert_eq!(report.sent, 1);
        assert_eq!(report.outcomes[0].attempt, 4);
        assert_eq!(transport.delivered().len(), 1);
    }

    #[test]
    fn retry_delay_doubles_up_to_max() {
        let policy = DeliveryPolicy::default();

        assert_eq!(policy.retry_delay(0), Duration::seconds(5));
        assert_eq!(policy.retry_delay(1), Duration::seconds(10));
        assert_eq!(policy.retry_delay(6), Duration::seconds(320));
        assert_eq!(policy.retry_delay(7), Duration::minutes(10));
        assert_eq!(policy.retry_delay(40), Duration::minutes(10));
        assert_eq!(policy.retry_delay(u32::MAX), Duration::minutes(10));
    }

    #[test]
    fn deliver_due_gives_up_after_max_age() {
        let s = setup(&[code_mail()]);
        let transport = ScriptedTransport::new(s.clock.clone())
            .then(transient())
            .then(transient());

        assert_eq!(s.deliver(&transport).retried, 1);
        s.clock.advance(s.policy.max_age);
        let report = s.deliver(&transport);

        assert_eq!(report.failed, 1);
        assert_eq!(report.retried, 0);
        match &report.outcomes[0].result {
            DeliveryResult::Failed { error } => {
                assert!(error.contains("connection refused"), "{error}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(s.store.pending_count().unwrap(), 0);
        assert!(!s.store.outbox()[0].holds_code());

        s.clock.advance(Duration::days(1));
        assert!(s.deliver(&transport).is_empty());
        assert!(transport.delivered().is_empty());
    }

    #[test]
    fn deliver_due_fails_permanent_error_at_once() {
        let s = setup(&[code_mail()]);
        let transport = ScriptedTransport::new(s.clock.clone())
            .then(Err(MailError::Permanent("550 no such user".into())));

        let report = s.deliver(&transport);

        assert_eq!(report.failed, 1);
        assert_eq!(
            report.outcomes[0].result,
            DeliveryResult::Failed {
                error: "permanent: 550 no such user".into()
            }
        );
        assert_eq!(s.store.pending_count().unwrap(), 0);
        assert_eq!(s.store.outbox()[0], code_mail().redacted());
    }

    #[test]
    fn deliver_due_releases_batch_when_lease_ends() {
        let s = setup(&[code_mail(), notice_mail(), notice_mail()]);
        let mut transport = ScriptedTransport::new(s.clock.clone());
        transport.send_time = s.policy.lease;

        let report = s.deliver(&transport);
        assert_eq!(report.sent, 1);
        assert_eq!(report.released, 2);
        assert_eq!(s.store.pending_count().unwrap(), 2);

        transport.send_time = Duration::ZERO;
        let report = s.deliver(&transport);
        assert_eq!(report.sent, 2);
        assert_eq!(transport.delivered().len(), 3);
    }

    #[test]
    fn deliver_due_starts_no_send_near_lease_end() {
        let s = setup(&[code_mail(), notice_mail(), notice_mail()]);
        let mut transport = ScriptedTransport::new(s.clock.clone());
        // The first send leaves one second less than the margin.
        transport.send_time = s.policy.lease - s.policy.send_margin + Duration::seconds(1);

        let report = s.deliver(&transport);
        assert_eq!(report.sent, 1);
        assert_eq!(report.released, 2);

        // Had the second send started, a slow one would have ended after the
        // lease, when another worker can claim the same message.
        s.clock.advance(s.policy.send_margin);
        transport.send_time = Duration::ZERO;
        let other_worker = s.deliver(&transport);
        assert_eq!(other_worker.sent, 2);
        assert_eq!(transport.delivered().len(), 3);
    }

    #[test]
    fn deliver_due_claims_at_most_batch_size() {
        let mut s = setup(&[notice_mail(), notice_mail(), notice_mail()]);
        s.policy.batch_size = 2;
        let transport = ScriptedTransport::new(s.clock.clone());

        assert_eq!(s.deliver(&transport).sent, 2);
        assert_eq!(s.deliver(&transport).sent, 1);
    }

    #[test]
    fn purge_finished_keeps_recent_and_pending() {
        let s = setup(&[code_mail(), notice_mail()]);
        let transport = ScriptedTransport::new(s.clock.clone())
            .then(Ok(()))
            .then(transient());
        s.deliver(&transport);

        s.clock
            .advance(s.policy.keep_finished - Duration::seconds(1));
        assert_eq!(
            purge_finished(&s.store, s.clock.as_ref(), &s.policy).unwrap(),
            0
        );

        s.clock.advance(Duration::seconds(2));
        assert_eq!(
            purge_finished(&s.store, s.clock.as_ref(), &s.policy).unwrap(),
            1
        );
        assert_eq!(s.store.outbox(), vec![notice_mail()]);
    }
}
