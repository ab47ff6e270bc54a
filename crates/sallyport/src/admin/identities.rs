//! The admin identity API (Kratos `identity/handler.go`, `handler_import.go`).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use uuid::Uuid;

use sallyport_core::error::ApiError;
use sallyport_core::identity::{Identity, IdentityState, credential_type};
use sallyport_core::store::{IdentityQuery, StoreError};
use sallyport_core::time_fmt;

use crate::http::body::RawBody;
use crate::http::error::{HttpError, json as json_res, json_of, store_error};
use crate::http::request::ReqInfo;
use crate::identities::apply_traits;
use crate::pagination::{Page, PageQuery, keyset_link, legacy_headers};
use crate::render::{self, IdentityView};
use crate::state::{App, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfig {
    hashed_password: Option<String>,
    password: Option<String>,
    use_password_migration_hook: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordCredentials {
    config: Option<PasswordConfig>,
}

#[derive(Debug, Deserialize)]
pub struct ImportCredentials {
    password: Option<PasswordCredentials>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct AddressBody {
    value: String,
    via: Option<String>,
    verified: Option<bool>,
    status: Option<String>,
}

/// `createIdentityBody` and `updateIdentityBody` (decoded strictly, like Kratos).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityBody {
    schema_id: Option<String>,
    traits: Option<Value>,
    state: Option<String>,
    credentials: Option<ImportCredentials>,
    verifiable_addresses: Option<Vec<AddressBody>>,
    recovery_addresses: Option<Vec<AddressBody>>,
    metadata_public: Option<Value>,
    metadata_admin: Option<Value>,
    organization_id: Option<Value>,
    external_id: Option<String>,
    #[allow(dead_code)]
    region: Option<Value>,
}

fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    crate::http::body::parse_json(body)
}

/// Query values that may repeat (`include_credential`, `ids`).
fn query_all(req: &ReqInfo, key: &str) -> Vec<String> {
    url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect()
}

fn query_one(req: &ReqInfo, key: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn parse_id(raw: &str) -> Result<Uuid, HttpError> {
    Uuid::parse_str(raw).map_err(|_| HttpError(ApiError::not_found("Unable to locate the resource")))
}

/// Builds or rebuilds `identity` from a create/update body. `existing` carries credentials to keep on update.
async fn apply_body(
    app: &App,
    identity: &mut Identity,
    b: IdentityBody,
    replace_metadata: bool,
) -> Result<(), ApiError> {
    let schema_id = b.schema_id.unwrap_or_else(|| identity.schema_id.clone());
    let schema_id = if schema_id.is_empty() {
        app.settings.default_schema_id.clone()
    } else {
        schema_id
    };
    if app.schemas.get(&schema_id).is_none() {
        return Err(ApiError::bad_request(format!(
            "Identity schema \"{schema_id}\" is not configured."
        )));
    }
    identity.schema_id = schema_id;
    if let Some(s) = b.state {
        let state = IdentityState::parse(&s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "identity state \"{s}\" is invalid; expected \"active\" or \"inactive\""
            ))
        })?;
        if state != identity.state {
            identity.state = state;
            identity.state_changed_at = Some(time_fmt::now());
        }
    }
    let traits = b.traits.unwrap_or_else(|| identity.traits.clone());
    let extracted = apply_traits(app, identity, traits).map_err(|errs| {
        let reason = errs
            .iter()
            .map(|e| match &e.field {
                Some(f) => format!("{f}: {}", e.message.text),
                None => e.message.text.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::bad_request(reason)
    })?;
    if let Some(c) = b.credentials {
        if let Some(p) = c.password.and_then(|p| p.config) {
            let config = match (p.hashed_password, p.password) {
                (Some(h), _) if !h.is_empty() => {
                    sallyport_password::Hasher::validate_encoded(&h).map_err(|e| {
                        ApiError::bad_request(format!("The imported password hash is not supported: {e}"))
                    })?;
                    json!({ "hashed_password": h })
                }
                (_, Some(pw)) if !pw.is_empty() => {
                    let h = app
                        .hasher
                        .hash(pw.as_bytes())
                        .await
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    json!({ "hashed_password": h })
                }
                _ if p.use_password_migration_hook == Some(true) => {
                    json!({ "use_password_migration_hook": true })
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "credentials.password.config needs hashed_password or password.",
                    ));
                }
            };
            identity.set_credential(
                credential_type::PASSWORD,
                extracted.password_identifiers.clone(),
                config,
                time_fmt::now(),
            );
        }
        if let Some(t) = c.other.keys().next() {
            return Err(ApiError::bad_request(format!(
                "Importing \"{t}\" credentials is not supported by Sallyport yet."
            )));
        }
    }
    let now = time_fmt::now();
    if let Some(addrs) = b.verifiable_addresses {
        for a in addrs {
            let value = a.value.trim().to_lowercase();
            let via = a.via.unwrap_or_else(|| "email".into());
            match identity
                .verifiable_addresses
                .iter_mut()
                .find(|x| x.value == value && x.via == via)
            {
                Some(x) => {
                    if let Some(v) = a.verified {
                        x.verified = v;
                        x.verified_at = v.then_some(now);
                    }
                    if let Some(s) = a.status {
                        x.status = s;
                    }
                }
                None => {
                    return Err(ApiError::bad_request(format!(
                        "verifiable address \"{value}\" is not one of the identity's traits marked for verification"
                    )));
                }
            }
        }
    }
    if let Some(addrs) = b.recovery_addresses {
        for a in addrs {
            let value = a.value.trim().to_lowercase();
            if !identity.recovery_addresses.iter().any(|x| x.value == value) {
                return Err(ApiError::bad_request(format!(
                    "recovery address \"{value}\" is not one of the identity's traits marked for recovery"
                )));
            }
        }
    }
    if replace_metadata || b.metadata_public.is_some() {
        identity.metadata_public = b.metadata_public.filter(|v| !v.is_null());
    }
    if replace_metadata || b.metadata_admin.is_some() {
        identity.metadata_admin = b.metadata_admin.filter(|v| !v.is_null());
    }
    if replace_metadata || b.external_id.is_some() {
        identity.external_id = b.external_id.filter(|e| !e.is_empty());
    }
    if let Some(o) = b.organization_id {
        identity.organization_id = o.as_str().and_then(|s| Uuid::parse_str(s).ok());
    }
    identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
    identity.updated_at = now;
    Ok(())
}

