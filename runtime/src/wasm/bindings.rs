//! Host bindings of the `weir:udf` WIT package (world `platform`: every
//! import the host provides and every interface it may call).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "weir:udf/platform",
});
