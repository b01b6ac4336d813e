//! Attribute macros of the Weir Rust guest SDK (`weir-sdk` re-exports them).
//!
//! `#[weir_sdk::map]`, `#[weir_sdk::filter]` and `#[weir_sdk::flat_map]` go
//! either on a plain function or on an `impl` of the matching SDK trait. They
//! generate the component's exports: the bindings of one `weir:udf` world
//! (reusing the SDK's types and import bindings), a slot holding the function
//! value, and the glue that turns batches into calls.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::{parse_macro_input, spanned::Spanned, Item, ItemFn, ItemImpl, Type};

/// The files of the `weir:udf` WIT package (in the repository's `wit/`),
/// compiled into the macro so that expanding it reads nothing from disk: a
/// path baked in at build time breaks when the repository moves while the
/// target directory is shared.
const WIT_FILES: [&str; 4] = [
    include_str!("../../../../wit/types.wit"),
    include_str!("../../../../wit/host.wit"),
    include_str!("../../../../wit/functions.wit"),
    include_str!("../../../../wit/worlds.wit"),
];

/// The package as one WIT source: one `package` line, then every file's items.
fn wit_source() -> String {
    let mut source = String::from("package weir:udf@0.1.0;\n");
    for file in WIT_FILES {
        for line in file.lines().filter(|l| !l.starts_with("package ")) {
            source.push_str(line);
            source.push('\n');
        }
    }
    source
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Filter,
    FlatMap,
    Aggregate,
    Process,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::Filter => "filter",
            Kind::FlatMap => "flat_map",
            Kind::Aggregate => "aggregate",
            Kind::Process => "process",
        }
    }

    fn trait_name(self) -> &'static str {
        match self {
            Kind::Map => "Map",
            Kind::Filter => "Filter",
            Kind::FlatMap => "FlatMap",
            Kind::Aggregate => "Aggregate",
            Kind::Process => "Process",
        }
    }

    fn usage(self) -> &'static str {
        match self {
            Kind::Map => {
                "a #[weir_sdk::map] function takes `(record: &Record)` and returns `Result<T>` \
                 where T: IntoValue (Vec<u8>, String, &str, &[u8]), or takes \
                 `(record: &Record, out: &mut Output)` and returns `Result<()>`; \
                 or put the attribute on an `impl weir_sdk::Map for YourType`"
            }
            Kind::Filter => {
                "a #[weir_sdk::filter] function takes `(record: &Record)` and returns `Result<bool>`; \
                 or put the attribute on an `impl weir_sdk::Filter for YourType`"
            }
            Kind::FlatMap => {
                "a #[weir_sdk::flat_map] function takes `(record: &Record, out: &mut Emitter)` and \
                 returns `Result<()>`; or put the attribute on an `impl weir_sdk::FlatMap for YourType`"
            }
            Kind::Aggregate => "#[weir_sdk::aggregate] goes on an `impl weir_sdk::Aggregate for YourType`",
            Kind::Process => "#[weir_sdk::process] goes on an `impl weir_sdk::Process for YourType`",
        }
    }
}

/// Exports a `map` function (world `weir:udf/map-function`).
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Map, attr, parse_macro_input!(item as Item))
}

/// Exports a `filter` function (world `weir:udf/filter-function`).
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Filter, attr, parse_macro_input!(item as Item))
}

/// Exports a `flat_map` function (world `weir:udf/flat-map-function`).
#[proc_macro_attribute]
pub fn flat_map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::FlatMap, attr, parse_macro_input!(item as Item))
}

/// Exports a window aggregate (world `weir:udf/aggregate-function`).
#[proc_macro_attribute]
pub fn aggregate(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Aggregate, attr, parse_macro_input!(item as Item))
}

/// Exports a keyed process function (world `weir:udf/process-function`).
#[proc_macro_attribute]
pub fn process(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Process, attr, parse_macro_input!(item as Item))
}