fn conflict_or(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::identity_conflict(),
        other => store_error(other),
    }
}

/// A new identity from a create body: schema and traits checked, passwords hashed (pre-hashed ones
/// only parsed), not stored yet.
async fn build_one(app: &App, body: IdentityBody) -> Result<Identity, ApiError> {
    let mut identity = Identity::new(
        body.schema_id.clone().unwrap_or_default(),
        Value::Null,
        time_fmt::now(),
    );
    if body.traits.is_none() {
        return Err(ApiError::bad_request("traits is required"));
    }
    apply_body(app, &mut identity, body, false).await?;
    Ok(identity)
}

async fn create_one(app: &App, body: IdentityBody) -> Result<Identity, ApiError> {
    let identity = build_one(app, body).await?;
    app.store
        .create_identity(&identity, None)
        .await
        .map_err(conflict_or)?;
    Ok(identity)
}

/// `POST /admin/identities` — operationId `createIdentity`.
pub async fn create_identity(
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let body: IdentityBody = parse_body(&body)?;
    let identity = create_one(&app, body).await?;
    let mut res = json_res(
        StatusCode::CREATED,
        &render::identity(&app, &identity, &render::ADMIN),
    );
    if let Ok(v) = HeaderValue::from_str(&app.admin_url(&format!("admin/identities/{}", identity.id))) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// The batch as its items' text: each identity is decoded from its own slice of the body, with no
/// `Value` tree of the whole batch built and converted again (a fifth of the endpoint's time).
#[derive(Debug, Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    identities: Vec<BatchItem<'a>>,
}

#[derive(Debug, Deserialize)]
struct BatchItem<'a> {
    #[serde(borrow)]
    create: Option<&'a RawValue>,
    patch_id: Option<Uuid>,
}

/// Kratos' `BatchPatchIdentitiesLimit` and `BatchPatchIdentitiesWithPasswordLimit`.
const BATCH_LIMIT: usize = 1000;
const BATCH_PLAINTEXT_PASSWORD_LIMIT: usize = 200;

