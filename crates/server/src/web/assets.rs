//! Static assets compiled into the binary and served under `/assets/`.
//!
//! Pages link each asset as `/assets/NAME?v=HASH`, HASH being a digest of the content. A request
//! carrying the current hash may be cached for a year: new content means a new URL. Any other
//! request (no hash, or an old one during a rolling upgrade) is told to revalidate, so a cache
//! never pins old content under a new page.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::Query;

pub struct Asset {
    /// Path below `/assets/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

pub const APP_CSS: &str = "app.css";
pub const APP_JS: &str = "app.js";
pub const FAVICON: &str = "favicon.svg";
pub const HTMX: &str = "vendor/htmx-2.0.11.min.js";
pub const CHART: &str = "vendor/chart-4.6.1.umd.min.js";

/// Every asset. Vendored files carry their version in the name; see `assets/vendor/README.md`.
pub static ASSETS: &[Asset] = &[
    Asset {
        name: APP_CSS,
        content_type: CSS,
        bytes: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: APP_JS,
        content_type: JS,
        bytes: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: FAVICON,
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/favicon.svg"),
    },
    Asset {
        name: HTMX,
        content_type: JS,
        bytes: include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
    },
    Asset {
        name: CHART,
        content_type: JS,
        bytes: include_bytes!("../../assets/vendor/chart-4.6.1.umd.min.js"),
    },
    Asset {
        name: "vendor/LICENSE-htmx.txt",
        content_type: TEXT,
        bytes: include_bytes!("../../assets/vendor/LICENSE-htmx.txt"),
    },
    Asset {
        name: "vendor/LICENSE-chartjs.txt",
        content_type: TEXT,
        bytes: include_bytes!("../../assets/vendor/LICENSE-chartjs.txt"),
    },
];

/// Content digests, in the order of [`ASSETS`], computed once at first use.
static HASHES: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| content_hash(a.bytes)).collect());

/// 64-bit FNV-1a: not cryptographic, only a cache key. Stable across builds and platforms, so
/// every node of a cluster names the same content the same way.
fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn find(name: &str) -> Option<(&'static Asset, &'static str)> {
    let i = ASSETS.iter().position(|a| a.name == name)?;
    Some((&ASSETS[i], HASHES[i].as_str()))
}

/// The cache-safe URL of an asset; the names used by templates are constants of this module.
pub fn url(name: &str) -> String {
    match find(name) {
        Some((a, hash)) => format!("/assets/{}?v={hash}", a.name),
        // Unreachable with the constants above; a broken link is better than a panic.
        None => format!("/assets/{name}"),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AssetQuery {
    /// Content hash; when it matches, the response may be cached for a year.
    v: Option<String>,
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// A vendored or own static file (CSS, JavaScript, icon, licence text).
#[utoipa::path(get, path = "/assets/{path}", tag = "web", operation_id = "asset",
    params(("path" = String, Path, description = "Asset name, e.g. `app.css`"), AssetQuery),
    responses(
        (status = 200, description = "The file, with its content type"),
        (status = 304, description = "Not modified (matches `If-None-Match`)"),
        (status = 404, description = "No such asset", content_type = "application/problem+json")))]
pub async fn serve(
    Path(path): Path<String>,
    Query(q): Query<AssetQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (asset, hash) =
        find(&path).ok_or_else(|| ApiError::not_found(format!("no asset named '{path}'")))?;
    let etag = format!("\"{hash}\"");
    let cache = if q.v.as_deref() == Some(hash) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let mut out = if if_none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut res = asset.bytes.into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        res
    };
    let h = out.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(out)
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_present_and_hashed() {
        for a in ASSETS {
            assert!(!a.bytes.is_empty(), "{} is empty", a.name);
            let u = url(a.name);
            assert!(u.starts_with(&format!("/assets/{}?v=", a.name)), "{u}");
        }
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        // Published FNV-1a 64 test vector.
        assert_eq!(content_hash(b"a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn etag_matching() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(if_none_match(&h, "\"abc\""));
        assert!(!if_none_match(&h, "\"abd\""));
        assert!(!if_none_match(&HeaderMap::new(), "\"abc\""));
    }
}
