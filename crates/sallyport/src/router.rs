//! The public (4433) and admin (4434) routers, each route named after its Kratos operationId.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post};
use tower_http::catch_panic::CatchPanicLayer;

use sallyport_core::error::ApiError;

use crate::admin;
use crate::http::error::{HttpError, redirect};
use crate::public;
use crate::selfservice::method::oidc::callback as oidc_callback;
use crate::selfservice::{login, recovery, registration, settings, verification};
use crate::state::AppState;

pub fn public_router(app: AppState) -> Router {
    let flows = Router::new()
        .route(
            "/self-service/login/browser",
            get(login::create_browser_login_flow),
        )
        .route("/self-service/login/api", get(login::create_native_login_flow))
        .route("/self-service/login/flows", get(login::get_login_flow))
        .route(
            "/self-service/login",
            post(login::update_login_flow).get(login::update_login_flow),
        )
        .route(
            "/self-service/methods/oidc/callback/{provider}",
            get(oidc_callback::callback).post(oidc_callback::form_post),
        )
        .route(
            "/self-service/methods/oidc/callback",
            get(oidc_callback::generic_callback).post(oidc_callback::form_post),
        )
        .route(
            "/self-service/registration/browser",
            get(registration::create_browser_registration_flow),
        )
        .route(
            "/self-service/registration/api",
            get(registration::create_native_registration_flow),
        )
        .route(
            "/self-service/registration/flows",
            get(registration::get_registration_flow),
        )
        .route(
            "/self-service/registration",
            post(registration::update_registration_flow).get(registration::update_registration_flow),
        )
        .route(
            "/self-service/recovery/browser",
            get(recovery::create_browser_recovery_flow),
        )
        .route(
            "/self-service/recovery/api",
            get(recovery::create_native_recovery_flow),
        )
        .route("/self-service/recovery/flows", get(recovery::get_recovery_flow))
        .route(
            "/self-service/recovery",
            post(recovery::update_recovery_flow).get(recovery::update_recovery_flow),
        )
        .route(
            "/self-service/verification/browser",
            get(verification::create_browser_verification_flow),
        )
        .route(
            "/self-service/verification/api",
            get(verification::create_native_verification_flow),
        )
        .route(
            "/self-service/verification/flows",
            get(verification::get_verification_flow),
        )
        .route(
            "/self-service/verification",
            post(verification::update_verification_flow).get(verification::update_verification_flow),
        )
        .route(
            "/self-service/settings/browser",
            get(settings::create_browser_settings_flow),
        )
        .route(
            "/self-service/settings/api",
            get(settings::create_native_settings_flow),
        )
        .route("/self-service/settings/flows", get(settings::get_settings_flow))
        .route(
            "/self-service/settings",
            post(settings::update_settings_flow).get(settings::update_settings_flow),
        );
    // Per-IP budgets sit on the flow routes alone, and only when enabled (they are off by default):
    // whoami and every other route never pass through them.
    let flows = if app.settings.rate_limits.per_ip_enabled() {
        flows.route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::rate_limit::per_ip,
        ))
    } else {
        flows
    };
    let r = Router::new()
        .merge(flows)
        .route(
            "/self-service/logout/browser",
            get(public::logout::create_browser_logout_flow),
        )
        .route("/self-service/logout", get(public::logout::update_logout_flow))
        .route(
            "/self-service/logout/api",
            delete(public::logout::perform_native_logout),
        )
        .route("/self-service/errors", get(public::errors::get_flow_error))
        .route("/sessions/whoami", any(public::sessions::to_session))
        .route(
            "/sessions",
            get(public::sessions::list_my_sessions).delete(public::sessions::disable_my_other_sessions),
        )
        .route(
            "/sessions/token-exchange",
            get(crate::selfservice::token_exchange::exchange_session_token),
        )
        .route("/sessions/{id}", delete(public::sessions::disable_my_session))
        .route("/schemas", get(public::schemas::list_identity_schemas))
        .route("/schemas/{id}", get(public::schemas::get_identity_schema))
        .route("/admin/schemas", get(public::schemas::list_identity_schemas))
        .route("/admin/schemas/{id}", get(public::schemas::get_identity_schema))
        .route("/health/alive", get(public::health::is_alive))
        .route("/health/ready", get(public::health::is_ready_public))
        .route(
            "/.well-known/change-password",
            get(public::health::change_password),
        )
        .route(public::webauthn::PATH, get(public::webauthn::script))
        .route("/identities", any(to_admin))
        .route("/identities/{*rest}", any(to_admin))
        .route("/admin/{*rest}", any(to_admin))
        .route("/recovery/code", post(to_admin))
        .route("/recovery/link", post(to_admin));
    let r = crate::ui::mount(r, &app)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let r = with_cors(r, &app);
    finish(r, app, "public")
}

fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/identities",
            get(admin::identities::list_identities)
                .post(admin::identities::create_identity)
                .patch(admin::identities::batch_patch_identities),
        )
        .route(
            "/identities/{id}",
            get(admin::identities::get_identity)
                .put(admin::identities::update_identity)
                .patch(admin::identities::patch_identity)
                .delete(admin::identities::delete_identity),
        )
        .route(
            "/identities/by/external/{external_id}",
            get(admin::identities::get_identity_by_external_id),
        )
        .route(
            "/identities/{id}/credentials/{cred_type}",
            delete(admin::identities::delete_identity_credentials),
        )
        .route(
            "/identities/{id}/sessions",
            get(admin::sessions::list_identity_sessions).delete(admin::sessions::delete_identity_sessions),
        )
        .route(
            "/sessions",
            get(admin::sessions::list_sessions).post(admin::sessions::manage_sessions),
        )
        .route(
            "/sessions/{id}",
            get(admin::sessions::get_session).delete(admin::sessions::disable_session),
        )
        .route("/sessions/{id}/extend", patch(admin::sessions::extend_session))
        .route("/courier/messages", get(admin::courier::list_courier_messages))
        .route("/courier/messages/{id}", get(admin::courier::get_courier_message))
        .route(
            "/recovery/code",
            post(admin::recovery::create_recovery_code_for_identity),
        )
        .route(
            "/recovery/link",
            post(admin::recovery::create_recovery_link_for_identity),
        )
        .route("/health/alive", get(public::health::is_alive))
        .route("/health/ready", get(public::health::is_ready_admin))
        .route("/version", get(admin::version::get_version))
        .route("/health/config", get(admin::version::config_hash))
        .route("/metrics/prometheus", get(admin::version::prometheus))
}

/// Kratos serves every admin route with and without the `/admin` prefix.
pub fn admin_router(app: AppState) -> Router {
    let r = Router::new()
        .nest("/admin", admin_routes())
        .merge(admin_routes())
        .route("/self-service/{*rest}", any(to_public))
        .route("/schemas", get(public::schemas::list_identity_schemas))
        .route("/schemas/{id}", get(public::schemas::get_identity_schema))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    finish(r, app, "admin")
}

fn finish(r: Router<AppState>, app: AppState, listener: &'static str) -> Router {
    let public = listener == "public";
    r.layer(middleware::from_fn_with_state(
        app.clone(),
        move |state, req, next| around(state, req, next, public),
    ))
    .layer(CatchPanicLayer::custom(|_| {
        tracing::error!("a request handler panicked");
        HttpError(ApiError::internal()).into_response()
    }))
    .with_state(app)
}

/// Everything every request gets, in one layer (fewer boxed futures on the hot path): NUL refused
/// in the path and query and a path that is not UTF-8 (no handler or backend sees either), the
/// migration gate, metrics and logs, Kratos' no-cache header on GETs, and `Vary: Cookie` on the
/// public port.
async fn around(State(app): State<AppState>, req: Request, next: Next, public: bool) -> Response {
    let is_get = req.method() == Method::GET;
    // Every health route, public or admin, with or without the `/admin` prefix (a substring search
    // here was ~1 % of a whoami's CPU).
    let path = req.uri().path();
    let health = path.starts_with("/health/") || path.starts_with("/admin/health/");
    let mut res = if let Some(e) = crate::http::request::uri_problem(req.uri()) {
        HttpError(e).into_response()
    } else if health || app.migrations_applied.load(std::sync::atomic::Ordering::Relaxed) {
        crate::http::error::envelope_for_plain_rejection(observe(req, next).await).await
    } else {
        HttpError(
            ApiError::new(503)
                .with_reason(
                    "The database has pending migrations. Run `sallyport migrate sql -e --yes` and retry.",
                )
                .with_message("The service is not ready"),
        )
        .into_response()
    };
    every_response_headers(&mut res, is_get, public);
    res
}

