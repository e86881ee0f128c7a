//! Guest SDK for airlock adapters and filters.
pub mod adapter_bindings {
    wit_bindgen::generate!({ path: "../wit", world: "adapter", pub_export_macro: true, export_macro_name: "__export_adapter" });
}
pub mod filter_bindings {
    wit_bindgen::generate!({ path: "../wit", world: "filter", pub_export_macro: true, export_macro_name: "__export_filter" });
}
