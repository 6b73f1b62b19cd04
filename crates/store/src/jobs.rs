//! Port of the job queue: durable jobs written in the same transaction as their cause.

#[async_trait::async_trait]
pub trait JobStore: Send + Sync {}
