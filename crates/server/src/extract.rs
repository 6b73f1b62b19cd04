//! Extractors whose rejections are problem+json naming the parameter at fault.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like axum's `Query`, but a malformed or unknown parameter gives a 400 problem that names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

pub fn parse_query<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(raw));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports an unknown field at the root with the field name in the message.
        let field = if path == "." {
            unknown_field_name(&inner).unwrap_or_else(|| "query".to_string())
        } else {
            path
        };
        ApiError::invalid_field(field.clone(), format!("query parameter '{field}': {inner}"))
    })
}

/// The `limit` query parameter of a list: `default` when absent, refused with a 400 naming the
/// parameter and its range when outside `1..=max` (zero would page forever, a huge one would
/// read a whole registry into one answer).
pub fn page_limit(given: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = given.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field(
            "limit",
            format!("query parameter 'limit': must be between 1 and {max}, got {limit}"),
        ))
    }
}

fn form_urlencoded_parse(raw: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(raw.as_bytes())
}

fn unknown_field_name(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        level: Option<String>,
    }

    #[test]
    fn names_the_bad_parameter() {
        let e = parse_query::<Q>("limit=abc").expect_err("must fail");
        assert_eq!(e.field.as_deref(), Some("limit"));
        let e = parse_query::<Q>("limt=3").expect_err("must fail");
        assert_eq!(e.field.as_deref(), Some("limt"));
        assert!(parse_query::<Q>("limit=3&level=cell").is_ok());
    }
}
