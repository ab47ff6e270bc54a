// Sallyport's browser script for passkeys and security keys, served at /.well-known/ory/webauthn.js.
// It defines the global functions Kratos' UI nodes name in `onclick`/`onload` (and their
// `onclickTrigger`/`onloadTrigger` names), so front ends written for Kratos work unchanged. Each
// function reads the options from the flow's nodes, runs the browser ceremony, writes the result
// into the hidden field the server expects and submits that field's form.
(function () {
  "use strict";
  if (typeof window === "undefined" || window.__oryWebAuthnInitialized) {
    return;
  }

  function fromB64url(s) {
    var b64 = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function toB64url(buf) {
    if (!buf) return "";
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function field(name) {
    return document.querySelector('[name="' + name + '"]');
  }

  function parse(v) {
    return typeof v === "string" ? JSON.parse(v) : JSON.parse(JSON.stringify(v));
  }

  function decodeDescriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: fromB64url(d.id) });
    });
  }

  // Options as the server sends them (base64url strings) to what the browser API takes.
  function creationOptions(opts) {
    var pk = opts.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    if (pk.excludeCredentials) pk.excludeCredentials = decodeDescriptors(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(opts) {
    var pk = opts.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    if (pk.allowCredentials) pk.allowCredentials = decodeDescriptors(pk.allowCredentials);
    return pk;
  }

  function attestationJSON(cred) {
    return JSON.stringify({
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(cred.response.attestationObject),
        clientDataJSON: toB64url(cred.response.clientDataJSON),
        transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
      },
    });
  }

  function assertionJSON(cred) {
    return JSON.stringify({
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(cred.response.authenticatorData),
        clientDataJSON: toB64url(cred.response.clientDataJSON),
        signature: toB64url(cred.response.signature),
        userHandle: toB64url(cred.response.userHandle),
      },
    });
  }

  function submitWith(resultEl, value) {
    resultEl.value = value;
    var form = resultEl.closest("form");
    if (form) form.submit();
  }

  function supported() {
    if (!window.PublicKeyCredential) {
      console.error("[webauthn.js] This browser does not support WebAuthn.");
      return false;
    }
    return true;
  }

  function abortConditional() {
    if (window.abortPasskeyConditionalUI) {
      window.abortPasskeyConditionalUI.abort("A passkey sign-in was started with the button.");
      window.abortPasskeyConditionalUI = undefined;
    }
  }

  // Security key as second factor (or legacy passwordless): options come as the argument or the
  // trigger's value.
  function webAuthnLogin(options) {
    if (!supported()) return;
    var trigger = field("webauthn_login_trigger");
    var result = field("webauthn_login");
    var opts = parse(options || (trigger && trigger.value));
    navigator.credentials
      .get({ publicKey: requestOptions(opts) })
      .then(function (cred) { submitWith(result, assertionJSON(cred)); })
      .catch(function (err) { console.error("[webauthn.js] security key sign-in failed", err); });
  }

  function webAuthnRegistration(options) {
    if (!supported()) return;
    var trigger = field("webauthn_register_trigger");
    var result = field("webauthn_register");
    var opts = parse(options || (trigger && trigger.value));
    navigator.credentials
      .create(creationOptions(opts))
      .then(function (cred) { submitWith(result, attestationJSON(cred)); })
      .catch(function (err) { console.error("[webauthn.js] security key registration failed", err); });
  }

  function passkeyLogin() {
    var data = field("passkey_challenge");
    var result = field("passkey_login");
    if (!data || !result || !supported()) return;
    abortConditional();
    navigator.credentials
      .get({ publicKey: requestOptions(parse(data.value)) })
      .then(function (cred) { submitWith(result, assertionJSON(cred)); })
      .catch(function (err) {
        console.error("[webauthn.js] passkey sign-in failed", err);
        return passkeyLoginAutocompleteInit();
      });
  }

  // Conditional UI: the browser offers passkeys in the identifier field's autofill.
  function passkeyLoginAutocompleteInit() {
    var data = field("passkey_challenge");
    var result = field("passkey_login");
    if (!data || !result || !window.PublicKeyCredential) return Promise.resolve();
    var available = PublicKeyCredential.isConditionalMediationAvailable
      ? PublicKeyCredential.isConditionalMediationAvailable()
      : Promise.resolve(false);
    return available.then(function (ok) {
      if (!ok) return;
      abortConditional();
      window.abortPasskeyConditionalUI = new AbortController();
      return navigator.credentials
        .get({
          publicKey: requestOptions(parse(data.value)),
          mediation: "conditional",
          signal: window.abortPasskeyConditionalUI.signal,
        })
        .then(function (cred) { submitWith(result, assertionJSON(cred)); })
        .catch(function (err) { console.debug("[webauthn.js] passkey autofill ended", err); });
    });
  }

  // Registration: `passkey_create_data` holds {credentialOptions, displayNameFieldName(s)}; the
  // user's name comes from the first filled display-name field of the same form.
  function passkeyRegistration() {
    var data = field("passkey_create_data");
    var result = field("passkey_register");
    if (!data || !result || !supported()) return;
    var create = parse(data.value);
    var names = (create.displayNameFieldNames && create.displayNameFieldNames.length)
      ? create.displayNameFieldNames
      : [create.displayNameFieldName];
    var form = data.closest("form") || document;
    var display = "";
    for (var i = 0; i < names.length && !display; i++) {
      var el = names[i] && form.querySelector('[name="' + names[i] + '"]');
      if (el && el.value) display = el.value;
    }
    var opts = create.credentialOptions;
    opts.publicKey.user.name = display;
    opts.publicKey.user.displayName = display;
    navigator.credentials
      .create(creationOptions(opts))
      .then(function (cred) { submitWith(result, attestationJSON(cred)); })
      .catch(function (err) { console.error("[webauthn.js] passkey registration failed", err); });
  }

  // Settings: `passkey_create_data` holds the creation options themselves.
  function passkeySettingsRegistration() {
    var data = field("passkey_create_data");
    var result = field("passkey_settings_register");
    if (!data || !result || !supported()) return;
    navigator.credentials
      .create(creationOptions(parse(data.value)))
      .then(function (cred) { submitWith(result, attestationJSON(cred)); })
      .catch(function (err) { console.error("[webauthn.js] passkey registration failed", err); });
  }

  var fns = {
    WebAuthnLogin: webAuthnLogin,
    WebAuthnRegistration: webAuthnRegistration,
    PasskeyLogin: passkeyLogin,
    PasskeyLoginAutocompleteInit: passkeyLoginAutocompleteInit,
    PasskeyRegistration: passkeyRegistration,
    PasskeySettingsRegistration: passkeySettingsRegistration,
  };
  Object.keys(fns).forEach(function (k) {
    window["ory" + k] = fns[k];
    // Older front ends (Ory Elements v0) call the underscored names.
    window["__ory" + k] = fns[k];
  });
  window.__oryWebAuthnInitialized = true;
  window.dispatchEvent(new CustomEvent("oryWebAuthnInitialized"));
})();
