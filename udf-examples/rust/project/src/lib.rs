//! Projects top-level fields of a JSON object.
//!
//! Parameters: `fields`, a comma-separated list of field names (required);
//! `format`, `csv` (the field values joined by commas, strings unquoted) or
//! `json` (an object with just those fields; the default). A missing field
//! refuses the record (it is dead-lettered).

use weir_sdk::json::{Kind, Object};
use weir_sdk::{Error, Map, Output, Params, Record, Result};

struct Project {
    fields: Vec<String>,
    csv: bool,
}

#[weir_sdk::map]
impl Map for Project {
    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["fields", "format"])?;
        let fields: Vec<String> = params.require("fields")?.split(',').map(|f| f.trim().to_string()).collect();
        if fields.iter().any(String::is_empty) {
            return Err(Error::invalid_params("`fields` has an empty name"));
        }
        let csv = match params.get("format").unwrap_or("json") {
            "csv" => true,
            "json" => false,
            other => return Err(Error::invalid_params(format!("`format` is {other:?}; expected csv or json"))),
        };
        Ok(Project { fields, csv })
    }

    fn map(&self, record: &Record, out: &mut Output) -> Result<()> {
        let obj = Object::parse(record.value())?;
        let v = out.value_mut();
        if !self.csv {
            v.push(b'{');
        }
        for (i, name) in self.fields.iter().enumerate() {
            let value = obj.get(name).ok_or_else(|| Error::invalid_input(format!("field `{name}` is missing")))?;
            if i > 0 {
                v.push(b',');
            }
            if self.csv {
                match value.kind() {
                    Kind::String => v.extend_from_slice(value.as_str().unwrap_or_default().as_bytes()),
                    _ => v.extend_from_slice(value.raw()),
                }
            } else {
                v.push(b'"');
                v.extend_from_slice(name.as_bytes());
                v.extend_from_slice(b"\":");
                v.extend_from_slice(value.raw());
            }
        }
        if !self.csv {
            v.push(b'}');
        }
        Ok(())
    }
}
