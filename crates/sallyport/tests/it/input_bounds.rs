//! Nesting bounds (issue 7.1): a request nested 10,000 levels deep once overflowed a worker's stack and
//! aborted the whole process. The regression test runs the real binary in its own process, so an
//! abort shows up as a dead server rather than taking the test harness down with it.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::cli::{BIN, free_port, run, terminate, wait_for, write_config};
use crate::support::client::{api, message_ids, send};
use crate::support::{Backend, TestDb, TestServer};

const LIMIT: usize = sallyport_core::limits::MAX_NESTING_DEPTH;

fn deep_form_field(levels: usize) -> String {
    format!("method=password&traits{}.b=1&password=x", ".a".repeat(levels))
}

fn deep_json(levels: usize) -> String {
    format!(
        "{{\"method\":\"password\",\"password\":\"x\",\"traits\":{}1{}}}",
        "{\"a\":".repeat(levels),
        "}".repeat(levels)
    )
}

/// The submission answer Kratos gives for a 400 during a flow submission: the flow, with the
/// reason as message 4000001.
fn assert_depth_refused_on_flow(st: reqwest::StatusCode, f: &Value) {
    assert_eq!(st, 400, "{f}");
    assert_eq!(message_ids(f), vec![4000001], "{f}");
    let text = f["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("maximum nesting depth of {LIMIT} levels")),
        "{text}"
    );
}

both_backends!(
    ten_thousand_levels_answer_400_and_the_process_lives,
    |b: Backend| async move {
        let db = TestDb::new(b).await;
        let dir = tempfile::tempdir().unwrap();
        let (public, admin) = (free_port(), free_port());
        let cfg = write_config(dir.path(), &db.dsn, public, admin);
        let cfg_s = cfg.to_str().unwrap();
        let (ok, _, err) = run(&["migrate", "sql", "-e", "--yes", "-c", cfg_s], &[]);
        assert!(ok, "{err}");
        let mut child = Command::new(BIN)
            .args(["serve", "-c", cfg_s])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pub_url = |p: &str| format!("http://127.0.0.1:{public}/{p}");
        let (st, _) = wait_for(&pub_url("health/ready"), 200, Duration::from_secs(20)).await;
        assert_eq!(st, 200);

        let c = api();
        for kind in ["registration", "login"] {
            let (_, flow) = send(c.get(pub_url(&format!("self-service/{kind}/api")))).await;
            let action = flow["ui"]["action"].as_str().unwrap().to_owned();
            let (st, f) = send(
                c.post(&action)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(deep_form_field(10_000)),
            )
            .await;
            assert_depth_refused_on_flow(st, &f);
            let (st, f) = send(
                c.post(&action)
                    .header("content-type", "application/json")
                    .body(deep_json(10_000)),
            )
            .await;
            assert_depth_refused_on_flow(st, &f);
        }
        let (st, e) = send(
            c.post(format!("http://127.0.0.1:{admin}/admin/identities"))
                .header("content-type", "application/json")
                .body(deep_json(10_000)),
        )
        .await;
        assert_eq!(st, 400, "{e}");
        assert!(
            e["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("maximum nesting depth of 64 levels"),
            "{e}"
        );

        assert!(child.try_wait().unwrap().is_none(), "the server process died");
        let (st, _) = wait_for(&pub_url("health/alive"), 200, Duration::from_secs(2)).await;
        assert_eq!(st, 200, "the server still answers");
        let (_, flow) = send(c.get(pub_url("self-service/login/api"))).await;
        assert!(flow["id"].is_string(), "{flow}");
        assert!(terminate(&mut child), "clean shutdown after the attack");
    }
);

fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("leaf"), |acc, _| json!({ "a": acc }))
}

