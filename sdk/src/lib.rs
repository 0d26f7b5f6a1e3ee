pub mod bindings {
    pub mod connector {
        wit_bindgen::generate!({
            path: "../wit",
            world: "baton:plugin/connector",
            pub_export_macro: true,
            export_macro_name: "__export_connector_world",
            default_bindings_module: "baton_sdk::bindings::connector",
            generate_all,
            debug: true,
        });
    }
    pub mod rule {
        wit_bindgen::generate!({
            path: "../wit",
            world: "baton:plugin/rule",
            pub_export_macro: true,
            export_macro_name: "__export_rule_world",
            default_bindings_module: "baton_sdk::bindings::rule",
            with: {
                "baton:plugin/types@0.1.0": crate::bindings::connector::baton::plugin::types,
                "baton:plugin/log@0.1.0": crate::bindings::connector::baton::plugin::log,
            },
            debug: true,
        });
    }
}
