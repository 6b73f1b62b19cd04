//! `/api/docs`: the OpenAPI document rendered as a page for people, from the same document that
//! `/api/v1/openapi.json` serves, so the two cannot disagree.
//!
//! The document is read as JSON rather than through utoipa's types: the JSON shape is the
//! OpenAPI standard, utoipa's structs are an implementation detail that changes between versions.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::page::{render, Chrome, PageCtx, Section};

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

#[derive(Template)]
#[template(path = "api_docs.html")]
struct ApiDocsPage {
    chrome: Chrome,
    doc: DocView,
}

pub struct DocView {
    pub title: String,
    pub version: String,
    pub description: Rich,
    pub groups: Vec<Group>,
    pub schemas: Vec<SchemaView>,
}

pub struct Group {
    pub name: String,
    pub description: Rich,
    pub operations: Vec<Operation>,
}

pub struct Operation {
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: Rich,
    pub description: Rich,
    pub parameters: Vec<Parameter>,
    pub body: Option<Body>,
    pub responses: Vec<ResponseView>,
}

pub struct Parameter {
    pub name: String,
    pub location: String,
    pub ty: TypeView,
    pub required: bool,
    pub description: Rich,
}

pub struct Body {
    pub content_type: String,
    pub ty: TypeView,
    pub required: bool,
}

pub struct ResponseView {
    pub status: String,
    /// `2xx`, `4xx`…, for styling.
    pub class: String,
    pub description: Rich,
    pub content_type: String,
    pub ty: Option<TypeView>,
}

pub struct SchemaView {
    pub name: String,
    pub anchor: String,
    pub description: Rich,
    pub ty: TypeView,
    pub properties: Vec<Parameter>,
}

/// A type as text, linking to its schema when it names one.
pub struct TypeView {
    pub text: String,
    pub link: Option<String>,
}

/// The API documentation page.
#[utoipa::path(get, path = "/api/docs", tag = "web", operation_id = "api_docs_page",
    params(("lang" = Option<String>, Query, description = "Language: `rw`, `en` or `fr`")),
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
pub async fn page(ctx: PageCtx) -> Response {
    let doc = match serde_json::to_value(crate::openapi::document()) {
        Ok(v) => doc_view(&v),
        Err(e) => return crate::error::ApiError::internal(e).into_response(),
    };
    let t = ctx.t();
    let page = ApiDocsPage {
        chrome: ctx.chrome(Section::ApiDocs, &t.api_title),
        doc,
    };
    render(&ctx, StatusCode::OK, &page)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn rich(v: &Value, key: &str) -> Rich {
    Rich(text(v, key))
}

/// Text from a doc comment, whose `backticked` spans are shown as code. Rendered with `|safe`:
/// its `Display` escapes everything itself.
#[derive(Debug, Default)]
pub struct Rich(String);

impl Rich {
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Display for Rich {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An odd number of backticks means they are not code markers: show them as they are.
        let marked = self.0.matches('`').count() & 1 == 0;
        for (i, part) in self.0.split('`').enumerate() {
            match (marked, i % 2 == 1) {
                (true, true) => write!(f, "<code>{}</code>", Escaped(part))?,
                (true, false) => write!(f, "{}", Escaped(part))?,
                (false, _) if i > 0 => write!(f, "`{}", Escaped(part))?,
                (false, _) => write!(f, "{}", Escaped(part))?,
            }
        }
        Ok(())
    }
}

struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

fn empty() -> Map<String, Value> {
    Map::new()
}

pub fn doc_view(doc: &Value) -> DocView {
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let mut groups: Vec<Group> = doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| Group {
            name: text(t, "name"),
            description: rich(t, "description"),
            operations: Vec::new(),
        })
        .collect();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(empty);
    for (path, item) in &paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string();
            let operation = operation_view(path, method, item, op);
            group_for(&mut groups, &tag).operations.push(operation);
        }
    }
    groups.retain(|g| !g.operations.is_empty());
    DocView {
        title: text(&info, "title"),
        version: text(&info, "version"),
        description: rich(&info, "description"),
        groups,
        schemas: schema_views(doc),
    }
}

fn group_for<'a>(groups: &'a mut Vec<Group>, tag: &str) -> &'a mut Group {
    let i = match groups.iter().position(|g| g.name == tag) {
        Some(i) => i,
        None => {
            groups.push(Group {
                name: tag.to_string(),
                description: Rich::default(),
                operations: Vec::new(),
            });
            groups.len() - 1
        }
    };
    &mut groups[i]
}

fn operation_view(path: &str, method: &str, item: &Value, op: &Value) -> Operation {
    // Parameters may sit on the path item (shared by its methods) or on the operation.
    let parameters = [item.get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(parameter_view)
        .collect();
    let body = op.get("requestBody").and_then(|b| {
        let (content_type, media) = b.get("content")?.as_object()?.iter().next()?;
        Some(Body {
            content_type: content_type.clone(),
            ty: type_view(media.get("schema").unwrap_or(&Value::Null)),
            required: b.get("required").and_then(Value::as_bool).unwrap_or(false),
        })
    });
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(status, r)| {
            let media = r
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.iter().next());
            ResponseView {
                class: format!("{}xx", status.chars().next().unwrap_or('d')),
                status: status.clone(),
                description: rich(r, "description"),
                content_type: media.map(|(ct, _)| ct.clone()).unwrap_or_default(),
                ty: media.and_then(|(_, m)| m.get("schema")).map(type_view),
            }
        })
        .collect();
    Operation {
        anchor: format!("op-{method}-{}", slug(path)),
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        summary: rich(op, "summary"),
        description: rich(op, "description"),
        parameters,
        body,
        responses,
    }
}

