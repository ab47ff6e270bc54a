// The official Ory JavaScript SDK (@ory/client-fetch, pinned in package-lock.json) driven through Sallyport's
// journeys, in Kratos' status mode and in HTTP-correct mode (header Sallyport-Status-Mode). Every response body is
// checked against the SDK's generated models: the `instanceOf…` guard of the model the SDK declares for it, the same
// for nested models (flows → ui → nodes → attributes → texts, sessions → identity …), enum values, and the SDK's own
// `…FromJSON` conversion.
//
// Usage: node journeys.mjs <path to the sallyport binary>
// It starts two `sallyport serve --dev` servers on random ports (code as first factor, code as second factor).

import * as sdk from '@ory/client-fetch'
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const binary = process.argv[2] && path.resolve(process.argv[2])
if (!binary) throw new Error('usage: node journeys.mjs <sallyport binary>')
const PASSWORD = 'a-strong-passw0rd!'
let checked = 0

// ---------- the SDK's models as a validator ----------

function fail(msg) {
  throw new Error(msg)
}

function need(model, v, where) {
  const guard = sdk[`instanceOf${model}`]
  if (typeof guard !== 'function') fail(`the SDK has no model ${model}`)
  if (v === null || typeof v !== 'object' || !guard(v)) {
    fail(`${where}: not a ${model}: ${JSON.stringify(v)?.slice(0, 600)}`)
  }
  sdk[`${model}FromJSON`](v)
  checked++
}

function inEnum(values, v, where) {
  if (!Object.values(values).includes(v)) fail(`${where}: ${JSON.stringify(v)} is not one of ${Object.values(values)}`)
}

const each = (list, model, where) => (list ?? []).forEach((x, i) => check(model, x, `${where}[${i}]`))

const attributeModel = {
  input: 'UiNodeInputAttributes',
  text: 'UiNodeTextAttributes',
  img: 'UiNodeImageAttributes',
  a: 'UiNodeAnchorAttributes',
  script: 'UiNodeScriptAttributes',
  div: 'UiNodeDivisionAttributes',
}

const continueWithModel = {
  set_ory_session_token: 'ContinueWithSetOrySessionToken',
  show_settings_ui: 'ContinueWithSettingsUi',
  show_verification_ui: 'ContinueWithVerificationUi',
  show_recovery_ui: 'ContinueWithRecoveryUi',
  redirect_browser_to: 'ContinueWithRedirectBrowserTo',
}

function continueWith(list, where) {
  ;(list ?? []).forEach((c, i) => {
    const model = continueWithModel[c.action] ?? fail(`${where}[${i}]: unknown continue_with action ${c.action}`)
    check(model, c, `${where}[${i}]`)
  })
}

const flow = (stateEnum) => (v, w) => {
  inEnum(stateEnum, v.state, `${w}.state`)
  check('UiContainer', v.ui, `${w}.ui`)
  continueWith(v.continue_with, `${w}.continue_with`)
}

