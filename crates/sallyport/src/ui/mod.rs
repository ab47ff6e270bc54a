//! The built-in self-service pages under `/ui/`: a Kratos-style front end served by the public
//! listener and used as the `ui_url` of every flow the config leaves at Kratos' fallback. Pages ask
//! the public API for flows in-process, exactly as a browser front end asks over HTTP (cookies
//! forwarded), and render every `ui.nodes` entry generically, so methods added later appear
//! without page code. Plain HTML forms post to the flow's action; no script is needed.

mod account;
mod api;
mod flow_page;
mod i18n;
mod pages;
mod security;
mod templates;
mod view;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::state::AppState;

pub use i18n::Locales;

/// Adds the `/ui/` pages to the public router `r`; the pages call a copy of `r` for the API.
pub fn mount(r: Router<AppState>, app: &AppState) -> Router<AppState> {
    let api = api::Api::new(r.clone().with_state(app.clone()));
    let ui = Arc::new(pages::Ui::new(&app.settings, api));
    let pages = Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::home))
        .route("/ui/welcome", get(account::welcome))
        .route("/ui/logout", get(account::logout))
        .route("/ui/error", get(account::error))
        .route("/ui/sessions/revoke-others", post(account::revoke_others))
        .route("/ui/assets/style.css", get(pages::stylesheet))
        .route("/ui/assets/trigger.js", get(pages::bridge_script))
        .route("/ui/{page}", get(flow_page::flow))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(Extension(ui));
    r.merge(pages)
}
