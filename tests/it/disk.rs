//! What a hosted pipeline keeps on disk: bytes it can no longer replay are
//! given back (issue 18, item 8).

use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};
use weir_tests::server::Server;
use weir_tests::Scratch;

const LINES: &str = "name: lines\nsource: { http: { format: lines } }\ncheckpoint: { interval: 100ms }\n";

/// The attack (or just a busy feed): posting for ever, so that the journal
/// of every byte ever posted fills the server's disk. Now what no retained
/// checkpoint can replay is freed, and a killed server still resumes from
/// its checkpoint with nothing lost or repeated.
#[test]
fn an_http_pipelines_journal_is_given_back_behind_its_retained_checkpoints() {
    let s = Scratch::new();
    let mut server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    let id = server.pipeline(&token, LINES);
    let line = |i: usize| format!("{i:06} {}", "x".repeat(1000));
    let (posts, per_post) = (40, 100);
    for p in 0..posts {
        let batch: Vec<String> = (p * per_post..(p + 1) * per_post).map(line).collect();
        server.send(&token, &id, &batch);
    }
    let total = posts * per_post;
    server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= total).expect("output");
    let journal = server.data_dir().join("pipelines").join(&id).join("ingest.log");
    let len = std::fs::metadata(&journal).unwrap().len();
    assert!(len > 4_000_000, "{len} bytes posted");
    // Once two more checkpoints hold offsets at the end, the bytes before are freed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let on_disk = || std::fs::metadata(&journal).unwrap().blocks() * 512;
    while on_disk() > len / 4 {
        assert!(Instant::now() < deadline, "{} of {len} bytes still on disk\n{}", on_disk(), server.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), len, "offsets stay: the length is kept");
    // The tenant sees what it uses: the journal as it is on disk now.
    let usage = server.get("/v1/usage", &token);
    assert_eq!((usage["tenant"].as_str(), usage["pipelines"].as_u64()), (Some("acme"), Some(1)), "{usage}");
    let disk = &usage["disk"];
    let ingest = disk["ingest"].as_u64().unwrap();
    assert!(ingest > 0 && ingest < len / 2, "{usage}");
    assert!(disk["output"].as_u64().unwrap() >= total as u64 * 1000, "{usage}");
    let parts = ["functions", "checkpoints_and_state", "ingest", "output", "dead_letters"];
    assert!(
        disk["total"].as_u64().unwrap() >= parts.iter().map(|k| disk[*k].as_u64().unwrap()).sum::<u64>(),
        "{usage}"
    );

    // A kill and a restart resume from a retained checkpoint: nothing lost, nothing twice.
    server.kill();
    let server = Server::start(server.data_dir()).expect("restart");
    let more: Vec<String> = (total..total + 50).map(line).collect();
    server.send(&token, &id, &more);
    let lines = server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= total + 50).expect("output");
    let mut ids: Vec<usize> = lines.iter().map(|l| l[..6].parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..total + 50).collect::<Vec<_>>());
}