const shapes = {
  LoginFlow: flow(sdk.LoginFlowState),
  RegistrationFlow: flow(sdk.RegistrationFlowState),
  RecoveryFlow: flow(sdk.RecoveryFlowState),
  VerificationFlow: flow(sdk.VerificationFlowState),
  SettingsFlow: (v, w) => {
    flow(sdk.SettingsFlowState)(v, w)
    check('Identity', v.identity, `${w}.identity`)
  },
  UiContainer: (v, w) => {
    each(v.nodes, 'UiNode', `${w}.nodes`)
    each(v.messages, 'UiText', `${w}.messages`)
  },
  UiNode: (v, w) => {
    inEnum(sdk.UiNodeTypeEnum, v.type, `${w}.type`)
    inEnum(sdk.UiNodeGroupEnum, v.group, `${w}.group`)
    const model = attributeModel[v.attributes?.node_type] ?? fail(`${w}: node_type ${v.attributes?.node_type}`)
    check(model, v.attributes, `${w}.attributes`)
    each(v.messages, 'UiText', `${w}.messages`)
    check('UiNodeMeta', v.meta, `${w}.meta`)
    if (v.meta.label) check('UiText', v.meta.label, `${w}.meta.label`)
  },
  UiNodeTextAttributes: (v, w) => check('UiText', v.text, `${w}.text`),
  UiText: (v, w) => inEnum(sdk.UiTextTypeEnum, v.type, `${w}.type`),
  Session: (v, w) => {
    if (v.identity != null) check('Identity', v.identity, `${w}.identity`)
    if (v.authenticator_assurance_level) {
      inEnum(sdk.AuthenticatorAssuranceLevel, v.authenticator_assurance_level, `${w}.authenticator_assurance_level`)
    }
    each(v.authentication_methods, 'SessionAuthenticationMethod', `${w}.authentication_methods`)
    each(v.devices, 'SessionDevice', `${w}.devices`)
  },
  SessionAuthenticationMethod: (v, w) => inEnum(sdk.SessionAuthenticationMethodMethodEnum, v.method, `${w}.method`),
  Identity: (v, w) => {
    if (v.state) inEnum(sdk.IdentityStateEnum, v.state, `${w}.state`)
    each(v.verifiable_addresses, 'VerifiableIdentityAddress', `${w}.verifiable_addresses`)
    each(v.recovery_addresses, 'RecoveryIdentityAddress', `${w}.recovery_addresses`)
  },
  SuccessfulNativeLogin: (v, w) => {
    check('Session', v.session, `${w}.session`)
    continueWith(v.continue_with, `${w}.continue_with`)
  },
  SuccessfulNativeRegistration: (v, w) => {
    check('Identity', v.identity, `${w}.identity`)
    if (v.session) check('Session', v.session, `${w}.session`)
    continueWith(v.continue_with, `${w}.continue_with`)
  },
  ErrorGeneric: (v, w) => check('GenericError', v.error, `${w}.error`),
  // The spec types this `error` as ErrorGeneric (an envelope inside the envelope); Kratos — and so Sallyport — sends
  // the plain error object there, so it is checked as GenericError (a spec quirk, listed in tests/sdk/README.md).
  ErrorBrowserLocationChangeRequired: (v, w) => {
    check('GenericError', v.error, `${w}.error`)
    expect(typeof v.redirect_browser_to === 'string', `${w}.redirect_browser_to`)
  },
}

function check(model, v, where = model) {
  need(model, v, where)
  shapes[model]?.(v, where)
}

// ---------- calling the SDK ----------

/** A call that must succeed: its body must be `model` (or a list of it). */
async function ok(model, rawPromise, where) {
  let r
  try {
    r = await rawPromise
  } catch (e) {
    if (e instanceof sdk.ResponseError) fail(`${where}: HTTP ${e.response.status} ${await e.response.text()}`)
    throw e
  }
  if (model === null) return { status: r.raw.status }
  const json = await r.raw.clone().json()
  if (Array.isArray(json)) json.forEach((x, i) => check(model, x, `${where}[${i}]`))
  else check(model, json, where)
  return json
}

/** A call the SDK must reject with `status`; the error body must be `model`. */
async function refused(status, model, rawPromise, where) {
  try {
    await rawPromise
  } catch (e) {
    if (!(e instanceof sdk.ResponseError)) throw e
    if (e.response.status !== status) fail(`${where}: expected HTTP ${status}, got ${e.response.status} ${await e.response.text()}`)
    const json = await e.response.json()
    check(model, json, where)
    return json
  }
  fail(`${where}: expected HTTP ${status}, but the call succeeded`)
}

/** A successful intermediate step: Kratos' 400 + flow, or 200 + flow in HTTP-correct mode. */
async function progress(mode, model, rawPromise, where) {
  if (mode === 'kratos') return refused(400, model, rawPromise, where)
  let r
  try {
    r = await rawPromise
  } catch (e) {
    if (e instanceof sdk.ResponseError) fail(`${where}: HTTP-correct mode answered ${e.response.status} ${await e.response.text()}`)
    throw e
  }
  if (r.raw.status !== 200) fail(`${where}: expected 200, got ${r.raw.status}`)
  const json = await r.raw.clone().json()
  check(model, json, where)
  return json
}

