//! # baton-sdk: write Baton connectors and business rules in Rust
//!
//! A Baton plugin is a WebAssembly component built for `wasm32-wasip2`. A **connector**
//! offers actions that talk to the outside world (CRM, ERP, payments, AI models); a
//! **rule** makes a deterministic business decision. You write plain Rust functions over
//! serde types and export them with one macro, [`connector!`] or [`rule!`]; the SDK
//! derives each action's JSON Schemas, parses input, serialises output, and turns
//! mistakes into typed [`Failure`]s.
//!
//! `Cargo.toml`: `crate-type = ["cdylib"]`, and depend on `baton-sdk` and
//! `serde = { version = "1", features = ["derive"] }`. Build with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` is the component.
//!
//! A complete connector:
//!
//! ```rust
//! use baton_sdk::prelude::*;
//!
//! baton_sdk::connector! {
//!     name: "greeter", version: "0.1.0", description: "Greets people, remotely",
//!     hosts: ["api.greetings.example"], secrets: ["token"],
//!     actions: {
//!         "greet" => greet: "Say hello to someone",
//!         "send" => send: "Post a greeting to the greetings service",
//!     }
//! }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct GreetIn { name: String }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct GreetOut { greeting: String }
//!
//! fn greet(_ctx: &Call, input: GreetIn) -> Result<GreetOut, Failure> {
//!     if input.name.is_empty() {
//!         return Err(Failure::new("empty_name", "a greeting needs a name"));
//!     }
//!     Ok(GreetOut { greeting: format!("Hello, {}!", input.name) })
//! }
//!
//! fn send(ctx: &Call, input: GreetIn) -> Result<serde_json::Value, Failure> {
//!     let token = baton_sdk::config::secret("token")
//!         .ok_or_else(|| Failure::new("not_configured", "secret `token` is not granted"))?;
//!     let response = http::Request::new(http::Method::Post, "https://api.greetings.example/v1")
//!         .bearer(&token)
//!         .header("Idempotency-Key", &ctx.idempotency_key) // exactly-once at the far end
//!         .json(&serde_json::json!({ "to": input.name }))
//!         .send()?; // denied host -> `host_denied`, network trouble -> retryable `unreachable`
//!     baton_sdk::log::info(&format!("greetings service answered {}", response.status));
//!     Ok(response.json()?) // parsed JSON, or an `invalid_response` failure
//! }
//! ```
//!
//! A rule looks the same, with [`rule!`] and functions returning a [`Decision`]:
//!
//! ```rust
//! use baton_sdk::prelude::*;
//!
//! baton_sdk::rule! {
//!     name: "credit-limit", version: "0.1.0", description: "Credit checks",
//!     rules: {
//!         "within-limit" => within_limit: "Order total against the customer's limit"
//!             outcomes ["approve", "review"],
//!     }
//! }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Order { total: f64, limit: f64 }
//!
//! fn within_limit(order: Order) -> Result<Decision, Failure> {
//!     Ok(if order.total <= order.limit {
//!         Decision::new("approve").because("The order total is within the credit limit.")
//!     } else {
//!         Decision::new("review").because(format!(
//!             "The order total {:.2} exceeds the credit limit {:.2}.", order.total, order.limit
//!         ))
//!     })
//! }
//!
//! // The macros also define `BatonPlugin`, callable natively in unit tests:
//! let decision = BatonPlugin::evaluate("within-limit", r#"{"total": 5, "limit": 10}"#);
//! assert_eq!(decision.unwrap().outcome, "approve");
//! ```
//!
//! ## What each world may use
//!
//! | helper | connector | rule |
//! |---|---|---|
//! | [`log`] | yes | yes |
//! | [`config`], [`feedback`], [`http`] | yes | no: a rule imports nothing but `log` |
//!
//! A rule that calls a connector-only helper builds, but its component then imports an
//! interface the rule world does not offer, and Baton refuses to install it.
//!
//! Outside a component (native unit tests) the helpers degrade gracefully: `log` writes
//! to stderr, `config` and `feedback` return nothing, and `http` fails with
//! [`http::HttpError::Connection`].

#![warn(missing_docs)]

pub mod bindings;
pub mod config;
pub mod feedback;
pub mod http;
pub mod log;
mod types;

#[doc(hidden)]
pub mod __private;

pub use types::{Call, Decision, Failure};

/// What `describe` returns (`BatonPlugin::describe()` in a plugin crate): name, version,
/// actions with their JSON Schemas and outcomes, and requested capabilities.
pub use bindings::wit::types::{Action, Capabilities, PluginInfo};

/// JSON Schema generation (`#[derive(JsonSchema)]` on input and output types).
pub use schemars;
/// Re-exported so plugins can use `#[derive(Serialize, Deserialize)]` paths from here.
pub use serde;
/// JSON values, for free-form input and output and for failure details.
pub use serde_json;

/// Everything a plugin usually needs: `use baton_sdk::prelude::*;`.
///
/// Brings [`Call`], [`Failure`], [`Decision`], the [`http`] module, the `Serialize`,
/// `Deserialize` and `JsonSchema` derives, and the `serde_json` and `schemars` crates
/// (the `JsonSchema` derive refers to `schemars` by name, so it must be in scope).
pub mod prelude {
    pub use crate::http;
    pub use crate::{Call, Decision, Failure};
    pub use schemars::{self, JsonSchema};
    pub use serde::{Deserialize, Serialize};
    pub use serde_json;
}

