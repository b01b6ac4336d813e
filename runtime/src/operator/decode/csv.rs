//! CSV rows (RFC 4180, one row per line) to JSON objects.

/// Splits one line into fields. Quoted fields may contain the delimiter and
/// `""` for a quote; a row may not span lines. Returns `(field, was_quoted)`.
pub(crate) fn split_row(line: &[u8], delimiter: u8) -> Result<Vec<(Vec<u8>, bool)>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            let mut field = Vec::new();
            i += 1;
            loop {
                match line.get(i) {
                    None => {
                        return Err(format!("unterminated quoted field {} (a row cannot span lines)", fields.len() + 1))
                    }
                    Some(b'"') if line.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            fields.push((field, true));
            match line.get(i) {
                None => return Ok(fields),
                Some(&c) if c == delimiter => i += 1,
                Some(_) => {
                    return Err(format!("unexpected character after the closing quote of field {}", fields.len()))
                }
            }
        } else {
            let end = line[i..].iter().position(|&c| c == delimiter).map_or(line.len(), |p| i + p);
            let field = &line[i..end];
            if field.contains(&b'"') {
                return Err(format!(
                    "quote inside unquoted field {} (quote the whole field and double inner quotes)",
                    fields.len() + 1
                ));
            }
            fields.push((field.to_vec(), false));
            if end == line.len() {
                return Ok(fields);
            }
            i = end + 1;
        }
    }
}

/// Writes a row as a JSON object: unquoted fields that are JSON numbers
/// become numbers, empty unquoted fields `null`, everything else a string.
pub(crate) fn row_to_json(columns: &[String], fields: &[(Vec<u8>, bool)], out: &mut Vec<u8>) -> Result<(), String> {
    if fields.len() != columns.len() {
        return Err(format!("row has {} fields, expected {} ({})", fields.len(), columns.len(), columns.join(",")));
    }
    out.push(b'{');
    for (i, (name, (field, quoted))) in columns.iter().zip(fields).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(name.as_bytes(), out)?;
        out.push(b':');
        if !quoted && field.is_empty() {
            out.extend_from_slice(b"null");
        } else if !quoted && is_json_number(field) {
            out.extend_from_slice(field);
        } else {
            json_string(field, out)?;
        }
    }
    out.push(b'}');
    Ok(())
}

fn is_json_number(f: &[u8]) -> bool {
    f.first().is_some_and(|c| c.is_ascii_digit() || *c == b'-') && weir_json::validate(f).is_ok()
}

fn json_string(s: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let s = std::str::from_utf8(s).map_err(|e| format!("field is not UTF-8: {e}"))?;
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(cols: &[&str], line: &str) -> Result<String, String> {
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        let fields = split_row(line.as_bytes(), b',')?;
        let mut out = Vec::new();
        row_to_json(&cols, &fields, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn rows_become_objects() {
        assert_eq!(
            convert(&["ip", "bytes", "t"], "10.0.0.1,512,-2.5e3").unwrap(),
            r#"{"ip":"10.0.0.1","bytes":512,"t":-2.5e3}"#
        );
        assert_eq!(convert(&["a", "b", "c"], r#""x, ""y""",,"7""#).unwrap(), r#"{"a":"x, \"y\"","b":null,"c":"7"}"#);
        assert_eq!(convert(&["a"], "007").unwrap(), r#"{"a":"007"}"#);
        assert_eq!(convert(&["a", "b"], "1,2\r").unwrap(), r#"{"a":1,"b":2}"#);
        assert_eq!(convert(&["a"], "tab\there").unwrap(), r#"{"a":"tab\u0009here"}"#);
    }

    #[test]
    fn malformed_rows_say_why() {
        assert_eq!(convert(&["a", "b"], "1").unwrap_err(), "row has 1 fields, expected 2 (a,b)");
        assert!(convert(&["a"], "\"open").unwrap_err().contains("unterminated quoted field 1"));
        assert!(convert(&["a", "b"], "\"x\"y,1").unwrap_err().contains("after the closing quote"));
        assert!(convert(&["a"], "x\"y").unwrap_err().contains("quote inside unquoted field 1"));
    }
}
