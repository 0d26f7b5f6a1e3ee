//! Routes are registered through [`Routes`], which records each one's documentation as
//! it adds the handler: `/openapi.json` is generated from the same calls that build the
//! router, so the two cannot drift apart. Request and response bodies are described by
//! the JSON Schemas of the Rust types the handlers parse and answer with (schemars), so a
//! field added to a type is documented with it.

use super::Shared;
use super::auth::Access;
use axum::Router;
use axum::handler::Handler;
use axum::routing::{delete, get, post};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

const JSON: &str = "application/json";

/// The document `/openapi.json` serves, made when the router is.
pub static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();

/// Where body schemas live in the document.
const SCHEMAS: &str = "#/components/schemas/";

/// Adds a type's schema to a generator and returns the schema (or a `$ref` to it).
type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// `T`'s own schema, never a `$ref`: its properties become query parameters.
fn fields_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    T::json_schema(generator)
}

/// The documentation of one operation.
#[derive(Clone, Debug)]
pub struct Doc {
    pub summary: &'static str,
    /// The role check it makes; `None`: no token needed.
    pub access: Option<Access>,
    /// The query string's type: each field is a parameter, its doc comment the
    /// parameter's description.
    pub query: Option<SchemaOf>,
    /// Request headers it reads: name and description.
    pub headers: &'static [(&'static str, &'static str)],
    /// The request body's media type, if it takes one.
    pub body: Option<&'static str>,
    /// The JSON request body's type, when it has a fixed shape.
    pub request: Option<SchemaOf>,
    /// The JSON type of a success's body.
    pub response: Option<SchemaOf>,
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
            query: None,
            headers: &[],
            body: None,
            request: None,
            response: None,
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

    /// Reads its query string as `T` (the handler's `Params<T>`).
    pub const fn query<T: JsonSchema>(mut self) -> Doc {
        self.query = Some(fields_of::<T>);
        self
    }

    pub const fn headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Doc {
        self.headers = headers;
        self
    }

    /// Takes a JSON body of any shape.
    pub const fn json_body(self) -> Doc {
        self.body(JSON)
    }

    /// Takes a JSON body that parses as `T`.
    pub const fn takes<T: JsonSchema>(mut self) -> Doc {
        self.request = Some(schema_of::<T>);
        self.body(JSON)
    }

    /// Answers a success with `T` as JSON.
    pub const fn gives<T: JsonSchema>(mut self) -> Doc {
        self.response = Some(schema_of::<T>);
        self
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
    let mut bodies = BodySchemas::new();
    let mut paths = Map::new();
    for op in operations {
        let item = paths
            .entry(op.path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path items are objects");
        item.insert(op.method.into(), operation(op, &mut bodies));
    }
    let mut schemas = bodies.finish(&mut paths);
    schemas.insert("Error".into(), error_schema());
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
            "schemas": schemas,
        }
    })
}

fn error_schema() -> Value {
    json!({
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
    })
}

/// Generates the schemas of request and response bodies. A type can read differently
/// from how it is written (a field with a default is optional in a request but always
/// present in an answer), so requests and responses have a generator each.
struct BodySchemas {
    requests: SchemaGenerator,
    responses: SchemaGenerator,
}

impl BodySchemas {
    fn new() -> BodySchemas {
        let settings = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = SCHEMAS.into();
            s.meta_schema = None;
        });
        BodySchemas {
            requests: settings.clone().for_deserialize().into_generator(),
            responses: settings.for_serialize().into_generator(),
        }
    }

    /// Every named schema, for `components/schemas`. A request type whose schema differs
    /// from the response type of the same name is renamed `NAMEInput`, and every
    /// reference to it in `paths` and in the other request schemas with it.
    fn finish(mut self, paths: &mut Map<String, Value>) -> Map<String, Value> {
        let mut schemas = self.responses.take_definitions(true);
        let mut inputs = self.requests.take_definitions(true);
        let clashes: Vec<String> = inputs
            .iter()
            .filter(|(name, schema)| schemas.get(*name).is_some_and(|s| s != *schema))
            .map(|(name, _)| name.clone())
            .collect();
        let renamed: Vec<(String, String)> = clashes
            .iter()
            .map(|name| (format!("{SCHEMAS}{name}"), format!("{SCHEMAS}{name}Input")))
            .collect();
        if !renamed.is_empty() {
            inputs.values_mut().for_each(|s| rename_refs(s, &renamed));
            for op in paths.values_mut().filter_map(Value::as_object_mut) {
                for body in op.values_mut().filter_map(|o| o.get_mut("requestBody")) {
                    rename_refs(body, &renamed);
                }
            }
        }
        for (name, schema) in inputs {
            let name = match clashes.contains(&name) {
                true => format!("{name}Input"),
                false => name,
            };
            schemas.insert(name, schema);
        }
        schemas
    }
}

