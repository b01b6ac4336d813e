//! Splits a line of text into lower-case words, one record per word, keyed
//! by the word (the tokenizer of the classic word count: runs of letters and
//! digits; everything else separates).

use weir_sdk::{Emitter, Record, Result};

#[weir_sdk::flat_map]
fn split(record: &Record, out: &mut Emitter) -> Result<()> {
    let text = record.value_str()?.to_lowercase();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        out.emit_keyed(word.as_bytes(), word);
    }
    Ok(())
}
