//! The code wit-bindgen generates for the `merging-pipeline` world (the four stages and `merge`). Plugin authors
//! never name anything in here; the SDK's export macro does.

wit_bindgen::generate!({
    world: "merging-pipeline",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "export_pipeline",
    default_bindings_module: "weir_guest_sdk::__bindings",
});
