// weir-world: flat-map-function
//
// Splits a line of text into lower-case words, one record per word, keyed
// by the word (the tokenizer of the classic word count: runs of letters and
// digits; everything else separates).
//
// weir.unicode gives Rust's to_lowercase and char::is_alphanumeric: the
// engine inside a component has no ICU, so /\p{L}/u does not compile there.

import * as weir from './weir.js';

export const { lifecycle, flatMapper } = weir.flatMap((record, out) => {
  const words = weir.unicode.words(weir.unicode.toLowerCase(record.text()));
  for (let i = 0; i < words.length; i++) out.emit(words[i], { key: words[i] });
});
