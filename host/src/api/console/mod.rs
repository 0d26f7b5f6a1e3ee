//! The web console: server-rendered pages over the same engine and registry as the
//! JSON API, for the people who approve, fix and watch the work.
//!
//! Pages are HTML built with maud. One small script of our own (`assets/console.js`,
//! no framework, no build step, nothing from a CDN) adds the two things HTML cannot:
//! live pages (it listens to the API's Server-Sent Events and re-fetches the page's
//! `<main>`) and actions (each action form is sent as JSON to the documented API route,
//! with the session's CSRF token, so the console can do nothing the API does not
//! check). Reading works without the script; acting needs it.

mod audit;
mod exceptions;
mod graph;
mod html;
mod plugins;
mod runs;
mod session;
mod tasks;
mod workflows;

pub use session::{Sessions, SignedIn, has_cookie};

use super::Shared;
use super::auth::Access;
use super::error::ApiError;
use crate::url::segment;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

/// The header the console's script sends when it wants only a page's `<main>`.
const FRAGMENT_HEADER: &str = "x-baton-fragment";

/// The console's pages, sign-in and assets.
pub fn routes() -> Router<Shared> {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/runs") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(style))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::show))
        .route("/tasks", get(tasks::inbox))
        .route("/exceptions", get(exceptions::queue))
        .route("/plugins", get(plugins::list))
        .route("/workflows", get(workflows::list))
        .route("/workflows/{name}", get(workflows::show))
        .route("/audit", get(audit::query));
    pages.layer(axum::middleware::map_response(protect))
}

/// Headers on every console response, and errors (a malformed query, say) as pages.
async fn protect(response: Response) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let mut response = if response.status().is_client_error() && !is_html {
        // axum's own rejections are plain text; people get a page.
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 << 10)
            .await
            .unwrap_or_default();
        error_page(ApiError::new(
            status,
            "bad_request",
            String::from_utf8_lossy(&body).into_owned(),
        ))
    } else {
        response
    };
    let headers = response.headers_mut();
    // Pages hold the CSRF token and business data: not for caches. A live refresh
    // fetches the same URL for a fragment, which must not stand in for the page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static(FRAGMENT_HEADER));
    // Only our own script and styles, no framing (clickjacking), no type sniffing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A request for a console page by a signed-in user. Without a session it redirects
/// to the sign-in page, which comes back here afterwards.
pub struct Page {
    /// Who asked, and their session's CSRF token.
    pub signed: SignedIn,
    /// Only `<main>`'s content is wanted (a live refresh).
    fragment: bool,
    /// The engine's commit count before the handler read anything: a live page's
    /// stream starts with a change if the count has moved by the time it subscribes.
    seen: u64,
}

impl Page {
    /// Whether the user's role allows `access`.
    fn may(&self, access: Access) -> bool {
        self.signed.caller.role.allows(access)
    }

    /// Why the user may not do what needs `access` (for a disabled control), if so.
    fn refusal(&self, access: Access) -> Option<String> {
        self.signed.caller.require(access).err().map(|e| e.message)
    }

    /// The stream `url` from the commit this page was read at.
    fn live_url(&self, url: &str) -> String {
        let join = if url.contains('?') { '&' } else { '?' };
        format!("{url}{join}seen={}", self.seen)
    }

    /// The page `title`, with `body` as its `<main>`. With `live`, the page listens to
    /// that event stream and refreshes its `<main>` when something happens.
    fn render(
        &self,
        title: &str,
        section: Section,
        live: Option<String>,
        body: Markup,
    ) -> Response {
        if self.fragment {
            return Html(body.into_string()).into_response();
        }
        let caller = &self.signed.caller;
        let doc = html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, Some(&self.signed.csrf)))
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/runs" { "Baton" }
                        nav aria-label="Sections" {
                            ul {
                                @for (s, href, label) in SECTIONS {
                                    li {
                                        a href=(href) aria-current=[(s == section).then_some("page")] {
                                            (label)
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { (caller.user) " · " span.role { (caller.role) } }
                            form method="post" action="/logout" {
                                input type="hidden" name="_csrf" value=(self.signed.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                    div #flash role="status" aria-live="polite" {}
                    main #main data-live=[live.map(|url| self.live_url(&url))] tabindex="-1" { (body) }
                }
            }
        };
        Html(doc.into_string()).into_response()
    }
}

impl FromRequestParts<Shared> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Page, Response> {
        match state.sessions.signed_in(&state.tokens, &parts.headers) {
            Ok(Some(signed)) => Ok(Page {
                signed,
                fragment: parts.headers.contains_key(FRAGMENT_HEADER),
                seen: state.engine.commits(),
            }),
            Ok(None) => {
                let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                Err(Redirect::to(&format!("/login?next={}", segment(here))).into_response())
            }
            Err(e) => Err(error_page(e)),
        }
    }
}

/// The console's sections, in the order of the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Runs,
    Tasks,
    Exceptions,
    Plugins,
    Workflows,
    Audit,
}

