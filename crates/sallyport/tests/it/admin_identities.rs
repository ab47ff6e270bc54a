//! The admin identity API.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{api, body, native_login, send};
use crate::support::{Backend, TestServer};

both_backends!(crud_and_conflicts, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let res = c
        .post(s.admin_url("admin/identities"))
        .json(&json!({
            "schema_id": "default",
            "traits": {"email": "Lee@Example.org"},
            "metadata_public": {"plan": "pro"},
            "metadata_admin": {"note": "vip"},
            "external_id": "crm-1",
            "credentials": {"password": {"config": {"hashed_password": "$2b$04$atf9KHoKrTIsJZ1PpbLWu.LRY6qGB0CW6nfqgFWHTD5PfIG4hOaPq"}}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let (_, created) = body(res).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(location.ends_with(&format!("/admin/identities/{id}")));
    assert_eq!(created["metadata_admin"], json!({"note": "vip"}));
    assert_eq!(
        created["credentials"]["password"]["identifiers"],
        json!(["lee@example.org"])
    );
    assert!(created["credentials"]["password"].get("config").is_none());
    assert_eq!(created["verifiable_addresses"][0]["status"], "pending");
    assert_eq!(created["schema_url"], s.public_url("schemas/ZGVmYXVsdA"));

    let (st, got) =
        send(c.get(s.admin_url(&format!("admin/identities/{id}?include_credential=password")))).await;
    assert_eq!(st, 200);
    assert!(
        got["credentials"]["password"]["config"]["hashed_password"]
            .as_str()
            .unwrap()
            .starts_with("$2b$04$")
    );
    // Same API without the /admin prefix, and by external id.
    let (st, _) = send(c.get(s.admin_url(&format!("identities/{id}")))).await;
    assert_eq!(st, 200);
    let (st, ext) = send(c.get(s.admin_url("admin/identities/by/external/crm-1"))).await;
    assert_eq!((st.as_u16(), ext["id"].as_str()), (200, Some(id.as_str())));

    // Duplicate identifier → 409; unknown field → 400; invalid traits → 400.
    let (st, e) = send(
        c.post(s.admin_url("admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": "lee@example.org"}})),
    )
    .await;
    assert_eq!(st, 409, "{e}");
    // External ids are unique too; identities without one are not (PostgreSQL indexes only the
    // identities that have one).
    let (st, e) = send(c.post(s.admin_url("admin/identities")).json(
        &json!({"schema_id": "default", "traits": {"email": "ext@example.org"}, "external_id": "crm-1"}),
    ))
    .await;
    assert_eq!(st, 409, "{e}");
    for n in 0..2 {
        let (st, e) = send(
            c.post(s.admin_url("admin/identities"))
                .json(&json!({"schema_id": "default", "traits": {"email": format!("noext{n}@example.org")}})),
        )
        .await;
        assert_eq!(st, 201, "{e}");
    }
    let (st, _) = send(
        c.post(s.admin_url("admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": "m@example.org"}, "bogus": 1})),
    )
    .await;
    assert_eq!(st, 400);
    let (st, e) = send(
        c.post(s.admin_url("admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": "nope"}})),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        e["error"]["reason"].as_str().unwrap().contains("traits.email"),
        "{e}"
    );
    let (st, _) = send(c.post(s.admin_url("admin/identities")).json(&json!({"schema_id": "default", "traits": {"email": "h@example.org"}, "credentials": {"password": {"config": {"hashed_password": "$unknown$abc"}}}}))).await;
    assert_eq!(st, 400);

    // The imported bcrypt hash ("test") signs in.
    let (st, login) = native_login(&s, "lee@example.org", "test").await;
    assert_eq!(st, 200, "{login}");

    // PUT replaces; omitted metadata is cleared.
    let (st, put) =
        send(c.put(s.admin_url(&format!("admin/identities/{id}"))).json(
            &json!({"schema_id": "default", "traits": {"email": "lee2@example.org"}, "state": "active"}),
        ))
        .await;
    assert_eq!(st, 200, "{put}");
    assert_eq!(put["metadata_admin"], json!(null));
    assert_eq!(
        put["credentials"]["password"]["identifiers"],
        json!(["lee2@example.org"])
    );
    // PATCH on a forbidden path.
    let (st, _) = send(
        c.patch(s.admin_url(&format!("admin/identities/{id}")))
            .json(&json!([{"op": "replace", "path": "/id", "value": "x"}])),
    )
    .await;
    assert_eq!(st, 400);

    // Patching a credential's own subtree works, like Kratos' PATCH test; its type must stay.
    let (st, patched) = send(c.patch(s.admin_url(&format!("admin/identities/{id}")))
            .json(&json!([{"op": "add", "path": "/credentials/password/config/hashed_password", "value": "$2b$04$atf9KHoKrTIsJZ1PpbLWu.LRY6qGB0CW6nfqgFWHTD5PfIG4hOaPq"}]))).await;
    assert_eq!(st, 200, "{patched}");
    let (st, _) = native_login(&s, "lee2@example.org", "test").await;
    assert_eq!(st, 200);
    let (st, _) = send(
        c.patch(s.admin_url(&format!("admin/identities/{id}")))
            .json(&json!([{"op": "replace", "path": "/credentials/password/type", "value": "totp"}])),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = send(
        c.patch(s.admin_url(&format!("admin/identities/{id}")))
            .json(&json!([{"op": "remove", "path": "/credentials"}])),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = send(c.delete(s.admin_url(&format!("admin/identities/{id}/credentials/password")))).await;
    assert_eq!(st, 400, "the last first factor cannot be removed");
    let res = c
        .delete(s.admin_url(&format!("admin/identities/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (st, _) = send(c.get(s.admin_url(&format!("admin/identities/{id}")))).await;
    assert_eq!(st, 404);
    // Its identifier went with it (through the credential): the address can sign up again.
    let (st, e) = send(
        c.post(s.admin_url("admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": "lee2@example.org"}, "credentials": {"password": {"config": {"password": "a new passphrase 123"}}}})),
    )
    .await;
    assert_eq!(st, 201, "{e}");
    s.shutdown().await;
});

both_backends!(list_paginates_and_filters, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let batch: Vec<_> = (0..7)
        .map(|i| json!({"create": {"schema_id": "default", "traits": {"email": format!("user{i}@example.org")}}, "patch_id": uuid::Uuid::new_v4()}))
        .collect();
    let (st, res) = send(
        c.patch(s.admin_url("admin/identities"))
            .json(&json!({"identities": batch})),
    )
    .await;
    assert_eq!(st, 200, "{res}");
    assert!(
        res["identities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "create")
    );

    let mut seen = vec![];
    let mut url = s.admin_url("admin/identities?page_size=3");
    loop {
        let r = c.get(&url).send().await.unwrap();
        let link = r
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let (_, page) = body(r).await;
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        match link.split(',').find(|l| l.contains("rel=\"next\"")) {
            Some(next) => {
                url = next
                    .trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            }
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);
    let r = c
        .get(s.admin_url("admin/identities?page=1&per_page=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("x-total-count").unwrap(), "7");
    let (_, page) = body(r).await;
    assert_eq!(page.as_array().unwrap().len(), 2);
    let (_, found) =
        send(c.get(s.admin_url("admin/identities?credentials_identifier=USER3@example.org"))).await;
    assert_eq!(
        found.as_array().unwrap().len(),
        0,
        "no password credential was imported for them"
    );
    let two = format!("ids={}&ids={}", seen[0], seen[1]);
    let (_, by_ids) = send(c.get(s.admin_url(&format!("admin/identities?{two}")))).await;
    assert_eq!(by_ids.as_array().unwrap().len(), 2);
    s.shutdown().await;
});

/// `$2b$04$…` of "test": a bcrypt hash the batch endpoint must store as given, never hash again.
const TEST_HASH: &str = "$2b$04$atf9KHoKrTIsJZ1PpbLWu.LRY6qGB0CW6nfqgFWHTD5PfIG4hOaPq";

fn with_hash(email: &str) -> serde_json::Value {
    json!({"schema_id": "default", "traits": {"email": email},
           "credentials": {"password": {"config": {"hashed_password": TEST_HASH}}}})
}

// Kratos' partial batch: every valid identity is stored, each refused one answers `error` with its
// own reason, and the answer keeps the request's order and patch ids.
both_backends!(
    batch_stores_the_valid_and_names_the_refused,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let c = api();
        let (st, _) = send(
            c.post(s.admin_url("admin/identities"))
                .json(&with_hash("taken@example.org")),
        )
        .await;
        assert_eq!(st, 201);
        let items = [
            with_hash("ann@example.org"),
            with_hash("taken@example.org"),
            json!({"schema_id": "default", "traits": {"email": "not an email"}}),
            with_hash("bob@example.org"),
            with_hash("ANN@example.org"),
            json!({"schema_id": "default", "traits": {"email": "cy@example.org"},
               "credentials": {"password": {"config": {"hashed_password": "$9$nonsense"}}}}),
        ];
        let patch_ids: Vec<uuid::Uuid> = items.iter().map(|_| uuid::Uuid::new_v4()).collect();
        let batch: Vec<_> = items
            .iter()
            .zip(&patch_ids)
            .map(|(i, p)| json!({"create": i, "patch_id": p}))
            .collect();
        let (st, res) = send(
            c.patch(s.admin_url("admin/identities"))
                .json(&json!({"identities": batch})),
        )
        .await;
        assert_eq!(st, 200, "{res}");
        let out = res["identities"].as_array().unwrap();
        assert_eq!(out.len(), items.len());
        for (r, p) in out.iter().zip(&patch_ids) {
            assert_eq!(r["patch_id"], json!(p), "{r}");
        }
        let actions: Vec<&str> = out.iter().map(|r| r["action"].as_str().unwrap()).collect();
        assert_eq!(
            actions,
            ["create", "error", "error", "create", "error", "error"],
            "{res}"
        );
        // A stored identity's identifier, and one taken earlier in the same batch: both conflicts.
        for k in [1, 4] {
            assert_eq!(out[k]["error"]["code"], 409, "{}", out[k]);
            assert_eq!(
                out[k]["error"]["reason"],
                "This identity conflicts with another identity that already exists."
            );
        }
        assert_eq!(out[2]["error"]["code"], 400, "{}", out[2]);
        assert_eq!(out[5]["error"]["code"], 400, "{}", out[5]);
        // An item that does not decode, and one that is not a create: each refused on its own, the
        // decoder's reason without a position that would point into the item rather than the body.
        let (st, res) = send(
            c.patch(s.admin_url("admin/identities"))
                .json(&json!({"identities": [
                    {"create": {"schema_id": "default", "traits": {"email": "dee@example.org"}, "nope": 1}},
                    {"patch_id": patch_ids[0]},
                    {"create": with_hash("dee@example.org")},
                ]})),
        )
        .await;
        assert_eq!(st, 200, "{res}");
        let odd = res["identities"].as_array().unwrap();
        assert_eq!(odd[0]["action"], "error", "{res}");
        let reason = odd[0]["error"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("Unable to decode identity: unknown field `nope`"),
            "{reason}"
        );
        assert!(!reason.contains(" at line "), "{reason}");
        assert_eq!(odd[1]["action"], "error", "{res}");
        assert_eq!(
            odd[1]["error"]["reason"],
            "Only \"create\" patches are supported."
        );
        assert_eq!(odd[1]["patch_id"], json!(patch_ids[0]));
        assert_eq!(odd[2]["action"], "create", "{res}");

        let (_, all) = send(c.get(s.admin_url("admin/identities"))).await;
        assert_eq!(all.as_array().unwrap().len(), 4, "taken, ann, bob and dee: {all}");
        let ann = out[0]["identity"].as_str().unwrap();
        let (_, got) =
            send(c.get(s.admin_url(&format!("admin/identities/{ann}?include_credential=password")))).await;
        assert_eq!(got["traits"]["email"], "ann@example.org");
        assert_eq!(
            got["credentials"]["password"]["config"]["hashed_password"], TEST_HASH,
            "a pre-hashed password is stored as given"
        );
        for (email, k) in [("ann@example.org", 0), ("bob@example.org", 3)] {
            let (st, login) = native_login(&s, email, "test").await;
            assert_eq!(st, 200, "{email}: {login}");
            assert_eq!(login["session"]["identity"]["id"], out[k]["identity"]);
        }
        s.shutdown().await;
    }
);

both_backends!(batch_limits_are_kratos, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let many: Vec<_> = (0..1001)
        .map(|i| json!({"create": with_hash(&format!("u{i}@example.org"))}))
        .collect();
    let (st, res) = send(
        c.patch(s.admin_url("admin/identities"))
            .json(&json!({"identities": many})),
    )
    .await;
    assert_eq!(st, 400, "{res}");
    assert_eq!(
        res["error"]["reason"],
        "The maximum number of identities that can be created or deleted at once is 1000."
    );
    let plain: Vec<_> = (0..201)
        .map(|i| json!({"create": {"schema_id": "default", "traits": {"email": format!("p{i}@example.org")},
                                    "credentials": {"password": {"config": {"password": "a-long-password-1"}}}}}))
        .collect();
    let (st, res) = send(
        c.patch(s.admin_url("admin/identities"))
            .json(&json!({"identities": plain})),
    )
    .await;
    assert_eq!(st, 400, "{res}");
    assert!(
        res["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("plaintext password is 200"),
        "{res}"
    );
    let (_, all) = send(c.get(s.admin_url("admin/identities"))).await;
    assert_eq!(all.as_array().unwrap().len(), 0, "a refused batch stores nothing");

    // A full batch goes in whole.
    let full: Vec<_> = (0..1000)
        .map(|i| json!({"create": with_hash(&format!("u{i}@example.org"))}))
        .collect();
    let (st, res) = send(
        c.patch(s.admin_url("admin/identities"))
            .json(&json!({"identities": full})),
    )
    .await;
    assert_eq!(st, 200);
    assert!(
        res["identities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "create")
    );
    let r = c
        .get(s.admin_url("admin/identities?page=0&per_page=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("x-total-count").unwrap(), "1000");
    let (st, login) = native_login(&s, "u999@example.org", "test").await;
    assert_eq!(st, 200, "{login}");
    s.shutdown().await;
});

// On PostgreSQL a batch reaches the tables through COPY's text format: the characters it reads
// specially (tab, newline, carriage return, backslash), JSON escapes, quotes and non-ASCII text must
// come back through the admin API exactly as sent.
both_backends!(batch_round_trips_odd_characters, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let odd = "tab\there new\nline cr\r back\\slash \\N \\. \"dq\" 'sq' é ✓ 𝄞 \u{1} end";
    let items: Vec<_> = (0..3)
        .map(|i| {
            json!({
                "schema_id": "default",
                "traits": {"email": format!("odd{i}@example.org"), "name": {"first": format!("{odd}{i}"), "last": odd}},
                "metadata_public": {"note": odd, "list": [odd, 1.5, null, true], "k\t\\\"ey": {}},
                "metadata_admin": {"note": format!("{odd}{odd}")},
                "external_id": format!("ext\t{i}\\\n{odd}"),
                "credentials": {"password": {"config": {"hashed_password": TEST_HASH}}},
            })
        })
        .collect();
    let batch: Vec<_> = items.iter().map(|i| json!({"create": i})).collect();
    let (st, res) = send(
        c.patch(s.admin_url("admin/identities"))
            .json(&json!({"identities": batch})),
    )
    .await;
    assert_eq!(st, 200, "{res}");
    let out = res["identities"].as_array().unwrap();
    for (sent, r) in items.iter().zip(out) {
        assert_eq!(r["action"], "create", "{r}");
        let id = r["identity"].as_str().unwrap();
        let (st, got) = send(c.get(s.admin_url(&format!("admin/identities/{id}")))).await;
        assert_eq!(st, 200, "{got}");
        for field in ["traits", "metadata_public", "metadata_admin", "external_id"] {
            assert_eq!(got[field], sent[field], "{field}");
        }
    }
    let (st, login) = native_login(&s, "odd2@example.org", "test").await;
    assert_eq!(st, 200, "{login}");
    s.shutdown().await;
});
