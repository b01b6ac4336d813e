//! What the API may say about the server's files.
//!
//! A tenant controls the bytes of files on the server (its output part
//! files, its ingest journal); knowing their absolute paths turns any later
//! bug that opens a path of the tenant's choosing into code execution (issue
//! 17: a Kafka `plugin.library.paths` pointed at a part file). So no
//! response names a server path: checkpoints and savepoints are named by
//! their directory's own name (`chk-12`, `savepoint-3`), and messages that
//! mention a file under the data directory name it relative to the
//! pipeline's directory (`output/part-0.txt`) or, elsewhere in the data
//! directory, as `<data>/...`.
//!
//! Redaction works on text because the messages come from everywhere
//! (`std::io` errors, RocksDB, the engine's own errors); it is applied once,
//! where the API turns an outcome into a response, so no handler can forget
//! it.

use std::path::Path;

/// What stands for the data directory in a redacted message.
pub const DATA: &str = "<data>";

/// The last component of a checkpoint or savepoint directory: its public name.
pub fn checkpoint_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// `text` with every mention of `data` (an absolute path: the platform
/// makes its data directory absolute at start, so every path it hands the
/// engine is) removed, as given and as its canonical form: paths inside a
/// pipeline's directory become relative to it, other paths under `data`
/// start with [`DATA`].
pub fn redact(text: &str, data: &Path) -> String {
    let mut forms: Vec<String> = vec![data.display().to_string()];
    if let Ok(canonical) = data.canonicalize() {
        forms.push(canonical.display().to_string());
    }
    // The longest first, so a symlinked form is not half-replaced by a shorter one.
    forms.retain(|f| f.starts_with('/') && f.len() > 1);
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let mut out = text.to_string();
    for form in &forms {
        out = redact_one(&out, form.trim_end_matches('/'));
    }
    out
}

fn redact_one(text: &str, data: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(data) {
        out.push_str(&rest[..at]);
        let after = &rest[at + data.len()..];
        // `DATA/pipelines/ID/x` -> `x`; `DATA/pipelines/ID` -> `.`
        if let Some(inside) = after.strip_prefix("/pipelines/") {
            let id_len =
                inside.find(|c: char| c == '/' || c.is_whitespace() || c == ':' || c == '"').unwrap_or(inside.len());
            let tail = &inside[id_len..];
            match tail.strip_prefix('/') {
                Some(t) => rest = t,
                None => {
                    out.push('.');
                    rest = tail;
                }
            }
        } else {
            out.push_str(DATA);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_file_is_named_relative_to_its_pipeline() {
        let data = Path::new("/srv/weir-data");
        assert_eq!(
            redact("cannot write /srv/weir-data/pipelines/p-7f3a/output/part-0.txt: No space left", data),
            "cannot write output/part-0.txt: No space left"
        );
        assert_eq!(redact("cannot remove /srv/weir-data/pipelines/p-1: busy", data), "cannot remove .: busy");
        assert_eq!(redact("/srv/weir-data/meta.db is locked", data), "<data>/meta.db is locked");
        assert_eq!(redact("nothing to hide", data), "nothing to hide");
    }

    #[test]
    fn a_symlinked_data_dir_is_hidden_in_its_canonical_form_too() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let canonical = real.canonicalize().unwrap();
        let message = format!("{}/udfs/x.wasm and {}/meta.db", canonical.display(), link.display());
        assert_eq!(redact(&message, &link), "<data>/udfs/x.wasm and <data>/meta.db");
    }

    #[test]
    fn checkpoints_are_named_by_their_directory() {
        assert_eq!(checkpoint_name("/srv/d/pipelines/p-1/checkpoints/chk-12"), "chk-12");
        assert_eq!(checkpoint_name("/srv/d/pipelines/p-1/checkpoints/savepoint-3/"), "savepoint-3");
        assert_eq!(checkpoint_name("chk-1"), "chk-1");
    }
}