const ids = (f) => (f.ui.messages ?? []).map((m) => m.id)
const node = (f, name) => f.ui.nodes.find((n) => n.attributes.name === name || n.attributes.id === name)
const csrf = (f) => node(f, 'csrf_token')?.attributes.value ?? ''
function expect(cond, msg) {
  if (!cond) fail(msg)
}

/** A fetch with a cookie jar: what a browser does for an SPA using `credentials: 'include'`. */
function cookieFetch() {
  const jar = new Map()
  return async (url, init = {}) => {
    const headers = new Headers(init.headers)
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '))
    const res = await fetch(url, { ...init, headers, redirect: 'manual' })
    // Headers.getSetCookie is missing from older Node releases (Debian's); split the joined header there.
    const setCookies = res.headers.getSetCookie?.() ?? (res.headers.get('set-cookie') ?? '').split(/,(?=\s*[^;,=\s]+=)/).filter(Boolean)
    for (const c of setCookies) {
      const [kv] = c.split(';')
      const i = kv.indexOf('=')
      const [k, v] = [kv.slice(0, i).trim(), kv.slice(i + 1)]
      if (v === '' || /max-age=0\b/i.test(c)) jar.delete(k)
      else jar.set(k, v)
    }
    return res
  }
}

function clients(server, mode, { browser = false } = {}) {
  const headers = { Accept: 'application/json' }
  if (mode === 'http-correct') headers['Sallyport-Status-Mode'] = 'http-correct'
  const common = { headers, ...(browser ? { fetchApi: cookieFetch(), credentials: 'include' } : {}) }
  return {
    fe: new sdk.FrontendApi(new sdk.Configuration({ basePath: server.public, ...common })),
    ia: new sdk.IdentityApi(new sdk.Configuration({ basePath: server.admin, headers })),
    ca: new sdk.CourierApi(new sdk.Configuration({ basePath: server.admin, headers })),
  }
}

async function latestCode(ca, recipient) {
  const list = await ok('Message', ca.listCourierMessagesRaw({ recipient }), 'listCourierMessages')
  const code = list[0]?.body.match(/\b\d{6}\b/)?.[0]
  return code ?? fail(`no code mailed to ${recipient}`)
}

function totp(secret, steps = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + steps))
  const h = crypto.createHmac('sha1', key).update(counter).digest()
  const o = h[h.length - 1] & 0xf
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0')
}

// ---------- journeys ----------

async function nativePassword(server, mode, email) {
  const { fe } = clients(server, mode)
  let f = await ok('RegistrationFlow', fe.createNativeRegistrationFlowRaw({}), 'createNativeRegistrationFlow')
  const reg = await ok(
    'SuccessfulNativeRegistration',
    fe.updateRegistrationFlowRaw({
      flow: f.id,
      updateRegistrationFlowBody: { method: 'password', password: PASSWORD, traits: { email } },
    }),
    'updateRegistrationFlow(password)',
  )
  expect(reg.identity.traits.email === email, 'registered identity')
  f = await ok('LoginFlow', fe.createNativeLoginFlowRaw({}), 'createNativeLoginFlow')
  const wrong = await refused(
    400,
    'LoginFlow',
    fe.updateLoginFlowRaw({ flow: f.id, updateLoginFlowBody: { method: 'password', identifier: email, password: 'nope-nope-nope' } }),
    'updateLoginFlow(wrong password)',
  )
  expect(ids(wrong).includes(4000006), `4000006 on a wrong password: ${ids(wrong)}`)
  f = await ok('LoginFlow', fe.createNativeLoginFlowRaw({}), 'createNativeLoginFlow')
  const login = await ok(
    'SuccessfulNativeLogin',
    fe.updateLoginFlowRaw({ flow: f.id, updateLoginFlowBody: { method: 'password', identifier: email, password: PASSWORD } }),
    'updateLoginFlow(password)',
  )
  const token = login.session_token
  expect(token?.startsWith('ory_st_'), 'session token')
  const who = await ok('Session', fe.toSessionRaw({ xSessionToken: token }), 'toSession')
  expect(who.identity.traits.email === email, 'whoami')
  await ok('Session', fe.listMySessionsRaw({ xSessionToken: token }), 'listMySessions')
  const s = await ok('SettingsFlow', fe.createNativeSettingsFlowRaw({ xSessionToken: token }), 'createNativeSettingsFlow')
  await ok('SettingsFlow', fe.getSettingsFlowRaw({ id: s.id, xSessionToken: token }), 'getSettingsFlow')
  const saved = await ok(
    'SettingsFlow',
    fe.updateSettingsFlowRaw({
      flow: s.id,
      xSessionToken: token,
      updateSettingsFlowBody: { method: 'profile', traits: { email, name: { first: 'S' } } },
    }),
    'updateSettingsFlow(profile)',
  )
  expect(saved.state === 'success', 'settings saved')
  return { token, identityId: who.identity.id }
}