/// A pipeline's committed output used to be kept for ever. Beyond the
/// server's `retention.output_mib` the oldest files go; the output API
/// goes on from the oldest kept.
#[test]
fn output_beyond_the_retention_is_deleted_oldest_first_and_reading_goes_on() {
    let s = Scratch::new();
    let config = s.write("serve.yaml", "retention: { output_mib: 1 }\n");
    let server = Server::start_with(&s.join("data"), &["--config", config.to_str().unwrap()]).expect("server");
    let token = server.tenant("acme", json!({}));
    let id = server.pipeline(&token, LINES);
    let line = |i: usize| format!("{i:06} {}", "x".repeat(1000));
    let total = 4000;
    // Fed over several checkpoints (100 ms), so the output is many files
    // (the newest file is kept whatever its size).
    for p in 0..total / 100 {
        server.send(&token, &id, &(p * 100..(p + 1) * 100).map(line).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(150));
    }
    let output = server.data_dir().join("pipelines").join(&id).join("output");
    let kept = || -> (u64, Vec<usize>) {
        let mut bytes = 0;
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&output).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("part-") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                bytes += text.len() as u64;
                ids.extend(text.lines().map(|l| l[..6].parse::<usize>().unwrap()));
            }
        }
        ids.sort_unstable();
        (bytes, ids)
    };
    // The newest record arrives, and what is kept shrinks to the budget.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (bytes, ids) = kept();
        if ids.last() == Some(&(total - 1)) && bytes <= 1 << 20 {
            // What is kept is the newest records, without a gap.
            assert!(ids.len() < total && ids.windows(2).all(|w| w[1] == w[0] + 1), "{} kept", ids.len());
            break;
        }
        assert!(Instant::now() < deadline, "{bytes} bytes kept, newest {:?}\n{}", ids.last(), server.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A reader from the start goes on at the oldest line kept.
    let page = server.get(&format!("/v1/pipelines/{id}/output?after=0.0.0&limit=5"), &token);
    let first = page["lines"][0].as_str().unwrap();
    assert!(first[..6].parse::<usize>().unwrap() > 0, "{first:.20}");
    let newest = server.get(&format!("/v1/pipelines/{id}/output?limit=1"), &token);
    assert!(newest["lines"][0].as_str().unwrap().starts_with(&format!("{:06}", total - 1)));
}

/// The attack: posting for ever to a *stopped* pipeline (its journal keeps
/// taking records, to be read when it resumes), so that nothing reads them
/// and the journal fills the server's disk at the rate quota's pace. The
/// tenant's journals are bounded by `max_ingest_mib`: past it a post is a
/// 429 naming the quota, and once the pipeline reads them (resumed, two
/// checkpoints later) the space comes back and posts are taken again, with
/// every accepted record in the output once.
#[test]
fn a_stopped_pipelines_journal_cannot_fill_the_disk() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({ "max_ingest_mib": 1 }));
    let id = server.pipeline(&token, LINES);
    let (status, reply) = server.call_until_done("POST", &format!("/v1/pipelines/{id}/stop"), &token, "", b"");
    assert_eq!(status, 200, "{reply}");
    let line = |i: usize| format!("{i:06} {}", "x".repeat(1000));
    // 100 KiB posts: about ten fit in 1 MiB.
    let mut next = 0;
    let refused = loop {
        let batch: Vec<String> = (next..next + 100).map(line).collect();
        let got = server.post_records(&token, &id, None, &batch);
        if got.status != 200 {
            break got;
        }
        next += 100;
        assert!(next <= 2_000, "2 MiB taken under a 1 MiB quota");
    };
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.reply["error"]["code"], "ingest_quota_exceeded", "{refused:?}");
    assert!(refused.reply["error"]["message"].as_str().unwrap().contains("max_ingest_mib"), "{refused:?}");
    assert!((800..=1_100).contains(&next), "{next} records (about 100 KiB each 100) taken under 1 MiB");
    let usage = server.get("/v1/usage", &token);
    assert!(usage["disk"]["ingest"].as_u64().unwrap() > 800_000, "{usage}");
    assert_eq!(usage["quotas"]["max_ingest_mib"], 1, "{usage}");
    // Resumed, the pipeline reads the journal; its checkpoints give the space back.
    let (status, reply) = server.call("POST", &format!("/v1/pipelines/{id}/resume"), &token, "", b"");
    assert!(status < 300, "resume: {status} {reply}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let batch: Vec<String> = (next..next + 100).map(line).collect();
        let got = server.post_records(&token, &id, None, &batch);
        if got.status == 200 {
            next += 100;
            break;
        }
        assert_eq!(got.reply["error"]["code"], "ingest_quota_exceeded", "{got:?}");
        assert!(Instant::now() < deadline, "the space never came back\n{}", server.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= next).expect("output");
    let mut ids: Vec<usize> = lines.iter().map(|l| l[..6].parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..next).collect::<Vec<_>>(), "every accepted record once, none refused");
}
