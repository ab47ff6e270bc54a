//! The `oidc` method as a plug-in (Kratos `selfservice/strategy/oidc`): provider buttons on login and
//! registration flows, the redirect to the provider, and — in [`callback`] — signing in or registering
//! whoever the provider vouches for. The ceremony itself (state, nonce, PKCE, token exchange, id_token
//! checks, the Jsonnet mapper, token encryption) is `sallyport-oidc`'s.

pub mod callback;
mod settings;
mod traits;

use async_trait::async_trait;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind};
use sallyport_core::session::Aal;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use sallyport_oidc::{AuthOptions, Cipher, EncryptedTokens, HttpClient, OidcError, Providers};

use super::{Body, Cx, LoginMethod, LoginNeeds, LoginStep, RegistrationMethod, RegistrationStep, Screen};
use crate::http::body::str_field;
use crate::http::error::{HttpError, redirect};
use crate::selfservice::common::{FlowFailure, ensure_csrf};
use crate::settings::OidcSettings;
use crate::state::App;

pub const ID: &str = "oidc";
/// Where the pending sign-in waits on the flow: the internal context, never rendered to clients.
pub(crate) const PENDING: &str = "oidc_pending";
/// Traits submitted with the form that continues a sign-up (Kratos keeps them in its continuity container).
pub(crate) const SUBMITTED_TRAITS: &str = "oidc_traits";

pub struct Oidc {
    pub(crate) providers: Providers,
    pub(crate) cipher: Cipher,
}

impl Oidc {
    pub fn new(settings: &OidcSettings, public_base: &url::Url) -> anyhow::Result<Oidc> {
        let http = HttpClient::new(settings.http.clone())
            .map_err(|e| anyhow::anyhow!("building the OIDC HTTP client: {e:?}"))?;
        Ok(Oidc {
            providers: Providers::new(&settings.config, public_base, http),
            cipher: settings.cipher.clone(),
        })
    }

    /// Relabels the login buttons "Confirm with …" (1010018), as on Kratos' account-linking login flow.
    pub(crate) fn confirm_labels(&self, flow: &mut Flow) {
        for p in self.providers.iter() {
            let c = p.config();
            for n in flow.ui.nodes.iter_mut().filter(|n| {
                n.group == Group::Oidc
                    && n.input_attrs().is_some_and(|a| {
                        a.name == "provider"
                            && a.value.as_ref().and_then(Value::as_str) == Some(c.id.as_str())
                    })
            }) {
                n.meta.label = Some(text::login_confirm_with_provider(c.display_label()));
            }
        }
    }

    fn buttons(&self, label: impl Fn(&str, &str) -> text::Message) -> Vec<Node> {
        self.providers
            .iter()
            .map(|p| {
                let c = p.config();
                Node::submit(Group::Oidc, "provider", &c.id, label(c.display_label(), &c.id))
            })
            .collect()
    }

    /// Sends the browser to the provider; the pending sign-in is kept on the flow.
    async fn start(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Body,
        provider_id: &str,
        kind: sallyport_oidc::FlowKind,
    ) -> Result<Response, FlowFailure> {
        if kind != sallyport_oidc::FlowKind::Settings {
            // Settings checks CSRF for every method before asking them.
            ensure_csrf(cx.app, cx.req, flow, str_field(body, "csrf_token"))?;
        }
        let provider = self.providers.get(provider_id).map_err(api_error)?;
        let options = AuthOptions::default().with_upstream_parameters(body.get("upstream_parameters"));
        let request = provider
            .authorization_request(flow.id, kind, &options)
            .await
            .map_err(api_error)?;
        flow.internal_context[PENDING] =
            serde_json::to_value(&request.pending).map_err(|_| FlowFailure::Api(ApiError::internal()))?;
        traits::keep_submitted(flow, body);
        flow.updated_at = time_fmt::now();
        cx.app.store.update_flow(flow).await?;
        let to = request.url.to_string();
        Ok(if flow.is_browser() && !cx.req.is_json {
            redirect(StatusCode::SEE_OTHER, &to)
        } else {
            HttpError(ApiError::browser_location_change_required(&to)).into_response()
        })
    }

    /// Kratos' native sign-in: an `id_token` (and `id_token_nonce`) the app obtained with the provider's
    /// SDK, verified against the provider's keys, then the same login-or-registration as a callback.
    async fn submit_id_token(
        &self,
        cx: &Cx<'_>,
        flow: &Flow,
        body: &Body,
        id_token: &str,
    ) -> Result<Response, FlowFailure> {
        ensure_csrf(cx.app, cx.req, flow, str_field(body, "csrf_token"))?;
        let mut flow = flow.clone();
        traits::keep_submitted(&mut flow, body);
        let provider = self
            .providers
            .get(str_field(body, "provider").unwrap_or(""))
            .map_err(api_error)?;
        let authenticated = provider
            .verify_id_token_submission(id_token, str_field(body, "id_token_nonce"))
            .await
            .map_err(api_error)?;
        Ok(callback::finish(cx.app, cx.req, self, flow, &provider, authenticated).await)
    }