fn expand(kind: Kind, attr: TokenStream, item: Item) -> TokenStream {
    if !attr.is_empty() {
        let msg = format!("#[weir_sdk::{}] takes no arguments", kind.attr());
        return syn::Error::new(Span::call_site(), msg).to_compile_error().into();
    }
    let result = match &item {
        Item::Fn(f) => from_fn(kind, f),
        Item::Impl(i) => from_impl(kind, i),
        other => Err(syn::Error::new(other.span(), kind.usage())),
    };
    match result {
        Ok((adapter, ty)) => {
            let exports = exports(kind, &ty);
            quote! { #item #adapter #exports }.into()
        }
        Err(e) => e.to_compile_error().into(),
    }
}

/// A function: an adapter type implementing the trait by calling it.
fn from_fn(kind: Kind, f: &ItemFn) -> syn::Result<(Tokens, Type)> {
    let user = &f.sig.ident;
    let args = f.sig.inputs.len();
    let body = match (kind, args) {
        (Kind::Map, 1) => quote! {
            fn map(&self, r: &::weir_sdk::Record<'_>, out: &mut ::weir_sdk::Output) -> ::weir_sdk::Result<()> {
                ::weir_sdk::IntoValue::write_to(#user(r)?, out);
                ::core::result::Result::Ok(())
            }
        },
        (Kind::Map, 2) => quote! {
            fn map(&self, r: &::weir_sdk::Record<'_>, out: &mut ::weir_sdk::Output) -> ::weir_sdk::Result<()> {
                #user(r, out)
            }
        },
        (Kind::Filter, 1) => quote! {
            fn filter(&self, r: &::weir_sdk::Record<'_>) -> ::weir_sdk::Result<bool> {
                #user(r)
            }
        },
        (Kind::FlatMap, 2) => quote! {
            fn flat_map(&self, r: &::weir_sdk::Record<'_>, out: &mut ::weir_sdk::Emitter<'_>) -> ::weir_sdk::Result<()> {
                #user(r, out)
            }
        },
        _ => return Err(syn::Error::new(f.sig.span(), kind.usage())),
    };
    let trait_ident = syn::Ident::new(kind.trait_name(), Span::call_site());
    let adapter = quote! {
        #[doc(hidden)]
        pub struct __WeirFunction;

        impl ::weir_sdk::#trait_ident for __WeirFunction {
            fn init(params: &::weir_sdk::Params) -> ::weir_sdk::Result<Self> {
                params.allow_only(&[])?;
                ::core::result::Result::Ok(__WeirFunction)
            }
            #body
        }
    };
    Ok((adapter, syn::parse_quote!(__WeirFunction)))
}

/// An `impl Trait for Type`: export `Type`.
fn from_impl(kind: Kind, i: &ItemImpl) -> syn::Result<(Tokens, Type)> {
    let Some((_, path, _)) = &i.trait_ else {
        return Err(syn::Error::new(i.span(), kind.usage()));
    };
    let named = path.segments.last().map(|s| s.ident.to_string());
    if named.as_deref() != Some(kind.trait_name()) {
        let msg = format!("#[weir_sdk::{}] goes on an `impl weir_sdk::{} for ...`", kind.attr(), kind.trait_name());
        return Err(syn::Error::new(path.span(), msg));
    }
    Ok((Tokens::new(), (*i.self_ty).clone()))
}

/// The component exports for `ty`.
fn exports(kind: Kind, ty: &Type) -> Tokens {
    let wit = wit_source();
    let keyed_imports = if kind == Kind::Process {
        quote! {
            "weir:udf/state@0.1.0": ::weir_sdk::__private::bindings::weir::udf::state,
            "weir:udf/timers@0.1.0": ::weir_sdk::__private::bindings::weir::udf::timers,
        }
    } else {
        Tokens::new()
    };
    let (world, guest_impl) = match kind {
        Kind::Map => (
            "weir:udf/map-function",
            quote! {
                impl bindings::exports::weir::udf::mapper::Guest for Export {
                    fn map(input: ::std::vec::Vec<u8>) -> ::core::result::Result<types::Mapped, types::UdfError> {
                        ::weir_sdk::__private::map::<#ty>(&SLOT, input)
                    }
                }
            },
        ),
        Kind::Filter => (
            "weir:udf/filter-function",
            quote! {
                impl bindings::exports::weir::udf::filter::Guest for Export {
                    fn filter(input: ::std::vec::Vec<u8>)
                        -> ::core::result::Result<bindings::exports::weir::udf::filter::Filtered, types::UdfError>
                    {
                        let (keep, rejected) = ::weir_sdk::__private::filter::<#ty>(&SLOT, input)?;
                        ::core::result::Result::Ok(bindings::exports::weir::udf::filter::Filtered { keep, rejected })
                    }
                }
            },
        ),
        Kind::FlatMap => (
            "weir:udf/flat-map-function",
            quote! {
                impl bindings::exports::weir::udf::flat_mapper::Guest for Export {
                    fn flat_map(input: ::std::vec::Vec<u8>) -> ::core::result::Result<types::Mapped, types::UdfError> {
                        ::weir_sdk::__private::flat_map::<#ty>(&SLOT, input)
                    }
                }
            },
        ),
        Kind::Aggregate => (
            "weir:udf/aggregate-function",
            quote! {
                impl bindings::exports::weir::udf::aggregator::Guest for Export {
                    fn create() -> ::core::result::Result<::std::vec::Vec<u8>, types::UdfError> {
                        ::weir_sdk::__private::aggregate_create::<#ty>(&SLOT)
                    }
                    fn add(groups: ::std::vec::Vec<u8>)
                        -> ::core::result::Result<bindings::exports::weir::udf::aggregator::Added, types::UdfError>
                    {
                        let (accumulators, rejected) = ::weir_sdk::__private::aggregate_add::<#ty>(&SLOT, groups)?;
                        ::core::result::Result::Ok(bindings::exports::weir::udf::aggregator::Added { accumulators, rejected })
                    }
                    fn merge(a: ::std::vec::Vec<u8>, b: ::std::vec::Vec<u8>) -> ::core::result::Result<::std::vec::Vec<u8>, types::UdfError> {
                        ::weir_sdk::__private::aggregate_merge::<#ty>(&SLOT, a, b)
                    }
                    fn finish(fired: ::std::vec::Vec<u8>) -> ::core::result::Result<::std::vec::Vec<u8>, types::UdfError> {
                        ::weir_sdk::__private::aggregate_finish::<#ty>(&SLOT, fired)
                    }
                }
            },
        ),
        Kind::Process => (
            "weir:udf/process-function",
            quote! {
                impl bindings::exports::weir::udf::processor::Guest for Export {
                    fn process(groups: ::std::vec::Vec<u8>)
                        -> ::core::result::Result<bindings::exports::weir::udf::processor::Processed, types::UdfError>
                    {
                        let (results, rejected) = ::weir_sdk::__private::process::<#ty>(&SLOT, groups)?;
                        ::core::result::Result::Ok(bindings::exports::weir::udf::processor::Processed { results, rejected })
                    }
                    fn on_timer(fired: ::std::vec::Vec<u8>) -> ::core::result::Result<::std::vec::Vec<u8>, types::UdfError> {
                        ::weir_sdk::__private::on_timer::<#ty>(&SLOT, fired)
                    }
                }
            },
        ),
    };
    let trait_ident = syn::Ident::new(kind.trait_name(), Span::call_site());
    quote! {
        #[doc(hidden)]
        #[allow(unsafe_code, clippy::all)]
        mod __weir_export {
            use super::*;
            use ::weir_sdk::__private::bindings::weir::udf::types;

            mod bindings {
                ::weir_sdk::__private::wit_bindgen::generate!({
                    inline: #wit,
                    world: #world,
                    with: {
                        "weir:udf/types@0.1.0": ::weir_sdk::__private::bindings::weir::udf::types,
                        "weir:udf/host@0.1.0": ::weir_sdk::__private::bindings::weir::udf::host,
                        #keyed_imports
                    },
                    runtime_path: "::weir_sdk::__private::wit_bindgen::rt",
                });
            }

            ::std::thread_local! {
                static SLOT: ::std::cell::RefCell<::core::option::Option<#ty>> =
                    const { ::std::cell::RefCell::new(::core::option::Option::None) };
            }

            struct Export;

            impl bindings::exports::weir::udf::lifecycle::Guest for Export {
                fn init(params: ::std::vec::Vec<(::std::string::String, ::std::string::String)>)
                    -> ::core::result::Result<(), types::UdfError>
                {
                    ::weir_sdk::__private::init(&SLOT, params, <#ty as ::weir_sdk::#trait_ident>::init)
                }
            }

            #guest_impl

            bindings::export!(Export with_types_in self::bindings);
        }
    }
}
