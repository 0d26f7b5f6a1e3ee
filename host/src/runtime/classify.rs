//! Telling what a byte string is before handing it to Cranelift: not wasm, a core
//! module, or a component, and for a component which Baton world it implements.

use super::RuntimeError;
use crate::manifest::PluginKind;
use wasmparser::{Encoding, Parser, Payload};

/// The names a component imports and exports at its top level, as WIT spells them
/// (`describe`, `wasi:http/outgoing-handler@0.2.12`): the world it implements.
#[derive(Debug, Default)]
pub struct ComponentWorld {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Reads the top-level imports and exports of the component in `bytes`. Nested core
/// modules and components have import and export sections of their own; only depth 0 is
/// the component's world.
pub fn component_world(bytes: &[u8]) -> Result<ComponentWorld, RuntimeError> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(RuntimeError::NotWasm);
    }
    let malformed = |e: wasmparser::BinaryReaderError| RuntimeError::Malformed(e.to_string());
    let mut depth = 0usize;
    let mut world = ComponentWorld::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => return Err(RuntimeError::CoreModule),
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    world
                        .imports
                        .push(import.map_err(malformed)?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    world
                        .exports
                        .push(export.map_err(malformed)?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(world)
}

/// The world `bytes` implements, judged by its top-level exports.
pub(crate) fn classify(bytes: &[u8]) -> Result<PluginKind, RuntimeError> {
    let ComponentWorld { exports, .. } = component_world(bytes)?;
    let has = |name: &str| exports.iter().any(|e| e == name);
    match (has("describe"), has("invoke"), has("evaluate")) {
        (true, true, false) => Ok(PluginKind::Connector),
        (true, false, true) => Ok(PluginKind::Rule),
        _ => Err(RuntimeError::NotAPlugin { exports }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_garbage_and_core_modules_apart() {
        assert!(matches!(
            classify(b"hello world!"),
            Err(RuntimeError::NotWasm)
        ));
        let core_module = b"\0asm\x01\0\0\0";
        assert!(matches!(
            classify(core_module),
            Err(RuntimeError::CoreModule)
        ));
        let empty_component = b"\0asm\x0d\0\x01\0";
        match classify(empty_component) {
            Err(RuntimeError::NotAPlugin { exports }) => assert!(exports.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}
