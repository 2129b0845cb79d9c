//! Background work of each replica: delivering the outbox, purging old
//! messages and abandoned registrations.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use twauth_api::health::Heartbeat;
use twauth_api::metrics::Metrics;
use twauth_domain::Auth;
use twauth_domain::delivery::{self, DeliveryPolicy, DeliveryResult};
use twauth_domain::ports::{Clock, MailTransport};

/// How often old messages and abandoned registrations are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// What the delivery loop works with.
pub struct DeliveryWorker {
    pub auth: Arc<Auth>,
    pub transport: Arc<dyn MailTransport>,
    pub clock: Arc<dyn Clock>,
    pub policy: DeliveryPolicy,
    /// Time between outbox polls when no request wakes the worker.
    pub poll: Duration,
    /// Receives send results and the outbox depth after each batch.
    pub metrics: Arc<Metrics>,
    /// Beaten after each loop; `/health/ready` reads it.
    pub heartbeat: Arc<Heartbeat>,
}

/// Runs until `stop` turns true: delivers due mail whenever `wake` fires or
/// `poll` passes, and purges once an hour. A batch in progress finishes
/// before the loop exits.
pub async fn run_delivery(
    worker: DeliveryWorker,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let DeliveryWorker {
        auth,
        transport,
        clock,
        policy,
        poll,
        metrics,
        heartbeat,
    } = worker;
    let mut last_purge = tokio::time::Instant::now() - PURGE_INTERVAL;
    tracing::info!(
        poll_ms = poll.as_millis() as u64,
        "mail delivery worker started"
    );
    loop {
        if *stop.borrow() {
            break;
        }

        let (auth2, transport2, clock2, policy2) = (
            auth.clone(),
            transport.clone(),
            clock.clone(),
            policy.clone(),
        );
        let batch = tokio::task::spawn_blocking(move || {
            let report = delivery::deliver_due(
                auth2.store().as_ref(),
                transport2.as_ref(),
                clock2.as_ref(),
                &policy2,
            );
            // Counted after the batch, so the gauge shows what is left.
            let pending = report.is_ok().then(|| auth2.store().pending_count());
            (report, pending)
        })
        .await;
        let more = match batch {
            Ok((Ok(report), pending)) => {
                metrics.mail_delivered(report.sent, report.retried, report.failed);
                if let Some(Ok(pending)) = pending {
                    metrics.set_outbox_pending(pending);
                }
                for outcome in &report.outcomes {
                    let to = outcome.to.masked();
                    match &outcome.result {
                        DeliveryResult::Sent { message_id } => tracing::info!(
                            mail.id = %outcome.id, mail.to = %to, mail.kind = outcome.kind,
                            mail.message_id = %message_id, mail.attempt = outcome.attempt,
                            "mail sent"
                        ),
                        DeliveryResult::Retry {
                            next_attempt_at,
                            error,
                        } => tracing::warn!(
                            mail.id = %outcome.id, mail.to = %to, mail.kind = outcome.kind,
                            mail.attempt = outcome.attempt,
                            mail.next_attempt_at = next_attempt_at.unix_timestamp(),
                            error = %error, "mail delivery failed, will retry"
                        ),
                        DeliveryResult::Failed { error } => tracing::error!(
                            mail.id = %outcome.id, mail.to = %to, mail.kind = outcome.kind,
                            mail.attempt = outcome.attempt, error = %error,
                            "mail delivery failed for good"
                        ),
                    }
                }
                report.sent + report.retried + report.failed >= policy.batch_size
            }
            Ok((Err(err), _)) => {
                metrics.mail_worker_failed();
                tracing::warn!(error = %err, "mail delivery could not read the outbox");
                false
            }
            Err(err) => {
                tracing::error!(error = %err, "mail delivery task panicked");
                false
            }
        };

        heartbeat.beat();
        metrics.mail_worker_ran(clock.now().unix_timestamp());

        if last_purge.elapsed() >= PURGE_INTERVAL {
            last_purge = tokio::time::Instant::now();
            purge(auth.clone(), clock.clone(), policy.clone()).await;
        }

        if more {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!("mail delivery worker stopped");
}

async fn purge(auth: Arc<Auth>, clock: Arc<dyn Clock>, policy: DeliveryPolicy) {
    let result = tokio::task::spawn_blocking(move || {
        let mail = delivery::purge_finished(auth.store().as_ref(), clock.as_ref(), &policy);
        let users = auth.purge_unverified_users();
        (mail, users)
    })
    .await;
    match result {
        Ok((mail, users)) => {
            match mail {
                Ok(count) if count > 0 => tracing::info!(count, "purged finished mail"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "purging finished mail failed"),
            }
            match users {
                Ok(count) if count > 0 => tracing::info!(count, "purged unverified accounts"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "purging unverified accounts failed"),
            }
        }
        Err(err) => tracing::error!(error = %err, "purge task panicked"),
    }
}