/// Export a connector: its metadata, requested capabilities and actions.
///
/// ```text
/// baton_sdk::connector! {
///     name: "erp", version: "1.2.0", description: "Talks to the ERP",
///     hosts: ["erp.example.com"], secrets: ["api-key"],
///     actions: {
///         "get-purchase-order" => get_po: "Fetch a purchase order by number",
///         "post-invoice" => post_invoice: "Book an approved invoice",
///     }
/// }
/// ```
///
/// Each action function has the signature
/// `fn(&Call, I) -> Result<O, Failure>` where `I: Deserialize + JsonSchema` and
/// `O: Serialize + JsonSchema`; the schemas in `describe` are derived from `I` and `O`.
/// `invoke` dispatches on the action name: an unknown name fails with code
/// `unknown_action`, input that does not fit `I` with `invalid_input` (the message names
/// the offending field).
///
/// The macro defines a `pub struct BatonPlugin` with `describe()` and
/// `invoke(&Call, action, input_json)` for native unit tests, and exports it as the
/// component's `connector` world when building for `wasm32`. Use it once per crate.
#[macro_export]
macro_rules! connector {
    (
        name: $name:literal,
        version: $version:literal,
        description: $description:literal,
        hosts: [$($host:literal),* $(,)?],
        secrets: [$($secret:literal),* $(,)?],
        actions: {
            $($action:literal => $func:path : $action_description:literal),* $(,)?
        } $(,)?
    ) => {
        /// The plugin exported by `baton_sdk::connector!`.
        pub struct BatonPlugin;

        impl BatonPlugin {
            /// The plugin's name, version, actions (with schemas) and capabilities.
            pub fn describe() -> $crate::PluginInfo {
                $crate::__private::plugin_info(
                    $name,
                    $version,
                    $description,
                    ::std::vec![$(
                        $crate::__private::connector_action($action, $action_description, $func),
                    )*],
                    &[$($host),*],
                    &[$($secret),*],
                )
            }

            /// Run `action` on `input` (JSON text); the output is JSON text.
            pub fn invoke(
                call: &$crate::Call,
                action: &str,
                input: &str,
            ) -> ::core::result::Result<::std::string::String, $crate::Failure> {
                match action {
                    $($action => $crate::__private::run_action(call, action, input, $func),)*
                    _ => ::core::result::Result::Err($crate::__private::unknown_action(
                        action,
                        &[$($action),*],
                    )),
                }
            }
        }

        impl $crate::bindings::connector::Guest for BatonPlugin {
            fn describe() -> $crate::PluginInfo {
                BatonPlugin::describe()
            }

            fn invoke(
                ctx: $crate::__private::CallContext,
                action: ::std::string::String,
                input: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, $crate::__private::WitFailure> {
                let call = $crate::Call::from(ctx);
                BatonPlugin::invoke(&call, &action, &input).map_err(::core::convert::Into::into)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::connector::__export_connector_world!(
            BatonPlugin with_types_in $crate::bindings::connector
        );
    };
}

/// Export a rule plugin: its metadata and rules, each with the outcomes it may decide.
///
/// ```text
/// baton_sdk::rule! {
///     name: "invoice-rules", version: "0.1.0", description: "Invoice checks",
///     rules: {
///         "three-way-match" => three_way_match: "Invoice vs. PO vs. receipt"
///             outcomes ["approve", "review", "reject"],
///     }
/// }
/// ```
///
/// Each rule function has the signature `fn(I) -> Result<Decision, Failure>` where
/// `I: Deserialize + JsonSchema`. `evaluate` dispatches on the rule name (unknown name:
/// `unknown_action`; bad input: `invalid_input`) and fails with `invalid_outcome` if the
/// function returns an outcome the rule did not declare.
///
/// The macro defines a `pub struct BatonPlugin` with `describe()` and
/// `evaluate(rule, input_json)` for native unit tests, and exports it as the component's
/// `rule` world when building for `wasm32`. Use it once per crate.
#[macro_export]
macro_rules! rule {
    (
        name: $name:literal,
        version: $version:literal,
        description: $description:literal,
        rules: {
            $($rule:literal => $func:path : $rule_description:literal
                outcomes [$($outcome:literal),* $(,)?]),* $(,)?
        } $(,)?
    ) => {
        /// The plugin exported by `baton_sdk::rule!`.
        pub struct BatonPlugin;

        impl BatonPlugin {
            /// The plugin's name, version and rules (with schemas and outcomes).
            pub fn describe() -> $crate::PluginInfo {
                $crate::__private::plugin_info(
                    $name,
                    $version,
                    $description,
                    ::std::vec![$(
                        $crate::__private::rule_action(
                            $rule,
                            $rule_description,
                            &[$($outcome),*],
                            $func,
                        ),
                    )*],
                    &[],
                    &[],
                )
            }

            /// Evaluate the rule named `rule` on `input` (JSON text).
            pub fn evaluate(
                rule: &str,
                input: &str,
            ) -> ::core::result::Result<$crate::Decision, $crate::Failure> {
                match rule {
                    $($rule => $crate::__private::run_rule(rule, input, &[$($outcome),*], $func),)*
                    _ => ::core::result::Result::Err($crate::__private::unknown_action(
                        rule,
                        &[$($rule),*],
                    )),
                }
            }
        }

        impl $crate::bindings::rule::Guest for BatonPlugin {
            fn describe() -> $crate::PluginInfo {
                BatonPlugin::describe()
            }

            fn evaluate(
                rule: ::std::string::String,
                input: ::std::string::String,
            ) -> ::core::result::Result<$crate::__private::WitDecision, $crate::__private::WitFailure>
            {
                BatonPlugin::evaluate(&rule, &input)
                    .map(::core::convert::Into::into)
                    .map_err(::core::convert::Into::into)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::rule::__export_rule_world!(
            BatonPlugin with_types_in $crate::bindings::rule
        );
    };
}
