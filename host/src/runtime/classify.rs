//! Telling what a byte string is before handing it to Cranelift: not wasm, a core
//! module, or a component, and for a component which Baton world it implements.

use super::RuntimeError;
use crate::manifest::PluginKind;
use wasmparser::{Encoding, Parser, Payload};

/// The world `bytes` implements, judged by its top-level exports.
pub(crate) fn classify(bytes: &[u8]) -> Result<PluginKind, RuntimeError> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(RuntimeError::NotWasm);
    }
    let mut depth = 0usize;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| RuntimeError::Malformed(e.to_string()))?;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => return Err(RuntimeError::CoreModule),
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    let export = export.map_err(|e| RuntimeError::Malformed(e.to_string()))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
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
