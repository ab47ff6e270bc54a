use sallyport_core::flow::{Flow, FlowKind, FlowState, FlowType};
use sallyport_core::store::Store;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use super::{conflict, not_found};

const KINDS: [FlowKind; 5] = [
    FlowKind::Login,
    FlowKind::Registration,
    FlowKind::Settings,
    FlowKind::Recovery,
    FlowKind::Verification,
];

pub async fn run(store: &dyn Store) {
    let now = time_fmt::now();
    for (n, kind) in KINDS.into_iter().enumerate() {
        let flow_type = if n % 2 == 0 {
            FlowType::Browser
        } else {
            FlowType::Api
        };
        let url = format!("http://127.0.0.1:4433/self-service/{}/browser", kind.as_str());
        let mut flow = Flow::new(
            kind,
            flow_type,
            url,
            "http://127.0.0.1:4433/",
            Duration::hours(1),
            "csrf".into(),
            now,
        );
        flow.ui.push(Node::csrf("csrf"));
        store.create_flow(&flow).await.expect("create flow");
        assert_eq!(store.get_flow(kind, flow.id).await.expect("get flow"), flow);
        conflict(
            store.create_flow(&flow).await,
            "selfservice_flows",
            "duplicate flow",
        );

        let later = now + Duration::seconds(30);
        flow.state = FlowState::SentEmail;
        flow.active = Some("code".into());
        flow.return_to = Some("https://app.example.org/after".into());
        flow.identity_id = Some(Uuid::new_v4());
        flow.internal_context = json!({"code": {"address": "x@example.org"}, "z": 1, "a": [true, null]});
        flow.submit_count += 1;
        flow.ui.push(Node::input(Group::Default, "identifier", "text"));
        flow.expires_at = later + Duration::hours(1);
        flow.updated_at = later;
        store.update_flow(&flow).await.expect("update flow");
        assert_eq!(
            store.get_flow(kind, flow.id).await.expect("get updated flow"),
            flow
        );

        let other = KINDS[(n + 1) % KINDS.len()];
        not_found(store.get_flow(other, flow.id).await, "flow of another kind");
        let mut wrong = flow.clone();
        wrong.kind = other;
        not_found(store.update_flow(&wrong).await, "update as another kind");
    }
    not_found(
        store.get_flow(FlowKind::Login, Uuid::new_v4()).await,
        "unknown flow",
    );
    let ghost = Flow::new(
        FlowKind::Login,
        FlowType::Api,
        "u".into(),
        "/",
        Duration::hours(1),
        "c".into(),
        now,
    );
    not_found(store.update_flow(&ghost).await, "update of unknown flow");
}

pub async fn errors(store: &dyn Store) {
    let now = time_fmt::now();
    let id = Uuid::new_v4();
    let error = json!({"id": "security_csrf_violation", "code": 403, "status": "Forbidden", "reason": "x"});
    store.create_error(id, &error, now).await.expect("create error");
    assert_eq!(
        store.get_error(id).await.expect("get error"),
        (error.clone(), now, now)
    );
    conflict(
        store.create_error(id, &error, now).await,
        "selfservice_errors",
        "duplicate error",
    );
    not_found(store.get_error(Uuid::new_v4()).await, "unknown error");
}
