//! Reference data embedded in the binary and loaded into the database by `migrate`.

use crate::{Store, StoreResult};

/// Loads every embedded reference data set whose version differs from the database's.
pub(crate) async fn ensure_loaded(_store: &Store) -> StoreResult<()> {
    Ok(())
}