async function logoutNative(server, mode, token) {
  const { fe } = clients(server, mode)
  await ok(null, fe.performNativeLogoutRaw({ performNativeLogoutBody: { session_token: token } }), 'performNativeLogout')
  await refused(401, 'ErrorGeneric', fe.toSessionRaw({ xSessionToken: token }), 'toSession after logout')
}

async function spaPassword(server, mode, email) {
  const { fe } = clients(server, mode, { browser: true })
  const f = await ok('RegistrationFlow', fe.createBrowserRegistrationFlowRaw({}), 'createBrowserRegistrationFlow')
  expect(csrf(f).length > 0, 'browser flows carry a CSRF token')
  await ok(
    'SuccessfulNativeRegistration',
    fe.updateRegistrationFlowRaw({
      flow: f.id,
      updateRegistrationFlowBody: { method: 'password', password: PASSWORD, traits: { email }, csrf_token: csrf(f) },
    }),
    'updateRegistrationFlow(SPA)',
  )
  const who = await ok('Session', fe.toSessionRaw({}), 'toSession(cookie)')
  expect(who.identity.traits.email === email, 'SPA whoami')
  const out = await ok('LogoutFlow', fe.createBrowserLogoutFlowRaw({}), 'createBrowserLogoutFlow')
  await ok(null, fe.updateLogoutFlowRaw({ token: out.logout_token }), 'updateLogoutFlow')
  await refused(401, 'ErrorGeneric', fe.toSessionRaw({}), 'toSession after SPA logout')
  // Login without the CSRF token: 403 security_csrf_violation.
  const l = await ok('LoginFlow', fe.createBrowserLoginFlowRaw({}), 'createBrowserLoginFlow')
  const e = await refused(
    403,
    'ErrorGeneric',
    fe.updateLoginFlowRaw({ flow: l.id, updateLoginFlowBody: { method: 'password', identifier: email, password: PASSWORD } }),
    'updateLoginFlow(SPA, no CSRF token)',
  )
  expect(e.error.id === 'security_csrf_violation', e.error.id)
  const done = await ok(
    'SuccessfulNativeLogin',
    fe.updateLoginFlowRaw({
      flow: l.id,
      updateLoginFlowBody: { method: 'password', identifier: email, password: PASSWORD, csrf_token: csrf(l) },
    }),
    'updateLoginFlow(SPA)',
  )
  expect(done.session_token === undefined, 'SPAs get a cookie, not a token')
}

