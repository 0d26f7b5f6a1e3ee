//! Routes are registered through [`Routes`], which records each one's documentation as
//! it adds the handler: `/openapi.json` is generated from the same calls that build the
//! router, so the two cannot drift apart.

use super::Shared;
use super::auth::Access;
use axum::Router;
use axum::handler::Handler;
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

const JSON: &str = "application/json";

/// The document `/openapi.json` serves, made when the router is.
pub static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();

/// The documentation of one operation.
#[derive(Clone, Debug)]
pub struct Doc {
    pub summary: &'static str,
    /// The role check it makes; `None`: no token needed.
    pub access: Option<Access>,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// Request headers it reads: name and description.
    pub headers: &'static [(&'static str, &'static str)],
    /// The request body's media type, if it takes one.
    pub body: Option<&'static str>,
    /// Success statuses.
    pub ok: &'static [u16],
    /// The media type of a success.
    pub returns: &'static str,
    /// Error statuses beyond 401 and 403 (which every authenticated route has).
    pub errors: &'static [u16],
    /// A path parameter that takes one of a few words, and the words.
    pub choice: Option<(&'static str, &'static [&'static str])>,
}

impl Doc {
    /// A JSON operation answering 200, that `access` may call.
    pub const fn new(summary: &'static str, access: Access) -> Doc {
        Doc {
            summary,
            access: Some(access),
            query: &[],
            headers: &[],
            body: None,
            ok: &[200],
            returns: JSON,
            errors: &[],
            choice: None,
        }
    }

    /// Path parameter `name` is one of `words`.
    pub const fn one_of(mut self, name: &'static str, words: &'static [&'static str]) -> Doc {
        self.choice = Some((name, words));
        self
    }

    pub const fn public(mut self) -> Doc {
        self.access = None;
        self
    }

    pub const fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Doc {
        self.query = query;
        self
    }

    pub const fn headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Doc {
        self.headers = headers;
        self
    }

    /// Takes a JSON body.
    pub const fn json_body(self) -> Doc {
        self.body(JSON)
    }

    pub const fn body(mut self, media_type: &'static str) -> Doc {
        self.body = Some(media_type);
        self
    }

    pub const fn ok(mut self, ok: &'static [u16]) -> Doc {
        self.ok = ok;
        self
    }

    pub const fn returns(mut self, media_type: &'static str) -> Doc {
        self.returns = media_type;
        self
    }

    pub const fn errors(mut self, errors: &'static [u16]) -> Doc {
        self.errors = errors;
        self
    }
}

/// One documented operation.
#[derive(Clone, Debug)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub doc: Doc,
}

/// The router being built, with the documentation of every route added to it.
pub struct Routes {
    router: Router<Shared>,
    operations: Vec<Operation>,
}

impl Default for Routes {
    fn default() -> Routes {
        Routes::new()
    }
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    pub fn get<H: Handler<T, Shared>, T: 'static>(
        self,
        path: &'static str,
        doc: Doc,
        h: H,
    ) -> Routes {
        self.add("get", path, doc, get(h))
    }

    pub fn post<H: Handler<T, Shared>, T: 'static>(
        self,
        path: &'static str,
        doc: Doc,
        h: H,
    ) -> Routes {
        self.add("post", path, doc, post(h))
    }

    pub fn delete<H: Handler<T, Shared>, T: 'static>(
        self,
        path: &'static str,
        doc: Doc,
        h: H,
    ) -> Routes {
        self.add("delete", path, doc, delete(h))
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        doc: Doc,
        route: axum::routing::MethodRouter<Shared>,
    ) -> Routes {
        self.router = self.router.route(path, route);
        self.operations.push(Operation { method, path, doc });
        self
    }

    /// The router, and the OpenAPI document of everything in it.
    pub fn finish(self) -> (Router<Shared>, Value) {
        let document = document(&self.operations);
        (self.router, document)
    }
}

/// The OpenAPI 3.1 document of `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let mut paths = Map::new();
    for op in operations {
        let item = paths
            .entry(op.path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path items are objects");
        item.insert(op.method.into(), operation(op));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Baton",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The execution layer for business workflows: plugins, workflows, runs, people in the loop. See docs/api.md."
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string", "description": "Stable, machine-readable" },
                            "message": { "type": "string" },
                            "field": { "type": "string", "description": "The part of the request at fault" },
                            "details": {}
                        }
                    }}
                }
            }
        }
    })
}

fn operation(op: &Operation) -> Value {
    let doc = &op.doc;
    let mut parameters: Vec<Value> = path_parameters(op.path)
        .map(|name| {
            let schema = match doc.choice {
                Some((choice, words)) if choice == name => json!({"type": "string", "enum": words}),
                _ => json!({"type": "string"}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    parameters.extend(doc.query.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    parameters.extend(doc.headers.iter().map(|(name, description)| {
        json!({"name": name, "in": "header", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    let mut responses = Map::new();
    for status in doc.ok {
        responses.insert(
            status.to_string(),
            json!({"description": "Success", "content": { doc.returns: {} }}),
        );
    }
    let auth: &[u16] = if doc.access.is_some() {
        &[401, 403]
    } else {
        &[]
    };
    for status in auth.iter().chain(doc.errors) {
        responses.insert(
            status.to_string(),
            json!({"description": "Error", "content": { JSON: { "schema": { "$ref": "#/components/schemas/Error" } } }}),
        );
    }
    let mut out = json!({
        "summary": doc.summary,
        "operationId": format!("{}_{}", op.method, op.path.trim_start_matches('/').replace(['/', '{', '}'], "_")),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(access) = doc.access {
        out["security"] = json!([{"bearer": []}]);
        out["x-baton-access"] = json!(format!("{access:?}").to_lowercase());
    }
    if let Some(media_type) = doc.body {
        out["requestBody"] = json!({"content": { media_type: {} }});
    }
    out
}

/// The `{name}` segments of a path.
pub fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}