    /// The credential config as the admin API shows it with `include_credential=oidc`: tokens decrypted
    /// (Kratos' "declassified" credentials). A token that does not decrypt is shown empty.
    pub fn declassify(&self, config: &Value) -> Value {
        let mut config = config.clone();
        if let Some(list) = config.get_mut("providers").and_then(Value::as_array_mut) {
            for p in list {
                let sealed: EncryptedTokens = serde_json::from_value(p.clone()).unwrap_or_default();
                let open = sealed.decrypt(&self.cipher).ok();
                let field = |f: Option<String>| json!(f.unwrap_or_default());
                p["initial_id_token"] = field(open.as_ref().and_then(|t| t.id_token.clone()));
                p["initial_access_token"] = field(open.as_ref().map(|t| t.access_token.clone()));
                p["initial_refresh_token"] = field(open.as_ref().and_then(|t| t.refresh_token.clone()));
            }
        }
        config
    }
}

/// An engine error with Kratos' status and reason: 400s become a message on the flow, others the error page.
pub(crate) fn api_error(e: OidcError) -> FlowFailure {
    tracing::debug!(step = e.step().as_str(), error = %e, "oidc sign-in refused");
    FlowFailure::Api(ApiError::new(e.status()).with_reason(e.reason()))
}

/// Kratos' oidc strategy answers for a `provider` however the form was sent: `method: oidc`, or a plain
/// HTML form that sent only the clicked `provider` button.
fn is_mine(body: &Body) -> bool {
    match str_field(body, "method") {
        Some(m) if !m.is_empty() => m == ID,
        _ => str_field(body, "provider").is_some_and(|p| !p.is_empty()),
    }
}

#[async_trait]
impl LoginMethod for Oidc {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>) {
        if needs.aal != Aal::Aal1 {
            return;
        }
        let mut buttons = self.buttons(text::login_with_provider);
        // Re-authentication offers only the providers the signed-in identity is linked to (Kratos).
        if let Some(a) = needs.auth.filter(|_| needs.refresh) {
            let linked = settings::linked(&a.identity);
            buttons.retain(|b| {
                b.input_attrs()
                    .and_then(|i| i.value.as_ref())
                    .and_then(Value::as_str)
                    .is_some_and(|v| linked.iter().any(|l| l == v))
            });
        }
        flow.ui.nodes.extend(buttons);
    }

    fn handles(&self, _app: &App, flow: &Flow, body: &Body) -> bool {
        flow.requested_aal == Aal::Aal1 && is_mine(body)
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
        if let Some(t) = str_field(body, "id_token").filter(|t| !t.is_empty()) {
            return Ok(LoginStep::Respond(self.submit_id_token(cx, flow, body, t).await?));
        }
        let pid = str_field(body, "provider").unwrap_or("");
        let res = self
            .start(cx, flow, body, pid, sallyport_oidc::FlowKind::Login)
            .await?;
        Ok(LoginStep::Respond(res))
    }
}

#[async_trait]
impl RegistrationMethod for Oidc {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, nodes: &mut Vec<Node>, screen: Screen) {
        if screen != Screen::Credentials {
            nodes.extend(self.buttons(text::registration_with_provider));
        }
    }

    fn handles(&self, _app: &App, _flow: &Flow, body: &Body) -> bool {
        is_mine(body)
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Body,
        _schema_id: &str,
    ) -> Result<RegistrationStep, FlowFailure> {
        if let Some(t) = str_field(body, "id_token").filter(|t| !t.is_empty()) {
            return Ok(RegistrationStep::Respond(
                self.submit_id_token(cx, flow, body, t).await?,
            ));
        }
        let pid = str_field(body, "provider").unwrap_or("");
        let res = self
            .start(cx, flow, body, pid, sallyport_oidc::FlowKind::Registration)
            .await?;
        Ok(RegistrationStep::Respond(res))
    }
}

pub(crate) fn flow_kind(kind: sallyport_oidc::FlowKind) -> FlowKind {
    match kind {
        sallyport_oidc::FlowKind::Login => FlowKind::Login,
        sallyport_oidc::FlowKind::Registration => FlowKind::Registration,
        sallyport_oidc::FlowKind::Settings => FlowKind::Settings,
    }
}

/// One entry of the `oidc` credential's `providers`, its tokens sealed with `secrets.cipher`.
pub(crate) fn credential_entry(
    oidc: &Oidc,
    provider: &sallyport_oidc::Provider,
    authenticated: &sallyport_oidc::Authenticated,
) -> Result<Value, OidcError> {
    let sealed = match &authenticated.tokens {
        Some(t) => t.encrypt(&oidc.cipher)?,
        None => EncryptedTokens::default(),
    };
    let mut entry = json!({
        "subject": authenticated.claims.subject,
        "provider": provider.config().id,
        "initial_id_token": sealed.initial_id_token,
        "initial_access_token": sealed.initial_access_token,
        "initial_refresh_token": sealed.initial_refresh_token,
    });
    if let Some(org) = &provider.config().organization_id {
        entry["organization"] = json!(org);
    }
    Ok(entry)
}
