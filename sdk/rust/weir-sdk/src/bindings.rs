//! Import bindings for `weir:udf` (generated from the `guest-imports` world).
//!
//! The export side is generated in the user's crate by the attribute macros
//! (one world per component), reusing the types and imports generated here.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "weir:udf/guest-imports",
    generate_all,
    generate_unused_types: true,
    pub_export_macro: false,
});
