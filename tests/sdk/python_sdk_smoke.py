"""Drives a running Sallyport with the official Ory Kratos Python SDK (pydantic models reject
missing or ill-typed fields, so this checks response shapes against Kratos' OpenAPI spec).

Usage: python_sdk_smoke.py <public base URL> <admin base URL>
"""
import json
import sys
import uuid

import ory_kratos_client as k
from ory_kratos_client.api import courier_api, frontend_api, identity_api

public, admin = sys.argv[1], sys.argv[2]
fe = frontend_api.FrontendApi(k.ApiClient(k.Configuration(host=public)))
ia = identity_api.IdentityApi(k.ApiClient(k.Configuration(host=admin)))
ca = courier_api.CourierApi(k.ApiClient(k.Configuration(host=admin)))
email = f"sdk-{uuid.uuid4().hex[:8]}@example.org"
password = "a-strong-passw0rd!"

flow = fe.create_native_registration_flow()
res = fe.update_registration_flow(
    flow=flow.id,
    update_registration_flow_body=k.UpdateRegistrationFlowBody(
        k.UpdateRegistrationFlowWithPasswordMethod(method="password", password=password, traits={"email": email})
    ),
)
assert res.identity.traits["email"] == email

lf = fe.create_native_login_flow()
try:
    fe.update_login_flow(
        flow=lf.id,
        update_login_flow_body=k.UpdateLoginFlowBody(
            k.UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password="wrong-password")
        ),
    )
    raise AssertionError("a wrong password must not sign in")
except k.exceptions.ApiException as e:
    assert e.status == 400, e.status
    assert json.loads(e.body)["ui"]["messages"][0]["id"] == 4000006

lf = fe.create_native_login_flow()
login = fe.update_login_flow(
    flow=lf.id,
    update_login_flow_body=k.UpdateLoginFlowBody(
        k.UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password=password)
    ),
)
token = login.session_token
assert token.startswith("ory_st_")
who = fe.to_session(x_session_token=token)
assert who.identity.traits["email"] == email
assert len(fe.list_my_sessions(x_session_token=token)) >= 0

sf = fe.create_native_settings_flow(x_session_token=token)
assert fe.get_settings_flow(id=sf.id, x_session_token=token).identity.id == who.identity.id
updated = fe.update_settings_flow(
    flow=sf.id,
    x_session_token=token,
    update_settings_flow_body=k.UpdateSettingsFlowBody(
        k.UpdateSettingsFlowWithProfileMethod(method="profile", traits={"email": email, "name": {"first": "S"}})
    ),
)
assert updated.state == "success"

rf = fe.create_native_recovery_flow()
sent = fe.update_recovery_flow(
    flow=rf.id,
    update_recovery_flow_body=k.UpdateRecoveryFlowBody(k.UpdateRecoveryFlowWithCodeMethod(method="code", email=email)),
)
assert sent.state == "sent_email"
vf = fe.create_native_verification_flow()
v = fe.update_verification_flow(
    flow=vf.id,
    update_verification_flow_body=k.UpdateVerificationFlowBody(k.UpdateVerificationFlowWithCodeMethod(method="code", email=email)),
)
assert v.state == "sent_email"
assert fe.get_verification_flow(id=vf.id).state == "sent_email"

assert [s.id for s in ia.list_identity_schemas()] == ["default"]
ident = ia.list_identities(credentials_identifier=email)[0]
assert ia.get_identity(ident.id, include_credential=["password"]).credentials["password"].identifiers == [email]
code = ia.create_recovery_code_for_identity(k.CreateRecoveryCodeForIdentityBody(identity_id=ident.id, flow_type="api"))
assert len(code.recovery_code) == 6
sessions = ia.list_identity_sessions(ident.id)
assert ia.extend_session(sessions[0].id).id == sessions[0].id
patched = ia.patch_identity(ident.id, json_patch=[k.JsonPatch(op="replace", path="/metadata_public", value={"a": 1})])
assert patched.metadata_public == {"a": 1}
batch = ia.batch_patch_identities(
    k.PatchIdentitiesBody(
        identities=[k.IdentityPatch(create=k.CreateIdentityBody(schema_id="default", traits={"email": f"b-{email}"}))]
    )
)
assert batch.identities[0].action == "create"
messages = ca.list_courier_messages()
assert {m.template_type for m in messages} >= {"recovery_code_valid", "verification_code_valid"}
assert ca.get_courier_message(messages[0].id).id == messages[0].id

fe.perform_native_logout(k.PerformNativeLogoutBody(session_token=token))
try:
    fe.to_session(x_session_token=token)
    raise AssertionError("a logged-out token must not work")
except k.exceptions.ApiException as e:
    assert e.status == 401
print("official Python SDK: all calls succeeded")