async function codeLogin(server, mode, email) {
  const { fe, ia, ca } = clients(server, mode)
  await ok('Identity', ia.createIdentityRaw({ createIdentityBody: { schema_id: 'default', traits: { email } } }), 'createIdentity')
  const f = await ok('LoginFlow', fe.createNativeLoginFlowRaw({}), 'createNativeLoginFlow')
  const sent = await progress(
    mode,
    'LoginFlow',
    fe.updateLoginFlowRaw({ flow: f.id, updateLoginFlowBody: { method: 'code', identifier: email } }),
    'updateLoginFlow(code sent)',
  )
  expect(sent.state === 'sent_email' && ids(sent).includes(1010014), `code sent: ${sent.state} ${ids(sent)}`)
  const unknown = await ok('LoginFlow', fe.createNativeLoginFlowRaw({}), 'createNativeLoginFlow')
  const e = await refused(
    400,
    'LoginFlow',
    fe.updateLoginFlowRaw({ flow: unknown.id, updateLoginFlowBody: { method: 'code', identifier: `nobody-${email}` } }),
    'updateLoginFlow(unknown address)',
  )
  expect(ids(e).includes(4000035), `4000035: ${ids(e)}`)
  const code = await latestCode(ca, email)
  const login = await ok(
    'SuccessfulNativeLogin',
    fe.updateLoginFlowRaw({ flow: f.id, updateLoginFlowBody: { method: 'code', identifier: email, code } }),
    'updateLoginFlow(code)',
  )
  expect(login.session.authentication_methods[0].method === 'code', 'signed in by code')
}

async function codeRegistration(server, mode, email) {
  const { fe, ca } = clients(server, mode)
  const f = await ok('RegistrationFlow', fe.createNativeRegistrationFlowRaw({}), 'createNativeRegistrationFlow')
  const sent = await progress(
    mode,
    'RegistrationFlow',
    fe.updateRegistrationFlowRaw({ flow: f.id, updateRegistrationFlowBody: { method: 'code', traits: { email } } }),
    'updateRegistrationFlow(code sent)',
  )
  expect(ids(sent).includes(1040005), `1040005: ${ids(sent)}`)
  const code = await latestCode(ca, email)
  await ok(
    'SuccessfulNativeRegistration',
    fe.updateRegistrationFlowRaw({ flow: f.id, updateRegistrationFlowBody: { method: 'code', traits: { email }, code } }),
    'updateRegistrationFlow(code)',
  )
  // Two-step registration: the profile step answers "choose a method".
  const two = await ok('RegistrationFlow', fe.createNativeRegistrationFlowRaw({}), 'createNativeRegistrationFlow')
  const choose = await progress(
    mode,
    'RegistrationFlow',
    fe.updateRegistrationFlowRaw({ flow: two.id, updateRegistrationFlowBody: { method: 'profile', traits: { email: `two-${email}` } } }),
    'updateRegistrationFlow(profile)',
  )
  expect(ids(choose).includes(1040009), `1040009: ${ids(choose)}`)
}

async function recoveryThenSettings(server, mode, email) {
  const { fe, ca } = clients(server, mode, { browser: true })
  const f = await ok('RecoveryFlow', fe.createBrowserRecoveryFlowRaw({}), 'createBrowserRecoveryFlow')
  const sent = await ok(
    'RecoveryFlow',
    fe.updateRecoveryFlowRaw({ flow: f.id, updateRecoveryFlowBody: { method: 'code', email, csrf_token: csrf(f) } }),
    'updateRecoveryFlow(email)',
  )
  expect(sent.state === 'sent_email' && ids(sent).includes(1060003), 'recovery code sent')
  const code = await latestCode(ca, email)
  const submit = fe.updateRecoveryFlowRaw({ flow: f.id, updateRecoveryFlowBody: { method: 'code', code, csrf_token: csrf(sent) } })
  let settingsId
  if (mode === 'kratos') {
    const e = await refused(422, 'ErrorBrowserLocationChangeRequired', submit, 'updateRecoveryFlow(code)')
    settingsId = new URL(e.redirect_browser_to).searchParams.get('flow')
  } else {
    const done = await ok('RecoveryFlow', submit, 'updateRecoveryFlow(code)')
    settingsId = done.continue_with.find((c) => c.action === 'show_settings_ui').flow.id
  }
  const s = await ok('SettingsFlow', fe.getSettingsFlowRaw({ id: settingsId }), 'getSettingsFlow(after recovery)')
  expect(ids(s).includes(1060001), `1060001: ${ids(s)}`)
  const saved = await ok(
    'SettingsFlow',
    fe.updateSettingsFlowRaw({
      flow: s.id,
      updateSettingsFlowBody: { method: 'password', password: `new-${PASSWORD}`, csrf_token: csrf(s) },
    }),
    'updateSettingsFlow(password)',
  )
  expect(saved.state === 'success', 'password changed')
}