const SECTIONS: [(Section, &str, &str); 6] = [
    (Section::Runs, "/runs", "Runs"),
    (Section::Tasks, "/tasks", "Tasks"),
    (Section::Exceptions, "/exceptions", "Exceptions"),
    (Section::Plugins, "/plugins", "Plugins"),
    (Section::Workflows, "/workflows", "Workflows"),
    (Section::Audit, "/audit", "Audit"),
];

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(csrf) = csrf { meta name="csrf-token" content=(csrf); }
            title { (title) " · Baton" }
            link rel="stylesheet" href="/assets/console.css";
            script src="/assets/console.js" defer {}
        }
    }
}

/// What a page handler returns: the page, or an error shown as a readable page.
type PageResult = Result<Response, PageError>;

/// An error while building a page, shown as HTML with the API's code and message.
pub struct PageError(ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> PageError {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.0)
    }
}

/// `error` as a page a person can read, with the way back.
pub fn error_page(error: ApiError) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Error", None))
            body {
                main #main.narrow {
                    h1 { "Something went wrong" }
                    div.error role="alert" {
                        p { (error.message) }
                        p.muted {
                            "HTTP " (error.status.as_u16()) " · code " code { (error.code) }
                            @if let Some(field) = &error.field { " · field " code { (field) } }
                        }
                    }
                    p { a href="/runs" { "Back to the runs" } " · " a href="/login" { "Sign in" } }
                }
            }
        }
    };
    (error.status, Html(doc.into_string())).into_response()
}

/// Whether a request comes from a browser that wants a page rather than JSON.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

#[derive(Deserialize, Default)]
struct LoginParams {
    #[serde(default)]
    next: String,
}

async fn login_page(axum::extract::Query(params): axum::extract::Query<LoginParams>) -> Response {
    login_form(StatusCode::OK, None, &params.next)
}

fn login_form(status: StatusCode, problem: Option<&str>, next: &str) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in", None))
            body {
                main #main.narrow {
                    h1 { "Sign in to Baton" }
                    form.card method="post" action="/login" {
                        @if let Some(problem) = problem {
                            div.error role="alert" #login-error { (problem) }
                        }
                        label for="token" { "Access token" }
                        input #token type="password" name="token" required autocomplete="current-password"
                            autofocus aria-describedby="token-help";
                        p #token-help.muted {
                            "Paste the token an admin gave you (it starts with " code { "bt_" } "). "
                            "An admin creates one with " code { "baton token create USER --role ROLE" } "."
                        }
                        input type="hidden" name="next" value=(next);
                        button.primary type="submit" { "Sign in" }
                    }
                }
            }
        }
    };
    (status, Html(doc.into_string())).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: a valid token opens a session and goes on to `next`.
async fn login(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_form(StatusCode::BAD_REQUEST, Some("Enter a token."), "");
    };
    // A sign-in form posted from another site would sign the browser in as someone
    // else (login CSRF); browsers say where a form came from.
    if !same_origin(&headers) {
        return login_form(
            StatusCode::FORBIDDEN,
            Some("This sign-in came from another site; open the console's own page."),
            &form.next,
        );
    }
    // A session the browser already had ends: signing in never continues another.
    state.sessions.sign_out(&headers);
    match state.sessions.sign_in(&state.tokens, &form.token) {
        Ok(Some(cookie)) => see_other(local_target(&form.next), Some(cookie)),
        Ok(None) => login_form(
            StatusCode::UNAUTHORIZED,
            Some("That token is unknown or revoked. Check that it was pasted whole."),
            &form.next,
        ),
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// `POST /logout`: ends the session (the form carries its CSRF token).
async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let sent = form.map(|Form(f)| f.csrf).unwrap_or_default();
    match state.sessions.signed_in(&state.tokens, &headers) {
        Ok(Some(signed)) => {
            if let Err(e) = session::check_csrf(&signed, Some(&sent)) {
                return error_page(e);
            }
        }
        Ok(None) => {}
        Err(e) => return error_page(e),
    }
    let cleared = state.sessions.sign_out(&headers);
    see_other("/login", Some(cleared))
}

/// `303 See Other` to `location` (a path [`local_target`] accepted).
fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/runs"));
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `next` if it is a path on this server; the runs page otherwise (no open redirect).
/// Only visible ASCII without `\` passes: browsers drop tabs and newlines from URLs and
/// read `\` as `/`, so `/<TAB>/evil.example` would otherwise leave the site.
fn local_target(next: &str) -> &str {
    let plain = next
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b'\\');
    if plain && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/runs"
    }
}

/// Whether the request's `Origin`, when it has one, is this server.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}

async fn script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

async fn style() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            // Assets change only with the binary; a short cache still spares reloads.
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_goes_only_to_local_pages() {
        assert_eq!(local_target("/runs/r1?x=1"), "/runs/r1?x=1");
        assert_eq!(local_target("//evil.example/x"), "/runs");
        assert_eq!(local_target("/\\evil.example"), "/runs");
        assert_eq!(local_target("https://evil.example"), "/runs");
        assert_eq!(local_target("/\t/evil.example"), "/runs");
        assert_eq!(local_target("/runs\nx"), "/runs");
        assert_eq!(local_target("/ü"), "/runs");
        assert_eq!(local_target(""), "/runs");
    }

    #[test]
    fn a_sign_in_from_another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
    }
}