/// Kratos' no-cache on GETs, unless the handler chose otherwise (the built-in UI's versioned
/// stylesheet), and `Vary: Cookie` on the public port.
pub(crate) fn every_response_headers(res: &mut Response, is_get: bool, public: bool) {
    if is_get {
        res.headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static(
                "private, no-cache, no-store, must-revalidate",
            ));
    }
    if public {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Cookie"));
    }
}

fn with_cors(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    let Some(c) = &app.settings.cors else { return r };
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = c.allowed_origins.clone();
    let allow_origin = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        let o = origin.to_str().unwrap_or("");
        origins.iter().any(|a| {
            a == "*"
                || a == o
                || a.strip_prefix("*.")
                    .is_some_and(|suf| o.ends_with(&format!(".{suf}")))
        })
    });
    let methods: Vec<Method> = c.allowed_methods.iter().filter_map(|m| m.parse().ok()).collect();
    let headers: Vec<header::HeaderName> = c.allowed_headers.iter().filter_map(|h| h.parse().ok()).collect();
    let exposed: Vec<header::HeaderName> = c.exposed_headers.iter().filter_map(|h| h.parse().ok()).collect();
    let mut layer = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(methods)
        .allow_headers(headers)
        .expose_headers(exposed);
    if c.allow_credentials {
        layer = layer.allow_credentials(true);
    }
    if let Some(age) = c.max_age {
        layer = layer.max_age(std::time::Duration::from_secs(age));
    }
    r.layer(layer)
}

/// A known path with a method it does not serve: the JSON envelope, as every other refusal (axum's default is an
/// empty body without a content type).
async fn method_not_allowed() -> Response {
    HttpError(ApiError::new(405).with_reason("This endpoint does not accept this HTTP method."))
        .into_response()
}

async fn not_found() -> Response {
    HttpError(ApiError::not_found("The requested resource could not be found")).into_response()
}

fn cross_port(base: &url::Url, req: &Request) -> Response {
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let to = format!("{}{}", base.as_str().trim_end_matches('/'), pq);
    redirect(StatusCode::TEMPORARY_REDIRECT, &to)
}

async fn to_admin(State(app): State<AppState>, req: Request) -> Response {
    cross_port(&app.settings.admin_base_url, &req)
}

async fn to_public(State(app): State<AppState>, req: Request) -> Response {
    cross_port(&app.settings.public_base_url, &req)
}

/// Request counts and latency per route and status, for `/admin/metrics/prometheus`.
async fn observe(req: Request, next: Next) -> Response {
    // A clone of the matched path shares its text; no copy per request.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(req.method());
    let started = Instant::now();
    let res = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    let note = res.extensions().get::<crate::http::error::RefusalNote>();
    account(route, method, res.status().as_u16(), elapsed, note);
    res
}

/// The log line and the request histogram of one answered request.
pub(crate) fn account(
    route: &str,
    method: &'static str,
    status: u16,
    elapsed: f64,
    note: Option<&crate::http::error::RefusalNote>,
) {
    match note {
        _ if status >= 500 => tracing::warn!(route, elapsed, status, "request failed"),
        Some(n) => tracing::debug!(
            route,
            elapsed,
            status,
            error_id = %n.error_id,
            reason = %n.reason,
            "request refused"
        ),
        None => tracing::debug!(route, elapsed, status, "request"),
    }
    request_histogram(route, method, status).record(elapsed);
}

/// One histogram per route, method and status: its `_count` series is the request count. The handles are
/// kept per thread, because building the labelled key and finding it in the registry on every request cost
/// more than the rest of this middleware (measured on whoami).
fn request_histogram(route: &str, method: &'static str, status: u16) -> metrics::Histogram {
    type Handles = std::collections::HashMap<String, Vec<(&'static str, u16, metrics::Histogram)>>;
    thread_local! {
        static HANDLES: std::cell::RefCell<Handles> = Default::default();
    }
    HANDLES.with_borrow_mut(|handles| {
        if let Some(h) = handles
            .get(route)
            .and_then(|v| v.iter().find(|(m, s, _)| *m == method && *s == status))
        {
            return h.2.clone();
        }
        let h = metrics::histogram!(
            "http_request_duration_seconds",
            "route" => route.to_owned(),
            "method" => method,
            "status" => status.to_string()
        );
        handles
            .entry(route.to_owned())
            .or_default()
            .push((method, status, h.clone()));
        h
    })
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
