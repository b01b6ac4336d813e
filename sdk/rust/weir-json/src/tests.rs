use crate::*;

/// SplitMix64, so the tests need no random-number crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random JSON document (no `\u` escapes of surrogates, which serde_json
/// refuses and this crate accepts).
fn random_json(rng: &mut Rng, depth: u32, out: &mut String) {
    let pick = if depth > 3 { rng.below(5) } else { rng.below(7) };
    match pick {
        0 => out.push_str("null"),
        1 => out.push_str(if rng.below(2) == 0 { "true" } else { "false" }),
        2 => {
            let n = ["0", "-0", "12", "-7", "3.25", "1e9", "-2.5E-3", "123456789012345678"];
            out.push_str(n[rng.below(n.len() as u64) as usize]);
        }
        3 | 4 => {
            let s = ["", "a", "é", "x\\\"y", "tab\\t", "\\u00e9", "\\/", "日本", "k~1/"];
            out.push('"');
            out.push_str(s[rng.below(s.len() as u64) as usize]);
            out.push('"');
        }
        5 => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push_str(if rng.below(2) == 0 { "," } else { " , " });
                }
                random_json(rng, depth + 1, out);
            }
            out.push(']');
        }
        _ => {
            // Distinct keys: repeated keys are tested on their own (first wins).
            let mut keys = vec!["a", "b", "ts", "a~b", "x/y", "é"];
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(keys.swap_remove(rng.below(keys.len() as u64) as usize));
                out.push_str("\" : ");
                random_json(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

#[test]
fn validity_matches_serde_json_on_random_and_mutated_documents() {
    let mut rng = Rng(1);
    let junk = b"{}[]\",:0-1.eE+tfn \\u\x01x";
    for _ in 0..20_000 {
        let mut doc = String::new();
        random_json(&mut rng, 0, &mut doc);
        let mut bytes = doc.into_bytes();
        assert!(validate(&bytes).is_ok(), "rejected {:?}", String::from_utf8_lossy(&bytes));
        for _ in 0..rng.below(3) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            match rng.below(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, junk[rng.below(junk.len() as u64) as usize]),
            }
        }
        let ours = validate(&bytes).is_ok();
        let theirs = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(_) => true,
            // Valid grammar whose number overflows f64: serde_json refuses it as data.
            Err(e) if e.to_string().starts_with("number out of range") => continue,
            Err(_) => false,
        };
        assert_eq!(ours, theirs, "disagree on {:?}", String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn pointers_match_serde_json() {
    let mut rng = Rng(2);
    let pointers: Vec<Pointer> = ["", "/a", "/b", "/a/b", "/a/0", "/0", "/a~0b", "/x~1y", "/é", "/a/a/1", "/b/ts"]
        .iter()
        .map(|p| Pointer::parse(p).unwrap())
        .collect();
    for _ in 0..5_000 {
        let mut doc = String::new();
        random_json(&mut rng, 0, &mut doc);
        let mut found = vec![None; pointers.len()];
        scan(doc.as_bytes(), &pointers, &mut found).unwrap();
        let tree: serde_json::Value = serde_json::from_str(&doc).unwrap();
        for (p, f) in pointers.iter().zip(&found) {
            let expected = tree.pointer(p.as_str());
            let got = f.map(|v| serde_json::from_slice::<serde_json::Value>(v.raw()).unwrap());
            assert_eq!(got.as_ref(), expected, "pointer {p} in {doc}");
        }
    }
}

#[test]
fn extraction_stops_once_everything_is_found() {
    let p: Vec<Pointer> = ["/a", "/b/c"].iter().map(|p| Pointer::parse(p).unwrap()).collect();
    let mut f = vec![None; 2];
    extract(br#"{"a":1,"b":{"c":"x"},"z": garbage"#, &p, &mut f).unwrap();
    assert_eq!((f[0].unwrap().raw(), f[1].unwrap().raw()), (&b"1"[..], &br#""x""#[..]));
    // Not found: everything is read, and must be valid.
    extract(br#"{"a":1}"#, &p, &mut f).unwrap();
    assert!(f[1].is_none());
    assert!(extract(br#"{"a":1,"zz":tru}"#, &p, &mut f).is_err());
    // Invalid before the field: an error.
    assert!(extract(br#"{"x":[1,,2],"a":1}"#, &p[..1], &mut f[..1]).is_err());
    // Oracle: on valid documents, extract finds what scan finds.
    let mut rng = Rng(9);
    let pointers: Vec<Pointer> = ["/a", "/b", "/a/b", "/0"].iter().map(|p| Pointer::parse(p).unwrap()).collect();
    for _ in 0..3000 {
        let mut doc = String::new();
        random_json(&mut rng, 0, &mut doc);
        if doc.matches("\"a\"").count() > 1 || doc.matches("\"b\"").count() > 1 {
            continue;
        }
        let (mut x, mut y) = (vec![None; 4], vec![None; 4]);
        extract(doc.as_bytes(), &pointers, &mut x).unwrap();
        scan(doc.as_bytes(), &pointers, &mut y).unwrap();
        assert_eq!(x, y, "{doc}");
    }
}

#[test]
fn error_messages_name_the_problem_and_offset() {
    let check = |doc: &str, offset: usize, what: &str| {
        let e = validate(doc.as_bytes()).unwrap_err();
        assert_eq!((e.offset, e.what), (offset, what), "{doc}");
    };
    check("", 0, "unexpected end of input, expected a value");
    check("{\"a\":1,}", 7, "expected a string (an object key)");
    check("{\"a\" 1}", 5, "expected `:` after an object key");
    check("[1 2]", 3, "expected `,` or `]` in an array");
    check("01", 1, "leading zeros are not allowed in numbers");
    check("\"a\u{1}\"", 2, "control character in string (must be escaped)");
    check("\"\\x\"", 1, "invalid escape in string");
    check("{} x", 3, "unexpected characters after the JSON value");
    check("\"abc", 4, "unterminated string");
    assert_eq!(validate(b"\xff").unwrap_err(), JsonError { offset: 0, what: "expected a value" });
    assert_eq!(validate(b"[\"ok\xc3\xa9\", \"a\xffb\"]").unwrap_err(), JsonError { offset: 11, what: "invalid UTF-8" });
    let deep = "[".repeat(MAX_DEPTH + 1);
    assert_eq!(validate(deep.as_bytes()).unwrap_err().what, "nested too deeply");
    assert_eq!(
        validate(b"{\"a\":tru}").unwrap_err().to_string(),
        "invalid JSON at byte 5: expected a value (true, false, null, a number, a string, an array or an object)"
    );
}

#[test]
fn values_decode() {
    let p: Vec<Pointer> =
        ["/s", "/e", "/n", "/neg", "/f", "/big", "/t", "/o"].iter().map(|p| Pointer::parse(p).unwrap()).collect();
    let doc = br#"{"s":"plain","e":"a\"\u00e9\ud83d\ude00\ud800x","n":42,"neg":-9223372036854775808,"f":2.5e1,"big":18446744073709551616,"t":true,"o":{"k":[1]}}"#;
    let mut f = vec![None; p.len()];
    scan(doc, &p, &mut f).unwrap();
    let v = |i: usize| f[i].unwrap();
    assert!(matches!(v(0).as_str(), Some(std::borrow::Cow::Borrowed("plain"))));
    assert_eq!(v(1).as_str().unwrap(), "a\"é😀\u{FFFD}x");
    assert_eq!((v(2).as_u64(), v(2).as_i64(), v(2).as_f64()), (Some(42), Some(42), Some(42.0)));
    assert_eq!((v(3).as_i64(), v(3).as_u64()), (Some(i64::MIN), None));
    assert_eq!((v(4).as_f64(), v(4).as_i64()), (Some(25.0), None));
    assert_eq!(v(5).as_u64(), None);
    assert_eq!(v(6).as_bool(), Some(true));
    assert_eq!(v(7).kind(), Kind::Object);
    assert_eq!(v(7).raw(), br#"{"k":[1]}"#);
    assert_eq!(&*v(2).key_bytes(), b"42");
    assert_eq!(&*v(0).key_bytes(), b"plain");
}

#[test]
fn integer_edges() {
    let num = |t: &'static str| Value { raw: t.as_bytes(), kind: Kind::Number };
    assert_eq!(num("18446744073709551615").as_u64(), Some(u64::MAX));
    assert_eq!(num("18446744073709551616").as_u64(), None);
    assert_eq!(num("99999999999999999999").as_u64(), None);
    assert_eq!(num("100000000000000000000").as_u64(), None);
    assert_eq!(num("9223372036854775807").as_i64(), Some(i64::MAX));
    assert_eq!(num("9223372036854775808").as_i64(), None);
    assert_eq!(num("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(num("-9223372036854775809").as_i64(), None);
    assert_eq!(num("-0").as_i64(), Some(0));
    assert_eq!(num("-1").as_u64(), None);
    assert_eq!(num("1.0").as_u64(), None);
    for v in [0u64, 7, 1_700_000_000_000, u64::MAX / 3] {
        let t = v.to_string();
        assert_eq!(Value { raw: t.as_bytes(), kind: Kind::Number }.as_u64(), Some(v));
    }
}

#[test]
fn pointer_syntax() {
    assert_eq!(Pointer::parse("/a~1b/~0").unwrap().tokens(), &[b"a/b".to_vec(), b"~".to_vec()]);
    assert!(Pointer::parse("").unwrap().tokens().is_empty());
    assert_eq!(
        Pointer::parse("auction").unwrap_err().to_string(),
        "`auction` is not a JSON pointer: it must be empty or start with `/` (for example `/user/id`)"
    );
    assert!(Pointer::parse("/a~2").is_err());
}

#[test]
fn objects_give_typed_fields_with_clear_errors() {
    let o = Object::parse(br#" {"auction":6413,"channel":"Direct","price":-3,"x\u0041":null,"l":[1]} "#).unwrap();
    assert_eq!(o.len(), 5);
    assert_eq!(o.u64("auction").unwrap(), 6413);
    assert_eq!(o.str("channel").unwrap(), "Direct");
    assert!(o.get("xA").is_some());
    assert_eq!(o.u64("price").unwrap_err().to_string(), "field `price` is -3, expected an unsigned integer");
    assert_eq!(o.u64("channel").unwrap_err().to_string(), "field `channel` is a string, expected an unsigned integer");
    assert_eq!(o.str("l").unwrap_err().to_string(), "field `l` is an array, expected a string");
    assert_eq!(o.str("xA").unwrap_err().to_string(), "field `xA` is null, expected a string");
    assert_eq!(o.bool("nope").unwrap_err().to_string(), "field `nope` is missing");
    let names: Vec<_> = o.iter().map(|(n, _)| n.into_owned()).collect();
    assert_eq!(names, ["auction", "channel", "price", "xA", "l"]);
    assert_eq!(Object::parse(b"[1]").unwrap_err().what, "expected a JSON object");
    assert!(Object::parse(b"{\"a\":1} 2").is_err());
}

#[test]
fn the_first_of_repeated_keys_wins_everywhere() {
    let doc = br#"{"a":1,"b":{"c":2,"c":3},"a":4}"#;
    let p: Vec<Pointer> = ["/a", "/b/c"].iter().map(|p| Pointer::parse(p).unwrap()).collect();
    for f in [scan, extract] {
        let mut found = vec![None; 2];
        f(doc, &p, &mut found).unwrap();
        assert_eq!((found[0].unwrap().raw(), found[1].unwrap().raw()), (&b"1"[..], &b"2"[..]));
    }
    assert_eq!(Object::parse(doc).unwrap().get("a").unwrap().raw(), b"1");
}