async function verification(server, mode, email) {
  const { fe, ca } = clients(server, mode)
  const f = await ok('VerificationFlow', fe.createNativeVerificationFlowRaw({}), 'createNativeVerificationFlow')
  const sent = await ok(
    'VerificationFlow',
    fe.updateVerificationFlowRaw({ flow: f.id, updateVerificationFlowBody: { method: 'code', email } }),
    'updateVerificationFlow(email)',
  )
  expect(sent.state === 'sent_email', 'verification code sent')
  const code = await latestCode(ca, email)
  const done = await ok(
    'VerificationFlow',
    fe.updateVerificationFlowRaw({ flow: f.id, updateVerificationFlowBody: { method: 'code', code } }),
    'updateVerificationFlow(code)',
  )
  expect(done.state === 'passed_challenge' && ids(done).includes(1080002), 'verified')
  await ok('VerificationFlow', fe.getVerificationFlowRaw({ id: f.id }), 'getVerificationFlow')
}

async function passwordLogin(fe, email, password = PASSWORD) {
  const f = await ok('LoginFlow', fe.createNativeLoginFlowRaw({}), 'createNativeLoginFlow')
  return ok(
    'SuccessfulNativeLogin',
    fe.updateLoginFlowRaw({ flow: f.id, updateLoginFlowBody: { method: 'password', identifier: email, password } }),
    'updateLoginFlow(password)',
  )
}

async function totpAndLookup(server, mode, email) {
  const { fe } = clients(server, mode)
  let { session_token: token } = await passwordLogin(fe, email)
  const s = await ok('SettingsFlow', fe.createNativeSettingsFlowRaw({ xSessionToken: token }), 'createNativeSettingsFlow')
  const secret = node(s, 'totp_secret_key').attributes.text.context.secret
  const linked = await ok(
    'SettingsFlow',
    fe.updateSettingsFlowRaw({ flow: s.id, xSessionToken: token, updateSettingsFlowBody: { method: 'totp', totp_code: totp(secret) } }),
    'updateSettingsFlow(totp)',
  )
  expect(linked.state === 'success', 'TOTP linked')
  const gen = await ok(
    'SettingsFlow',
    fe.updateSettingsFlowRaw({ flow: s.id, xSessionToken: token, updateSettingsFlowBody: { method: 'lookup_secret', lookup_secret_regenerate: true } }),
    'updateSettingsFlow(lookup regenerate)',
  )
  const codes = node(gen, 'lookup_secret_codes').attributes.text.context.secrets.map((m) => m.context.secret)
  expect(codes.length === 12, `12 backup codes, got ${codes.length}`)
  await ok(
    'SettingsFlow',
    fe.updateSettingsFlowRaw({ flow: s.id, xSessionToken: token, updateSettingsFlowBody: { method: 'lookup_secret', lookup_secret_confirm: true } }),
    'updateSettingsFlow(lookup confirm)',
  )
  // Second factor by TOTP (the next time step: the linking code cannot be replayed) …
  ;({ session_token: token } = await passwordLogin(fe, email))
  let f = await ok('LoginFlow', fe.createNativeLoginFlowRaw({ aal: 'aal2', xSessionToken: token }), 'createNativeLoginFlow(aal2)')
  expect(ids(f).includes(1010004), `1010004: ${ids(f)}`)
  let done = await ok(
    'SuccessfulNativeLogin',
    fe.updateLoginFlowRaw({ flow: f.id, xSessionToken: token, updateLoginFlowBody: { method: 'totp', totp_code: totp(secret, 1) } }),
    'updateLoginFlow(totp)',
  )
  expect(done.session.authenticator_assurance_level === 'aal2', 'aal2 by TOTP')
  // … and by a backup code.
  ;({ session_token: token } = await passwordLogin(fe, email))
  f = await ok('LoginFlow', fe.createNativeLoginFlowRaw({ aal: 'aal2', xSessionToken: token }), 'createNativeLoginFlow(aal2)')
  done = await ok(
    'SuccessfulNativeLogin',
    fe.updateLoginFlowRaw({ flow: f.id, xSessionToken: token, updateLoginFlowBody: { method: 'lookup_secret', lookup_secret: codes[0] } }),
    'updateLoginFlow(lookup_secret)',
  )
  expect(done.session.authenticator_assurance_level === 'aal2', 'aal2 by backup code')
  await ok('Session', fe.toSessionRaw({ xSessionToken: token }), 'toSession(aal2)')
}

