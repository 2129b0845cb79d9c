//! Delivery of queued mail from the outbox through a transport.