impl IdentityBody {
    fn has_plaintext_password(&self) -> bool {
        let config = self
            .credentials
            .as_ref()
            .and_then(|c| c.password.as_ref()?.config.as_ref());
        config
            .and_then(|c| c.password.as_deref())
            .is_some_and(|p| !p.is_empty())
    }
}

/// The same question of an identity that did not decode, asked of its JSON tree.
fn has_plaintext_password(create: &Value) -> bool {
    create["credentials"]["password"]["config"]["password"]
        .as_str()
        .is_some_and(|p| !p.is_empty())
}

/// One batch item decoded: its identity body, or why it was refused, and whether it carries a
/// plaintext password (counted against Kratos' per-request limit either way).
fn decode_item(item: &BatchItem<'_>) -> (Result<IdentityBody, ApiError>, bool) {
    let Some(raw) = item.create else {
        return (
            Err(ApiError::bad_request("Only \"create\" patches are supported.")),
            false,
        );
    };
    match serde_json::from_str::<IdentityBody>(raw.get()) {
        Ok(b) => {
            let plaintext = b.has_plaintext_password();
            (Ok(b), plaintext)
        }
        Err(e) => {
            let plaintext =
                serde_json::from_str::<Value>(raw.get()).is_ok_and(|v| has_plaintext_password(&v));
            let reason = without_position(&e);
            (
                Err(ApiError::bad_request(format!(
                    "Unable to decode identity: {reason}"
                ))),
                plaintext,
            )
        }
    }
}

/// serde_json's message without its " at line L column C": the position is within the item's
/// own text, not the request body, so it would mislead.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) if e.line() > 0 => message.to_owned(),
        _ => text,
    }
}

/// `PATCH /admin/identities` — operationId `batchPatchIdentities`. Every identity is checked on its
/// own; the valid ones are stored together in one transaction. Each answer item says `create` with the
/// new id, or `error` with why that identity was refused (400 invalid, 409 conflicting with a stored
/// identity or an earlier one in the batch), as Kratos' partial batch errors do.
pub async fn batch_patch_identities(
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let batch: BatchBody<'_> = parse_body(&body)?;
    if batch.identities.len() > BATCH_LIMIT {
        return Err(ApiError::bad_request(format!(
            "The maximum number of identities that can be created or deleted at once is {BATCH_LIMIT}."
        ))
        .into());
    }
    let decoded: Vec<(Result<IdentityBody, ApiError>, bool)> =
        batch.identities.iter().map(decode_item).collect();
    let plaintext = decoded.iter().filter(|(_, plaintext)| *plaintext).count();
    if plaintext > BATCH_PLAINTEXT_PASSWORD_LIMIT {
        return Err(ApiError::bad_request(format!(
            "The maximum number of identities per request that can be created with a plaintext password is {BATCH_PLAINTEXT_PASSWORD_LIMIT}."
        ))
        .into());
    }
    let mut outcomes: Vec<Result<Uuid, ApiError>> = Vec::with_capacity(decoded.len());
    let mut ready: Vec<Identity> = Vec::with_capacity(decoded.len());
    let patch_ids: Vec<Option<Uuid>> = batch.identities.iter().map(|i| i.patch_id).collect();
    for (body, _) in decoded {
        let built = match body {
            Ok(b) => build_one(&app, b).await,
            Err(e) => Err(e),
        };
        outcomes.push(built.map(|i| {
            let id = i.id;
            ready.push(i);
            id
        }));
    }
    let stored = app.store.create_identities(&ready).await?;
    let mut stored = ready.iter().map(|i| i.id).zip(stored);
    for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
        if let Some((_, Err(e))) = stored.next() {
            *outcome = Err(conflict_or(e));
        }
    }
    let identities: Vec<BatchOutcome> = outcomes
        .into_iter()
        .zip(patch_ids)
        .map(|(outcome, patch_id)| match outcome {
            Ok(id) => BatchOutcome {
                action: "create",
                identity: Some(id),
                error: None,
                patch_id,
            },
            Err(e) => BatchOutcome {
                action: "error",
                identity: None,
                error: Some(e.error_object()),
                patch_id,
            },
        })
        .collect();
    Ok(json_of(StatusCode::OK, &BatchAnswer { identities }))
}

/// `batchPatchIdentitiesResponse`.
#[derive(Serialize)]
struct BatchAnswer {
    identities: Vec<BatchOutcome>,
}