async function codeMfa(server, mode, email) {
  const { fe, ia, ca } = clients(server, mode)
  await ok(
    'Identity',
    ia.createIdentityRaw({
      createIdentityBody: { schema_id: 'default', traits: { email }, credentials: { password: { config: { password: PASSWORD } } } },
    }),
    'createIdentity',
  )
  const { session_token: token } = await passwordLogin(fe, email)
  await refused(403, 'ErrorGeneric', fe.toSessionRaw({ xSessionToken: token }), 'toSession(aal1 of an aal2 identity)')
  const f = await ok('LoginFlow', fe.createNativeLoginFlowRaw({ aal: 'aal2', xSessionToken: token }), 'createNativeLoginFlow(aal2)')
  expect(f.state === 'sent_email', `the only code address gets the code at once: ${f.state}`)
  const code = await latestCode(ca, email)
  const done = await ok(
    'SuccessfulNativeLogin',
    fe.updateLoginFlowRaw({ flow: f.id, xSessionToken: token, updateLoginFlowBody: { method: 'code', code, identifier: email } }),
    'updateLoginFlow(code, aal2)',
  )
  expect(done.session.authenticator_assurance_level === 'aal2', 'aal2 by code')
  await ok('Session', fe.toSessionRaw({ xSessionToken: token }), 'toSession(aal2)')
}

async function admin(server, mode, email, identityId) {
  const { ia, ca } = clients(server, mode)
  await ok('IdentitySchemaContainer', ia.listIdentitySchemasRaw({}), 'listIdentitySchemas')
  const found = await ok('Identity', ia.listIdentitiesRaw({ credentialsIdentifier: email }), 'listIdentities')
  expect(found.length === 1 && found[0].id === identityId, 'listIdentities by identifier')
  await ok('Identity', ia.getIdentityRaw({ id: identityId, includeCredential: ['password'] }), 'getIdentity')
  const patched = await ok(
    'Identity',
    ia.patchIdentityRaw({ id: identityId, jsonPatch: [{ op: 'replace', path: '/metadata_public', value: { a: 1 } }] }),
    'patchIdentity',
  )
  expect(patched.metadata_public.a === 1, 'patched')
  await ok('RecoveryCodeForIdentity', ia.createRecoveryCodeForIdentityRaw({ createRecoveryCodeForIdentityBody: { identity_id: identityId } }), 'createRecoveryCodeForIdentity')
  // The link method is off (Kratos' default is code): 404 with Kratos' "endpoint disabled" envelope.
  await refused(404, 'ErrorGeneric', ia.createRecoveryLinkForIdentityRaw({ createRecoveryLinkForIdentityBody: { identity_id: identityId } }), 'createRecoveryLinkForIdentity')
  const sessions = await ok('Session', ia.listIdentitySessionsRaw({ id: identityId }), 'listIdentitySessions')
  await ok('Session', ia.listSessionsRaw({}), 'listSessions')
  if (sessions.length) {
    await ok('Session', ia.getSessionRaw({ id: sessions[0].id }), 'getSession')
    await ok('Session', ia.extendSessionRaw({ id: sessions[0].id }), 'extendSession')
    await ok(null, ia.disableSessionRaw({ id: sessions[0].id }), 'disableSession')
  }
  const messages = await ok('Message', ca.listCourierMessagesRaw({}), 'listCourierMessages')
  if (messages.length) await ok('Message', ca.getCourierMessageRaw({ id: messages[0].id }), 'getCourierMessage')
  await refused(404, 'ErrorGeneric', ia.getIdentityRaw({ id: crypto.randomUUID() }), 'getIdentity(unknown)')
  await ok(null, ia.deleteIdentitySessionsRaw({ id: identityId }), 'deleteIdentitySessions')
  await ok(null, ia.deleteIdentityRaw({ id: identityId }), 'deleteIdentity')
}