fn parameter_view(p: &Value) -> Parameter {
    Parameter {
        name: text(p, "name"),
        location: text(p, "in"),
        ty: type_view(p.get("schema").unwrap_or(&Value::Null)),
        required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
        description: rich(p, "description"),
    }
}

fn schema_views(doc: &Value) -> Vec<SchemaView> {
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(empty);
    schemas
        .iter()
        .map(|(name, s)| {
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let properties = s
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(pname, p)| Parameter {
                    name: pname.clone(),
                    location: String::new(),
                    ty: type_view(p),
                    required: required.contains(&pname.as_str()),
                    description: rich(p, "description"),
                })
                .collect();
            SchemaView {
                name: name.clone(),
                anchor: schema_anchor(name),
                description: rich(s, "description"),
                ty: type_view(s),
                properties,
            }
        })
        .collect()
}

fn schema_anchor(name: &str) -> String {
    format!("schema-{}", slug(name))
}

/// A fragment identifier made of the characters `[a-z0-9-]`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// A JSON Schema (OpenAPI 3.1) as short text: `string (date-time)`, `array of Area`,
/// `integer | null`, `one of: "a", "b"`.
fn type_view(s: &Value) -> TypeView {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r).to_string();
        return TypeView {
            link: Some(format!("#{}", schema_anchor(&name))),
            text: name,
        };
    }
    TypeView {
        text: type_text(s),
        link: None,
    }
}

fn type_text(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    for combo in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = s.get(combo).and_then(Value::as_array) {
            let sep = if combo == "allOf" { " & " } else { " | " };
            return list.iter().map(type_text).collect::<Vec<_>>().join(sep);
        }
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let vals: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of: {}", vals.join(", "));
    }
    let types: Vec<String> = match s.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".into();
    }
    types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!(
                "array of {}",
                s.get("items")
                    .map(type_text)
                    .unwrap_or_else(|| "any".into())
            ),
            "null" => "null".to_string(),
            other => match s.get("format").and_then(Value::as_str) {
                Some(f) => format!("{other} ({f})"),
                None => other.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backticks_become_code_and_html_is_escaped() {
        let r = Rich("Errors are `application/problem+json` <b>&</b>".into());
        assert_eq!(
            r.to_string(),
            "Errors are <code>application/problem+json</code> &lt;b&gt;&amp;&lt;/b&gt;"
        );
        assert_eq!(Rich("a ` b".into()).to_string(), "a ` b");
        assert_eq!(Rich("<script>".into()).to_string(), "&lt;script&gt;");
    }

    #[test]
    fn renders_types_readably() {
        assert_eq!(
            type_text(&json!({"type": "string", "format": "date-time"})),
            "string (date-time)"
        );
        assert_eq!(
            type_text(&json!({"type": ["integer", "null"], "format": "int64"})),
            "integer (int64) | null"
        );
        assert_eq!(
            type_text(&json!({"type": "array", "items": {"$ref": "#/components/schemas/Area"}})),
            "array of Area"
        );
        assert_eq!(
            type_text(&json!({"enum": ["a", "b"]})),
            "one of: \"a\", \"b\""
        );
        assert_eq!(
            type_text(&json!({"oneOf": [{"type": "null"}, {"$ref": "#/x/Check"}]})),
            "null | Check"
        );
        assert_eq!(type_text(&json!({})), "any");
        let t = type_view(&json!({"$ref": "#/components/schemas/Health"}));
        assert_eq!(t.link.as_deref(), Some("#schema-health"));
    }

    #[test]
    fn groups_operations_by_tag() {
        let doc = json!({
            "info": {"title": "T", "version": "1"},
            "tags": [{"name": "ops", "description": "Operations"}, {"name": "unused"}],
            "paths": {
                "/a/{id}": {
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "get": {"tags": ["ops"], "summary": "Get A",
                            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}},
                    "post": {"summary": "Make A", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                             "responses": {"201": {"description": "made"}}}
                }
            },
            "components": {"schemas": {"A": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}, "y": {"type": "string"}}}}}
        });
        let v = doc_view(&doc);
        let names: Vec<_> = v.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["ops", "other"]);
        let get = &v.groups[0].operations[0];
        assert_eq!((get.method.as_str(), get.path.as_str()), ("GET", "/a/{id}"));
        assert_eq!(get.anchor, "op-get-a-id");
        assert_eq!(get.parameters[0].name, "id");
        assert!(get.parameters[0].required);
        assert_eq!(
            get.responses[0].ty.as_ref().map(|t| t.text.as_str()),
            Some("A")
        );
        let post = &v.groups[1].operations[0];
        assert!(post
            .body
            .as_ref()
            .is_some_and(|b| b.required && b.content_type == "application/json"));
        assert_eq!(v.schemas[0].properties.len(), 2);
        assert!(v.schemas[0]
            .properties
            .iter()
            .any(|p| p.name == "x" && p.required));
    }
}
