//! Block Kit pieces: finding a button in a message's blocks, and building
//! a message with buttons as a client would.

use serde_json::{Value, json};

/// The `block_id` of the actions block holding the button `action_id` in
/// `message`'s blocks, and the button element.
pub(crate) fn find_button(message: &Value, action_id: &str) -> Option<(Value, Value)> {
    message["blocks"].as_array()?.iter().find_map(|block| {
        if block["type"] != "actions" {
            return None;
        }
        let element = block["elements"]
            .as_array()?
            .iter()
            .find(|e| e["type"] == "button" && e["action_id"] == action_id)?;
        Some((block["block_id"].clone(), element.clone()))
    })
}

/// Blocks for `text` in a section, then one actions block per row of
/// `(label, action_id, value)` buttons.
pub fn button_blocks(text: &str, rows: &[&[(&str, &str, &str)]]) -> Value {
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": text},
    })];
    for (i, row) in rows.iter().enumerate() {
        let elements: Vec<Value> = row
            .iter()
            .map(|(label, action_id, value)| {
                json!({
                    "type": "button",
                    "text": {"type": "plain_text", "text": label},
                    "action_id": action_id,
                    "value": value,
                })
            })
            .collect();
        blocks
            .push(json!({"type": "actions", "block_id": format!("row{i}"), "elements": elements}));
    }
    Value::Array(blocks)
}