/// Points every `$ref` in `value` that names a `from` of `renamed` at its `to`.
fn rename_refs(value: &mut Value, renamed: &[(String, String)]) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                match child {
                    Value::String(target) if key == "$ref" => {
                        if let Some((_, to)) = renamed.iter().find(|(from, _)| from == target) {
                            *target = to.clone();
                        }
                    }
                    _ => rename_refs(child, renamed),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renamed)),
        _ => {}
    }
}

fn operation(op: &Operation, bodies: &mut BodySchemas) -> Value {
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
    if let Some(query) = doc.query {
        parameters.extend(query_parameters(query(&mut bodies.requests).to_value()));
    }
    parameters.extend(doc.headers.iter().map(|(name, description)| {
        json!({"name": name, "in": "header", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    let mut responses = Map::new();
    let success = match doc.response {
        Some(schema) => json!({ "schema": schema(&mut bodies.responses) }),
        None => json!({}),
    };
    for status in doc.ok {
        responses.insert(
            status.to_string(),
            json!({"description": "Success", "content": { doc.returns: success }}),
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
        let content = match doc.request {
            Some(schema) => json!({ "schema": schema(&mut bodies.requests) }),
            None => json!({}),
        };
        out["requestBody"] = json!({"content": { media_type: content }});
    }
    out
}

/// The query parameters of a query string type's `schema`: one per property, with the
/// property's description, required when the type requires it.
fn query_parameters(schema: Value) -> Vec<Value> {
    let required = &schema["required"];
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"));
            // A missing parameter is how a query string says "none".
            if let Some(kinds) = property["type"].as_array_mut() {
                kinds.retain(|k| k != "null");
                if kinds.len() == 1 {
                    property["type"] = kinds[0].clone();
                }
            }
            let mut parameter = json!({
                "name": name,
                "in": "query",
                "required": required.as_array().is_some_and(|r| r.contains(&json!(name))),
                "schema": property,
            });
            if let Some(description) = description {
                parameter["description"] = description;
            }
            parameter
        })
        .collect()
}

/// The `{name}` segments of a path.
pub fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(o) => {
                out.extend(o.get("$ref").and_then(Value::as_str));
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    /// Read with a default, written always: its request and response schemas differ.
    #[derive(serde::Serialize, serde::Deserialize, JsonSchema)]
    struct Note {
        #[serde(default)]
        text: String,
    }

    /// Holds a `Note`, so a request schema refers to the renamed one.
    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Notes {
        notes: Vec<Note>,
    }

    #[test]
    fn every_reference_resolves() {
        let (_, document) = crate::api::routes().finish();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(found.len() > 20, "{found:?}");
        for target in found {
            assert!(
                document.pointer(&target[1..]).is_some(),
                "dangling {target}"
            );
        }
    }

    #[test]
    fn a_request_type_that_reads_differently_gets_a_name_of_its_own() {
        let operation = |method, doc| Operation {
            method,
            path: "/notes",
            doc,
        };
        let document = document(&[
            operation("get", Doc::new("Notes", Access::Read).gives::<Note>()),
            operation("post", Doc::new("Add", Access::Operate).takes::<Notes>()),
        ]);
        let schemas = &document["components"]["schemas"];
        assert_eq!(schemas["Note"]["required"], json!(["text"]));
        assert!(schemas["NoteInput"]["required"].is_null(), "{schemas:#}");
        assert_eq!(
            schemas["Notes"]["properties"]["notes"]["items"]["$ref"],
            "#/components/schemas/NoteInput"
        );
        let answer = &document["paths"]["/notes"]["get"]["responses"]["200"];
        assert_eq!(
            answer["content"][JSON]["schema"]["$ref"],
            "#/components/schemas/Note"
        );
    }
}
