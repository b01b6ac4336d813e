//! Stops, savepoints and swaps as operations: answered `202` at once, polled
//! at `GET /v1/operations/ID`, never holding a request while checkpoints are
//! awaited, never leaving a later request waiting behind them.

use serde_json::{json, Value};
use weir_tests::server::Server;
use weir_tests::{udf_dir, Scratch};

const TAGGED: &str = "name: tagged\nparallelism: 2\nsource: { http: { format: json } }\nsteps:\n  - map: { udf: tag@1 }\ncheckpoint: { interval: 200ms }\n";

fn server_with_tags(s: &Scratch) -> (Server, String) {
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    for (udf, file) in [("tag@1", "tag-one"), ("tag@2", "tag-two")] {
        server.upload(&token, udf, &udf_dir().join("test").join(format!("{file}@1.wasm")));
    }
    (server, token)
}

fn swap(server: &Server, token: &str, id: &str, body: &Value) -> (u16, Value) {
    server.call("PUT", &format!("/v1/pipelines/{id}/steps/0"), token, "application/json", body.to_string().as_bytes())
}

/// A swap request used to be held until the swap was over (up to a minute),
/// and a second swap of the pipeline queued behind it; when the pipeline
/// went away at the wrong moment, the first never returned and neither did
/// any later one.
#[test]
fn a_swap_is_answered_at_once_a_second_is_told_it_runs_and_a_delete_ends_it() {
    let s = Scratch::new();
    let (server, token) = server_with_tags(&s);
    let id = server.pipeline(&token, TAGGED);
    server.send(&token, &id, &["{\"id\":1}".to_string()]);

    // A long probation keeps the swap running while the rest happens.
    let (status, op) = swap(&server, &token, &id, &json!({ "udf": "tag@2", "probation_ms": 600_000 }));
    assert_eq!(status, 202, "{op}");
    assert_eq!(
        (op["kind"].as_str(), op["state"].as_str(), op["pipeline"].as_str()),
        (Some("swap"), Some("running"), Some(id.as_str()))
    );
    let op_id = op["id"].as_str().unwrap().to_string();

    let (status, second) = swap(&server, &token, &id, &json!({ "udf": "tag@2" }));
    assert_eq!(status, 409, "{second}");
    assert_eq!(second["error"]["code"], "operation_under_way");
    assert!(second["error"]["message"].as_str().unwrap().contains(&op_id), "{second}");

    // Another kind of operation on the same pipeline is not held up by it.
    let (status, sp) = server.call_until_done("POST", &format!("/v1/pipelines/{id}/savepoints"), &token, "", b"");
    assert_eq!(status, 200, "{sp}");
    let listed = server.get("/v1/operations", &token);
    let ids: Vec<&str> = listed["operations"].as_array().unwrap().iter().filter_map(|o| o["id"].as_str()).collect();
    assert!(ids.contains(&op_id.as_str()) && ids.len() == 2, "{listed}");
    assert_eq!(server.get(&format!("/v1/operations/{op_id}"), &token)["state"], "running");

    // Another tenant cannot see it.
    let other = server.tenant("other", json!({}));
    assert_eq!(server.call("GET", &format!("/v1/operations/{op_id}"), &other, "", b"").0, 404);
    assert_eq!(server.get("/v1/operations", &other)["operations"], json!([]));

    // Deleting the pipeline ends the swap: the old version, and why.
    assert_eq!(server.call("DELETE", &format!("/v1/pipelines/{id}"), &token, "", b"").0, 204);
    let (status, outcome) = server.until_done(&token, (202, op));
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["outcome"], "rolled_back", "{outcome}");
    assert!(outcome["reason"].as_str().unwrap().contains("stopped"), "{outcome}");
}

#[test]
fn a_stop_is_an_operation_whose_result_names_the_savepoint_and_a_second_stop_is_refused() {
    let s = Scratch::new();
    let (server, token) = server_with_tags(&s);
    let id = server.pipeline(&token, TAGGED);
    server.send(&token, &id, &["{\"id\":1}".to_string()]);
    let (status, op) = server.call("POST", &format!("/v1/pipelines/{id}/stop"), &token, "", b"");
    assert_eq!(status, 202, "{op}");
    let (status, again) = server.call("POST", &format!("/v1/pipelines/{id}/stop"), &token, "", b"");
    assert!(status == 409, "a second stop meanwhile is refused: {again}");
    let (status, stopped) = server.until_done(&token, (202, op));
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    assert!(stopped["savepoint"].as_str().is_some_and(|s| s.starts_with("savepoint-")), "{stopped}");
    assert_eq!(server.get(&format!("/v1/pipelines/{id}"), &token)["status"], "stopped");
    // A stop of a stopped pipeline is still a 409 at once, not an operation.
    let (status, reply) = server.call("POST", &format!("/v1/pipelines/{id}/stop"), &token, "", b"");
    assert_eq!(status, 409, "{reply}");
    assert_eq!(server.get("/v1/operations", &token)["operations"].as_array().unwrap().len(), 1);
}
