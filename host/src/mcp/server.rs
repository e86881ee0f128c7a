//! The rmcp server handler.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomNotification,
    DiscoverResult, ErrorCode, Implementation, JsonObject, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ServerCapabilities, ServerConfig, ServerNotification,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use tokio::sync::mpsc;

use super::tools::{self, EditArgs, ReactArgs, ReplyArgs};
use crate::router::outbound::Reply;
use crate::router::{ChannelEvent, Router, ToolError};
use crate::runtime::bindings::types::Features;

/// The notification carrying an inbound message.
pub const NOTIFICATION_METHOD: &str = "notifications/claude/channel";

/// Revisions airlock speaks, newest first. Nothing newer than 2025-11-25:
/// Claude Code does not treat a server on the 2026-07-28 handshake as a channel.
const VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];

/// The MCP handler: tools call into the router; events flow out once the
/// client said `notifications/initialized` (until then they wait, queued).
pub struct ChannelServer {
    router: Arc<Router>,
    instructions: String,
    events: Mutex<Option<mpsc::Receiver<ChannelEvent>>>,
}

impl ChannelServer {
    /// A server over `router`, delivering `events`.
    pub fn new(
        router: Arc<Router>,
        instructions: String,
        events: mpsc::Receiver<ChannelEvent>,
    ) -> Self {
        Self {
            router,
            instructions,
            events: Mutex::new(Some(events)),
        }
    }

    async fn call(&self, request: CallToolRequestParams) -> Result<String, ToolError> {
        let args = request.arguments;
        match request.name.as_ref() {
            "reply" => {
                let a: ReplyArgs = tools::parse("reply", args)?;
                tools::check_text(&a.text)?;
                let format = tools::format(a.format.as_deref())?;
                self.router
                    .reply(Reply {
                        chat_id: a.chat_id,
                        text: a.text,
                        reply_to: a.reply_to,
                        files: a.files,
                        format,
                    })
                    .await
            }
            "edit_message" => {
                let a: EditArgs = tools::parse("edit_message", args)?;
                tools::check_text(&a.text)?;
                let format = tools::format(a.format.as_deref())?;
                self.router
                    .edit(&a.chat_id, &a.message_id, a.text, format)
                    .await
            }
            "react" if self.router.any_supports(Features::REACT) => {
                let a: ReactArgs = tools::parse("react", args)?;
                self.router.react(&a.chat_id, &a.message_id, &a.emoji).await
            }
            other => Err(ToolError::Arguments(format!(
                "unknown tool {other:?}; the tools are those in tools/list"
            ))),
        }
    }
}

/// The JSON params of one channel notification.
pub fn notification_params(event: &ChannelEvent) -> serde_json::Value {
    serde_json::json!({ "content": event.content, "meta": event.meta })
}

impl ServerHandler for ChannelServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        capabilities.experimental = Some(BTreeMap::from([(
            "claude/channel".to_string(),
            JsonObject::new(),
        )]));
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.instructions.clone())
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(VERSIONS)
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        Err(McpError::new(
            ErrorCode::METHOD_NOT_FOUND,
            "server/discover is not supported; use initialize",
            None,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::list(
            self.router.any_supports(Features::REACT),
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        let result = match self.call(request).await {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(e) => {
                tracing::info!(tool = name, "tool error: {e}");
                CallToolResult::error(vec![ContentBlock::text(e.to_string())])
            }
        };
        Ok(result.into())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let Some(mut events) = self.events.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let peer = context.peer;
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let notification =
                    CustomNotification::new(NOTIFICATION_METHOD, Some(notification_params(&event)));
                if let Err(e) = peer
                    .send_notification(ServerNotification::CustomNotification(notification))
                    .await
                {
                    tracing::warn!("cannot deliver a channel event, the client is gone: {e}");
                    break;
                }
            }
        });
    }
}
