//! Port of the `areas` context: Rwanda's administrative hierarchy (reference data).

/// Read access to administrative areas. Areas are public reference data: no scope is needed.
#[async_trait::async_trait]
pub trait AreaStore: Send + Sync {}