/// `identityPatchResponse`: `identity` on a create, `error` on a refusal.
#[derive(Serialize)]
struct BatchOutcome {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_id: Option<Uuid>,
}

/// `GET /admin/identities/{id}` — operationId `getIdentity`.
pub async fn get_identity(
    State(app): State<AppState>,
    req: ReqInfo,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let identity = app.store.get_identity(parse_id(&id)?).await?;
    let include = query_all(&req, "include_credential");
    Ok(json_res(
        StatusCode::OK,
        &render::identity(
            &app,
            &identity,
            &IdentityView {
                admin: true,
                include_credential: &include,
            },
        ),
    ))
}

/// `GET /admin/identities/by/external/{externalID}` — operationId `getIdentityByExternalID`.
pub async fn get_identity_by_external_id(
    State(app): State<AppState>,
    req: ReqInfo,
    Path(ext): Path<String>,
) -> Result<Response, HttpError> {
    let identity = app.store.get_identity_by_external_id(&ext).await?;
    let include = query_all(&req, "include_credential");
    Ok(json_res(
        StatusCode::OK,
        &render::identity(
            &app,
            &identity,
            &IdentityView {
                admin: true,
                include_credential: &include,
            },
        ),
    ))
}

/// `GET /admin/identities` — operationId `listIdentities`.
pub async fn list_identities(State(app): State<AppState>, req: ReqInfo) -> Result<Response, HttpError> {
    let pq = PageQuery {
        page_size: query_one(&req, "page_size"),
        page_token: query_one(&req, "page_token"),
        page: query_one(&req, "page"),
        per_page: query_one(&req, "per_page"),
    };
    let ids = query_all(&req, "ids");
    let mut q = IdentityQuery::default();
    if !ids.is_empty() {
        if ids.len() > 500 {
            return Err(ApiError::bad_request("At most 500 ids can be requested at once.").into());
        }
        let parsed: Result<Vec<Uuid>, _> = ids.iter().map(|i| Uuid::parse_str(i)).collect();
        q.ids = Some(parsed.map_err(|_| ApiError::bad_request("ids must be UUIDs"))?);
    }
    if let Some(ci) = query_one(&req, "credentials_identifier").filter(|s| !s.is_empty()) {
        q.credentials_identifier = Some(sallyport_schema::normalize_identifier(&ci, None));
    }
    let include = query_all(&req, "include_credential");
    let base = app.admin_url("admin/identities");
    let mut headers = axum::http::HeaderMap::new();
    let list = match pq.parse(250, 1000)? {
        Page::Keyset { after, size } => {
            q.after = after;
            q.limit = size;
            let list = app.store.list_identities(&q).await?;
            keyset_link(
                &mut headers,
                &base,
                size,
                list.last().map(|i| i.id),
                list.len() as u32 == size,
            );
            list
        }
        Page::Legacy { page, per_page } => {
            if page.saturating_mul(per_page as u64) > 1_000_000 {
                return Err(ApiError::bad_request("Legacy pagination is limited; use page_token.").into());
            }
            let total = app.store.count_identities().await?;
            q.offset = Some(page * per_page as u64);
            q.limit = per_page;
            let list = app.store.list_identities(&q).await?;
            legacy_headers(&mut headers, &base, page, per_page, total);
            list
        }
    };
    let view = IdentityView {
        admin: true,
        include_credential: &include,
    };
    let body: Vec<Value> = list.iter().map(|i| render::identity(&app, i, &view)).collect();
    let mut res = json_res(StatusCode::OK, &Value::Array(body));
    res.headers_mut()
        .extend(headers.drain().filter_map(|(k, v)| k.map(|k| (k, v))));
    Ok(res)
}

/// `PUT /admin/identities/{id}` — operationId `updateIdentity`.
pub async fn update_identity(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let mut identity = app.store.get_identity(parse_id(&id)?).await?;
    let body: IdentityBody = parse_body(&body)?;
    apply_body(&app, &mut identity, body, true).await?;
    app.store.update_identity(&identity).await.map_err(conflict_or)?;
    Ok(json_res(
        StatusCode::OK,
        &render::identity(&app, &identity, &render::ADMIN),
    ))
}

