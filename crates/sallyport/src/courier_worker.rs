//! Running the courier: in `serve --watch-courier`, or alone as `sallyport courier watch`.

use std::sync::Arc;

use anyhow::Context;

use sallyport_core::courier::CourierStore;
use sallyport_courier::{Channels, Dispatcher};

use crate::outgoing::Outgoing;
use crate::state::App;

pub fn dispatcher(app: &App) -> anyhow::Result<Dispatcher> {
    let outgoing = sallyport_oidc::HttpClient::new(app.settings.web_hooks.http.clone())
        .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
    let channels = Channels::from_config_with(&app.settings.courier, Arc::new(Outgoing(outgoing)))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("configuring courier channels")?;
    let store: Arc<dyn CourierStore> = app.store.clone();
    Ok(Dispatcher::new(store, channels, &app.settings.courier))
}
