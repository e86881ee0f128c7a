//! Interaction callbacks: answering a dispatched interaction once.

use serde_json::{Value, json};

use crate::messages::rest_form;
use crate::reply::{Reply, error, form_error};
use crate::state::State;
use crate::{BOT_ID, Call};

/// Interaction callback types Discord knows.
const CALLBACK_TYPES: &[u64] = &[1, 4, 5, 6, 7, 8, 9, 10, 12];
/// `flags` bit of an ephemeral interaction reply.
const EPHEMERAL: u64 = 1 << 6;

impl State {
    /// `POST /interactions/{id}/{token}/callback`. Type 4 posts the reply
    /// message, type 7 edits the message the component was on; every type
    /// acknowledges, once.
    pub(crate) fn interaction_callback(&mut self, id: &str, token: &str, call: &Call) -> Reply {
        let Some(known) = self.interactions.get(id) else {
            return error(404, 10062, "Unknown interaction");
        };
        if known.token != token {
            return error(401, 50027, "Invalid Webhook Token");
        }
        if known.acknowledged {
            return error(400, 40060, "Interaction has already been acknowledged.");
        }
        let channel_id = known.channel_id.clone().unwrap_or_default();
        let source_message = known.message_id.clone();
        let body = call.json.clone().unwrap_or_else(|| json!({}));
        let kind = body.get("type").and_then(Value::as_u64);
        let Some(kind) = kind.filter(|k| CALLBACK_TYPES.contains(k)) else {
            return form_error(
                &["type"],
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.",
            );
        };
        let data = body.get("data").cloned().unwrap_or_else(|| json!({}));
        let mut produced = None;
        match kind {
            4 => {
                let mut message = match self.build_message(&channel_id, &data, &call.files) {
                    Ok(message) => message,
                    Err(reply) => return reply,
                };
                message["webhook_id"] = Value::from(BOT_ID);
                message["application_id"] = Value::from(BOT_ID);
                let flags = message["flags"].as_u64().unwrap_or(0);
                // Ephemeral replies are seen only by the clicking user: no
                // history, no dispatch.
                if flags & EPHEMERAL == 0 {
                    self.add_message(&channel_id, message.clone());
                    let event = self.gateway_form(&message);
                    self.emit("MESSAGE_CREATE", event);
                }
                produced = Some(message);
            }
            7 => {
                let stored = source_message
                    .as_deref()
                    .and_then(|m| self.find_message(&channel_id, m))
                    .cloned();
                if let Some(stored) = stored {
                    match self.apply_edit(&channel_id, stored, &data, &call.files) {
                        Ok(message) => produced = Some(message),
                        Err(reply) => return reply,
                    }
                }
            }
            _ => {}
        }
        if let Some(known) = self.interactions.get_mut(id) {
            known.acknowledged = true;
        }
        if call.query_param("with_response") != Some("true") {
            return Reply::no_content();
        }
        let mut resource = json!({"type": kind});
        if let Some(message) = &produced {
            resource["message"] = rest_form(message);
        }
        Reply::ok(json!({
            "interaction": {
                "id": id,
                "type": 3,
                "response_message_id": produced.as_ref().and_then(|m| m.get("id")).cloned(),
                "response_message_loading": kind == 5,
                "response_message_ephemeral": produced
                    .as_ref()
                    .and_then(|m| m["flags"].as_u64())
                    .is_some_and(|f| f & EPHEMERAL != 0),
            },
            "resource": resource,
        }))
    }
}
