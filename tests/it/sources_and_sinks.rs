//! Sources (socket, stdin, CSV files) and sinks (stdout, one file, a part
//! per subtask), and key_by partitioning.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpListener;
use weir_tests::{sorted_lines, Scratch};

#[test]
fn words_from_a_socket_until_it_closes() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut conn, _) = listener.accept()?;
        conn.write_all(b"To be, or not to be:\nthat is the question.\n")?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        conn.write_all(b"Whether 'tis nobler\n")
    });
    let s = Scratch::new();
    let manifest = format!(
        "name: words\nparallelism: 2\nsource:\n  socket: {{ port: {port} }}\nsteps:\n  - flat_map: {{ udf: word-split@1 }}\nsink:\n  file: {{ path: words.txt, format: record }}\n"
    );
    s.run(&manifest).ok()?;
    server.join().expect("server thread")?;
    let records: Vec<serde_json::Value> =
        std::fs::read_to_string(s.join("words.txt"))?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let mut words: Vec<&str> = records.iter().filter_map(|r| r["value"].as_str()).collect();
    words.sort();
    let mut expected =
        vec!["to", "be", "or", "not", "to", "be", "that", "is", "the", "question", "whether", "tis", "nobler"];
    expected.sort();
    assert_eq!(words, expected);
    assert!(records.iter().all(|r| r["key"] == r["value"]), "word-split keys each word by itself");
    Ok(())
}

#[test]
fn stdin_to_stdout() -> anyhow::Result<()> {
    let s = Scratch::new();
    s.write("p.yaml", "name: echo\nsource:\n  stdin: {}\nsteps:\n  - map: { udf: evil@1 }\nsink:\n  stdout: {}\n");
    let run = s.weir(&["run", "p.yaml", "-q"], Some(b"one\ntwo\r\nthree")).ok()?;
    assert_eq!(run.stdout(), "one\ntwo\nthree\n");
    Ok(())
}

#[test]
fn csv_rows_become_json_objects() -> anyhow::Result<()> {
    let s = Scratch::new();
    s.write(
        "traffic.csv",
        "ip,bytes,path\n10.0.0.1,512,/a\n10.0.0.2,\"1,024\",/b\n10.0.0.1,7,\"/c \"\"quoted\"\"\"\nbroken,row\n",
    );
    s.run("name: csv\nsource:\n  file: { path: traffic.csv }\nsteps:\n  - map: { udf: project@1, params: { fields: \"ip,bytes\" } }\nsink:\n  file: { path: out.txt }\ndead_letter:\n  file: { path: dlq.ndjson }\n").ok()?;
    assert_eq!(
        sorted_lines(&s.join("out.txt"))?,
        vec![
            r#"{"ip":"10.0.0.1","bytes":512}"#,
            r#"{"ip":"10.0.0.1","bytes":7}"#,
            r#"{"ip":"10.0.0.2","bytes":"1,024"}"#
        ]
    );
    let dlq = std::fs::read_to_string(s.join("dlq.ndjson"))?;
    assert!(dlq.contains("row has 2 fields, expected 3 (ip,bytes,path)") && dlq.contains("broken,row"), "{dlq}");
    Ok(())
}

#[test]
fn key_by_sends_each_key_to_exactly_one_subtask() -> anyhow::Result<()> {
    let s = Scratch::new();
    let lines: Vec<String> = (0..2000).map(|i| format!("{{\"user\":\"u{}\",\"n\":{i}}}", i % 37)).collect();
    s.write("in.ndjson", lines.join("\n"));
    s.run("name: keyed\nparallelism: 3\nsource:\n  file: { path: in.ndjson, splits: 2 }\nsteps:\n  - key_by: { field: /user }\n  - map: { udf: evil@1 }\nsink:\n  file: { dir: out, format: record }\n").ok()?;
    let mut owner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut total = 0;
    for part in ["part-0.txt", "part-1.txt", "part-2.txt"] {
        for line in std::fs::read_to_string(s.join("out").join(part))?.lines() {
            let r: serde_json::Value = serde_json::from_str(line)?;
            let value: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap_or_default())?;
            assert_eq!(r["key"], value["user"], "the key is the field's text");
            owner.entry(r["key"].as_str().unwrap_or_default().to_string()).or_default().insert(part.to_string());
            total += 1;
        }
    }
    assert_eq!(total, 2000);
    assert_eq!(owner.len(), 37);
    assert!(owner.values().all(|parts| parts.len() == 1), "a key reached two subtasks: {owner:?}");
    let used: BTreeSet<&String> = owner.values().flatten().collect();
    assert_eq!(used.len(), 3, "37 keys should spread over all 3 subtasks");
    Ok(())
}

#[test]
fn ctrl_c_stops_an_endless_source_and_drains() -> anyhow::Result<()> {
    let s = Scratch::new();
    let manifest = s.write(
        "p.yaml",
        "name: endless\nparallelism: 2\nsource:\n  bids: { rate: 2000 }\nsteps:\n  - map: { udf: currency@1 }\nsink:\n  file: { dir: out }\n",
    );
    let child = std::process::Command::new(weir_tests::weir_bin())
        .args(["run", manifest.to_str().unwrap_or_default()])
        .env("WEIR_UDF_DIR", weir_tests::udf_dir())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status()?;
    assert!(status.success());
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stopping: draining"), "{err}");
    let lines = sorted_lines(&s.join("out"))?;
    assert!(lines.len() > 500, "about 2000 bids/s for 1.5 s should have been processed, got {}", lines.len());
    assert!(err.contains(&format!("{} written", lines.len())), "everything read was written: {err}");
    Ok(())
}