/// Kratos' deny list: whole-identity credentials and federated credentials can't be patched, but a
/// credential's own subtree (e.g. `/credentials/password/config/hashed_password`) can.
fn patch_path_denied(path: &str) -> bool {
    let exact = [
        "/id",
        "/state_changed_at",
        "/stateChangedAt",
        "/schema_url",
        "/credentials",
    ];
    let subtree = ["/credentials/oidc", "/credentials/saml"];
    exact.contains(&path)
        || subtree
            .iter()
            .any(|f| path == *f || path.starts_with(&format!("{f}/")))
}

/// `PATCH /admin/identities/{id}` — operationId `patchIdentity` (RFC 6902).
pub async fn patch_identity(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let mut identity = app.store.get_identity(parse_id(&id)?).await?;
    let patch: json_patch::Patch = parse_body(&body)?;
    if let Some(op) = patch.0.iter().find(|op| patch_path_denied(op.path().as_ref())) {
        return Err(ApiError::bad_request(format!("patch includes denied path: {}", op.path())).into());
    }
    let credentials: serde_json::Map<String, Value> = identity
        .credentials
        .iter()
        .map(|(t, c)| (t.clone(), json!({"type": c.cred_type, "identifiers": c.identifiers, "config": c.config, "version": c.version})))
        .collect();
    let mut doc = json!({
        "schema_id": identity.schema_id,
        "traits": identity.traits,
        "state": identity.state.as_str(),
        "metadata_public": identity.metadata_public,
        "metadata_admin": identity.metadata_admin,
        "external_id": identity.external_id,
        "credentials": credentials,
    });
    crate::admin::bounded_patch::apply(&mut doc, &patch)?;
    let patched_credentials = doc
        .as_object_mut()
        .and_then(|o| o.remove("credentials"))
        .unwrap_or(Value::Null);
    let body: IdentityBody = serde_json::from_value(doc)
        .map_err(|e| ApiError::bad_request(format!("failed to apply JSON patch: {e}")))?;
    apply_body(&app, &mut identity, body, true).await?;
    // A credential's `type` must keep matching its key, or the patch would silently swap credentials.
    let now = time_fmt::now();
    for (key, c) in patched_credentials.as_object().into_iter().flatten() {
        if c.get("type").and_then(Value::as_str) != Some(key.as_str()) {
            return Err(ApiError::bad_request(format!("credentials.{key}.type must be \"{key}\"")).into());
        }
        let identifiers: Vec<String> = c["identifiers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let changed = identity
            .credentials
            .get(key)
            .is_none_or(|old| old.config != c["config"] || old.identifiers != identifiers);
        if changed {
            identity.set_credential(key, identifiers, c["config"].clone(), now);
        }
    }
    identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
    app.store.update_identity(&identity).await.map_err(conflict_or)?;
    Ok(json_res(
        StatusCode::OK,
        &render::identity(&app, &identity, &render::ADMIN),
    ))
}

/// `DELETE /admin/identities/{id}` — operationId `deleteIdentity`.
pub async fn delete_identity(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    app.store.delete_identity(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

const FIRST_FACTORS: [&str; 5] = ["password", "oidc", "passkey", "saml", "code"];

/// `DELETE /admin/identities/{id}/credentials/{type}` — operationId `deleteIdentityCredentials`.
pub async fn delete_identity_credentials(
    State(app): State<AppState>,
    Path((id, cred_type)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    let mut identity = app.store.get_identity(parse_id(&id)?).await?;
    if !credential_type::ALL.contains(&cred_type.as_str()) || cred_type == "code" {
        return Err(ApiError::bad_request(format!("Credentials type {cred_type} cannot be deleted.")).into());
    }
    if !identity.credentials.contains_key(&cred_type) {
        return Err(ApiError::not_found(format!(
            "You tried to remove a {cred_type} but this user have no {cred_type} configured."
        ))
        .into());
    }
    let remaining_first = identity
        .credentials
        .keys()
        .filter(|t| FIRST_FACTORS.contains(&t.as_str()) && **t != cred_type)
        .count();
    if FIRST_FACTORS.contains(&cred_type.as_str()) && remaining_first == 0 {
        return Err(ApiError::bad_request("You cannot remove the last first factor credential.").into());
    }
    identity.credentials.remove(&cred_type);
    identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
    identity.updated_at = time_fmt::now();
    app.store.update_identity(&identity).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
