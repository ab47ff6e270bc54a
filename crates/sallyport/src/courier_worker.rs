//! Running the courier: in `serve --watch-courier`, or alone as `sallyport courier watch`.

use std::sync::Arc;

use anyhow::Context;

use sallyport_core::courier::CourierStore;
use sallyport_courier::{Channels, Dispatcher};

use crate::state::App;

pub fn dispatcher(app: &App) -> anyhow::Result<Dispatcher> {
    let channels = Channels::from_config_with(&app.settings.courier, app.outgoing.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("configuring courier channels")?;
    let store: Arc<dyn CourierStore> = app.store.clone();
    Ok(Dispatcher::new(store, channels, &app.settings.courier))
}