// ---------- servers ----------

async function startServer(name, env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sallyport-sdk-js-${name}-`))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn(binary, ['serve', '--dev'], {
    cwd: dir,
    env: {
      ...process.env,
      SERVE_PUBLIC_PORT: String(port),
      SERVE_ADMIN_PORT: String(port + 1),
      SERVE_PUBLIC_HOST: '127.0.0.1',
      SERVE_ADMIN_HOST: '127.0.0.1',
      SELFSERVICE_FLOWS_RECOVERY_ENABLED: 'true',
      SELFSERVICE_FLOWS_VERIFICATION_ENABLED: 'true',
      SELFSERVICE_METHODS_PASSWORD_CONFIG_HAVEIBEENPWNED_ENABLED: 'false',
      ...env,
    },
    stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'server.log'), 'w')],
  })
  const server = { name, dir, child, public: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${port + 1}` }
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${server.public}/health/ready`)).ok) return server
    } catch {}
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`${name} server did not start:\n${fs.readFileSync(path.join(dir, 'server.log'), 'utf8')}`)
}

const servers = []
try {
  const main = await startServer('main', {
    SELFSERVICE_METHODS_CODE_ENABLED: 'true',
    SELFSERVICE_METHODS_CODE_PASSWORDLESS_ENABLED: 'true',
    SELFSERVICE_METHODS_TOTP_ENABLED: 'true',
    SELFSERVICE_METHODS_LOOKUP_SECRET_ENABLED: 'true',
  })
  servers.push(main)
  const mfa = await startServer('mfa', {
    SELFSERVICE_METHODS_CODE_ENABLED: 'true',
    SELFSERVICE_METHODS_CODE_MFA_ENABLED: 'true',
    SESSION_WHOAMI_REQUIRED_AAL: 'highest_available',
  })
  servers.push(mfa)
  for (const mode of ['kratos', 'http-correct']) {
    const tag = `${mode}-${crypto.randomBytes(3).toString('hex')}`
    const native = `native-${tag}@example.org`
    const { token, identityId } = await nativePassword(main, mode, native)
    await spaPassword(main, mode, `spa-${tag}@example.org`)
    await codeLogin(main, mode, `code-${tag}@example.org`)
    await codeRegistration(main, mode, `codereg-${tag}@example.org`)
    await recoveryThenSettings(main, mode, native)
    await verification(main, mode, native)
    const totpUser = `totp-${tag}@example.org`
    await nativePassword(main, mode, totpUser)
    await totpAndLookup(main, mode, totpUser)
    await codeMfa(mfa, mode, `mfa-${tag}@example.org`)
    await logoutNative(main, mode, token)
    await admin(main, mode, native, identityId)
    console.log(`@ory/client-fetch, ${mode} mode: every journey passed`)
  }
  console.log(`official JavaScript SDK: ${checked} model checks passed`)
} catch (e) {
  for (const s of servers) {
    console.error(`--- ${s.name} server log (tail) ---`)
    console.error(fs.readFileSync(path.join(s.dir, 'server.log'), 'utf8').split('\n').slice(-40).join('\n'))
  }
  console.error(e)
  process.exitCode = 1
} finally {
  for (const s of servers) s.child.kill()
}
