use super::PgAdapter;
use crate::areas::AreaStore;

#[async_trait::async_trait]
impl AreaStore for PgAdapter {}
