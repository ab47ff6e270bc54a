//! RFC 6902 patches applied one operation at a time under two bounds: no operation may nest the
//! document deeper than `MAX_NESTING_DEPTH` (each `add` can deepen it by up to the body limit, so a
//! long patch would otherwise stack levels without end), and `copy` may duplicate at most
//! `MAX_PATCH_COPIED_VALUES` values per request (copying a document into itself doubles it).

use json_patch::PatchOperation;
use serde_json::Value;

use sallyport_core::error::ApiError;
use sallyport_core::limits::{MAX_NESTING_DEPTH, MAX_PATCH_COPIED_VALUES, count_values, depth};

pub fn apply(doc: &mut Value, patch: &json_patch::Patch) -> Result<(), ApiError> {
    let mut copied = 0usize;
    for op in &patch.0 {
        let placed_depth = match op {
            PatchOperation::Add(o) => Some(o.path.count() + depth(&o.value)),
            PatchOperation::Replace(o) => Some(o.path.count() + depth(&o.value)),
            PatchOperation::Move(o) => doc.pointer(o.from.as_str()).map(|v| o.path.count() + depth(v)),
            PatchOperation::Copy(o) => match doc.pointer(o.from.as_str()) {
                Some(v) => {
                    copied += count_values(v, MAX_PATCH_COPIED_VALUES);
                    if copied > MAX_PATCH_COPIED_VALUES {
                        return Err(ApiError::bad_request(format!(
                            "failed to apply JSON patch: the patch copies more than {MAX_PATCH_COPIED_VALUES} JSON values."
                        )));
                    }
                    Some(o.path.count() + depth(v))
                }
                None => None,
            },
            PatchOperation::Remove(_) | PatchOperation::Test(_) => None,
        };
        if placed_depth.is_some_and(|d| d > MAX_NESTING_DEPTH) {
            return Err(ApiError::nesting_too_deep("The patched identity"));
        }
        json_patch::patch_unsafe(doc, std::slice::from_ref(op))
            .map_err(|e| ApiError::bad_request(format!("failed to apply JSON patch: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(ops: Value) -> json_patch::Patch {
        serde_json::from_value(ops).unwrap()
    }

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |acc, _| json!({ "a": acc }))
    }

    #[test]
    fn adds_that_stack_levels_stop_at_the_limit() {
        let mut doc = json!({"metadata_public": null});
        let at_limit =
            patch(json!([{"op": "add", "path": "/metadata_public", "value": nested(MAX_NESTING_DEPTH - 1)}]));
        apply(&mut doc, &at_limit).unwrap();
        assert_eq!(depth(&doc), MAX_NESTING_DEPTH);
        let deeper_path = format!("/metadata_public{}", "/a".repeat(30));
        let stacked = patch(json!([{"op": "replace", "path": deeper_path, "value": nested(40)}]));
        assert_eq!(apply(&mut doc, &stacked).unwrap_err().code, 400);
    }

    #[test]
    fn moves_and_copies_count_the_depth_they_place() {
        let mut doc = json!({"a": nested(40), "b": {"c": {}}});
        let ok = patch(json!([{"op": "copy", "from": "/a", "path": "/b/c/d"}]));
        apply(&mut doc, &ok).unwrap();
        // 36 path levels above a 40-level value: 76.
        let path = format!("/b/c/d{}/x", "/a".repeat(32));
        let too_deep = patch(json!([{"op": "move", "from": "/a", "path": path}]));
        assert_eq!(apply(&mut doc, &too_deep).unwrap_err().code, 400);
    }

    #[test]
    fn very_long_paths_are_errors_for_every_op() {
        let long = "/a".repeat(100_000);
        let mut doc = json!({"a": {"a": 1}});
        for op in ["add", "remove", "replace", "test", "copy", "move"] {
            let p = patch(json!([{"op": op, "path": long, "from": long, "value": 1}]));
            assert_eq!(apply(&mut doc, &p).unwrap_err().code, 400, "{op}");
            let p = patch(json!([{"op": op, "path": "/b", "from": long, "value": 1}]));
            if op == "copy" || op == "move" {
                assert_eq!(apply(&mut doc, &p).unwrap_err().code, 400, "{op} from");
            }
        }
        assert_eq!(doc, json!({"a": {"a": 1}}));
    }

    #[test]
    fn self_copies_cannot_double_the_document_without_end() {
        let mut doc = json!({"m": {"x": [1, 2, 3, 4, 5, 6, 7, 8]}});
        let ops: Vec<Value> = (0..40)
            .map(|i| json!({"op": "copy", "from": "/m", "path": format!("/m/c{i}")}))
            .collect();
        let e = apply(&mut doc, &patch(Value::Array(ops))).unwrap_err();
        assert!(e.reason.unwrap().contains("copies more than"));
    }
}