both_backends!(
    metadata_at_the_limit_is_kept_one_deeper_is_refused,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let c = api();
        // The body is one level, metadata_public the other 63.
        let body = json!({"schema_id": "default", "traits": {"email": "deep@example.org"}, "metadata_public": nested(LIMIT - 1)});
        let (st, created) = send(c.post(s.admin_url("admin/identities")).json(&body)).await;
        assert_eq!(st, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let (st, got) = send(c.get(s.admin_url(&format!("admin/identities/{id}")))).await;
        assert_eq!(st, 200);
        assert_eq!(got["metadata_public"], nested(LIMIT - 1));

        let body = json!({"schema_id": "default", "traits": {"email": "deeper@example.org"}, "metadata_admin": nested(LIMIT)});
        let (st, e) = send(c.post(s.admin_url("admin/identities")).json(&body)).await;
        assert_eq!(st, 400, "{e}");
        assert_eq!(e["error"]["status"], "Bad Request");
        assert_eq!(
            e["error"]["reason"],
            "The JSON request body exceeds the maximum nesting depth of 64 levels."
        );
        assert_eq!(
            e["error"]["message"],
            "The request was malformed or contained invalid parameters"
        );
        let (st, e) = send(c.put(s.admin_url(&format!("admin/identities/{id}"))).json(&body)).await;
        assert_eq!(st, 400, "{e}");

        // Patches cannot stack levels: each op is within the body limit, the result would not be.
        let ops: Vec<Value> = (0..4)
            .map(|i| {
                json!({"op": "add", "path": format!("/metadata_public{}/b", "/a".repeat(i * 20)), "value": nested(40)})
            })
            .collect();
        let (st, e) = send(c.patch(s.admin_url(&format!("admin/identities/{id}"))).json(&ops)).await;
        assert_eq!(st, 400, "{e}");
        assert_eq!(
            e["error"]["reason"],
            "The patched identity exceeds the maximum nesting depth of 64 levels."
        );
        // Self-copies that would double the document forty times.
        let ops: Vec<Value> = (0..40)
            .map(|i| json!({"op": "copy", "from": "/metadata_public", "path": format!("/metadata_public/c{i}")}))
            .collect();
        let (st, e) = send(c.patch(s.admin_url(&format!("admin/identities/{id}"))).json(&ops)).await;
        assert_eq!(st, 400, "{e}");
        let (_, got) = send(c.get(s.admin_url(&format!("admin/identities/{id}")))).await;
        assert_eq!(got["metadata_public"], nested(LIMIT - 1), "nothing was written");

        // Batch creation goes through the same body check.
        let (st, e) = send(
            c.patch(s.admin_url("admin/identities"))
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"identities\":[{{\"create\":{{\"schema_id\":\"default\",\"traits\":{}1{}}}}}]}}",
                    "{\"a\":".repeat(LIMIT),
                    "}".repeat(LIMIT)
                )),
        )
        .await;
        assert_eq!(st, 400, "{e}");
        s.shutdown().await;
    }
);

both_backends!(
    form_fields_at_the_limit_decode_one_deeper_is_refused,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let c = api();
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        let action = flow["ui"]["action"].as_str().unwrap().to_owned();
        // `traits` + 62 × `a` + `b` = 64 segments: decoded, then refused by the schema, not by depth.
        let at_limit = format!("method=password&traits{}.b=1&password=x", ".a".repeat(LIMIT - 2));
        let (st, f) = send(
            c.post(&action)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(at_limit),
        )
        .await;
        assert_eq!(st, 400);
        assert!(!f.to_string().contains("nesting depth"), "{f}");
        let (st, f) = send(
            c.post(&action)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(deep_form_field(LIMIT - 1)),
        )
        .await;
        assert_depth_refused_on_flow(st, &f);
        // Multipart is not a body Sallyport decodes: a clear 400, whatever is inside.
        let (st, f) = send(
            c.post(&action)
                .header("content-type", "multipart/form-data; boundary=x")
                .body(format!(
                    "--x\r\nContent-Disposition: form-data; name=\"traits{}\"\r\n\r\n1\r\n--x--\r\n",
                    ".a".repeat(10_000)
                )),
        )
        .await;
        assert_eq!(st, 400, "{f}");
        assert!(f.to_string().contains("multipart/form-data"), "{f}");
        s.shutdown().await;
    }
);
